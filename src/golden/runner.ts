import { Tensor, tidy, type Device } from "../runtime/index.ts";
import { backward } from "../graph/index.ts";
import { compare, host, parseCase, type GoldenCase, type HostTensor } from "./case.ts";
import { ADAPTERS } from "./adapters/index.ts";

export interface CaseResult {
  name: string;
  op: string;
  pass: boolean;
  /** worst rel-L2 over every compared tensor */
  worst: number;
  detail: string;
}

type Output = Tensor | HostTensor;

async function toHost(o: Output): Promise<ArrayLike<number>> {
  return o instanceof Tensor ? await o.readFloat() : o.data;
}

/** Runs one case forward and, where it lists grads, backward; compares every output and gradient. */
export async function runCase(device: Device, c: GoldenCase): Promise<CaseResult> {
  const adapter = ADAPTERS[c.op];
  if (!adapter) return { name: c.name, op: c.op, pass: false, worst: Infinity, detail: `unsupported op ${c.op}` };
  const lines: string[] = [];
  let worst = 0;
  let pass = true;
  const check = (what: string, actual: ArrayLike<number>, refName: string) => {
    const r = compare(actual, host(c, refName), c.tol);
    worst = Math.max(worst, Number.isNaN(r.relL2) ? Infinity : r.relL2);
    if (!r.ok) {
      pass = false;
      lines.push(`${what}: ${r.message ?? `rel_l2 ${r.relL2.toExponential(2)} max_abs_rel ${r.maxAbsRel.toExponential(2)}`}`);
    }
  };
  const inputs: Record<string, Tensor> = {};
  const hosts: Record<string, HostTensor> = {};
  const pending: { name: string; output: Output }[] = [];
  const gradTensors: Record<string, Tensor | null> = {};
  try {
    tidy(device, () => {
      for (const name of c.inputs) {
        const h = host(c, name);
        hosts[name] = h;
        inputs[name] = Tensor.from(device, h.data, h.shape);
        if (name in c.grads) inputs[name].requiresGrad = true;
      }
      const outputs = adapter({ device, inputs, host: hosts, attrs: c.attrs, case: c });
      for (const name of c.outputs) {
        const o = outputs[name];
        if (!o) throw new Error(`adapter for ${c.op} returned no output '${name}'`);
        pending.push({ name, output: o });
      }
      const roots = pending.map((p) => p.output).filter((o): o is Tensor => o instanceof Tensor && o.requiresGrad);
      if (Object.keys(c.grads).length) {
        if (roots.length === 0) throw new Error(`op ${c.op} recorded no backward`);
        const seeds = pending
          .filter((p) => p.output instanceof Tensor && p.output.requiresGrad)
          .map((p) => {
            const d = host(c, `d_${p.name}`);
            return Tensor.from(device, d.data, d.shape);
          });
        backward(roots, seeds);
      }
      for (const name of Object.keys(c.grads)) gradTensors[name] = inputs[name]!.grad;
      return [...pending.map((p) => p.output).filter((o): o is Tensor => o instanceof Tensor), ...Object.values(gradTensors).filter((g): g is Tensor => !!g)];
    });
    for (const p of pending) check(p.name, await toHost(p.output), p.name);
    for (const [name, refName] of Object.entries(c.grads)) {
      const g = gradTensors[name];
      if (!g) {
        pass = false;
        lines.push(`no gradient reached '${name}'`);
        continue;
      }
      check(refName, await g.readFloat(), refName);
    }
  } catch (e) {
    return { name: c.name, op: c.op, pass: false, worst: Infinity, detail: `error: ${(e as Error).message}` };
  } finally {
    for (const p of pending) if (p.output instanceof Tensor) p.output.dispose();
    for (const g of Object.values(gradTensors)) g?.dispose();
    for (const t of Object.values(inputs)) {
      t.grad = null;
    }
  }
  return { name: c.name, op: c.op, pass, worst, detail: lines.join("; ") };
}

export { parseCase };

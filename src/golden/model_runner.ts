import { Tensor, tidy, type Device } from "../runtime/index.ts";
import { backward, noGrad } from "../graph/index.ts";
import { Adam } from "../graph/optim.ts";
import { Dropout } from "../graph/nn.ts";
import type { HostArray } from "../graph/module.ts";
import { diceCeLoss, softDiceSigmoidLoss, deepSupervisionLoss } from "../graph/ops/loss.ts";
import { buildModel, type SegmentationNet } from "../models/index.ts";
import type { SafetensorsFile } from "../../weights/safetensors.ts";
import type { CaseResult } from "./runner.ts";

/** Whole-model golden case (format: ../shared/reference/README.md): eval output, training loss,
 * every gradient, BN running statistics after the training forward, one Adam step. */
export interface ModelCase {
  name: string;
  meta: Record<string, any>;
  file: SafetensorsFile;
}

const relL2 = (a: ArrayLike<number>, r: ArrayLike<number>): number => {
  if (a.length !== r.length) return Infinity;
  let d = 0, n = 0;
  for (let i = 0; i < r.length; i++) {
    const e = a[i]! - r[i]!;
    d += e * e;
    n += r[i]! * r[i]!;
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-12);
};

const maxAbs = (a: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
};

function lossOf(meta: Record<string, any>, outputs: Tensor[], targets: Tensor[]): Tensor {
  const spec = meta.loss;
  const one = (z: Tensor, t: Tensor) => {
    if (spec.type === "dice_ce_softmax") return diceCeLoss(z, t, { smooth: spec.smooth });
    if (spec.type === "soft_dice_sigmoid") return softDiceSigmoidLoss(z, t, { smooth: spec.smooth });
    throw new Error(`unsupported loss type ${spec.type}`);
  };
  if (!spec.deep_supervision) return one(outputs[0]!, targets[0]!);
  return deepSupervisionLoss(outputs.map((o, i) => one(o, targets[i]!)), spec.deep_supervision.weights);
}

export async function runModelCase(device: Device, c: ModelCase): Promise<CaseResult> {
  const { meta, file } = c;
  const problems: string[] = [];
  let worst = 0;
  const tol = (key: string): number => {
    const t = meta.tol ?? {};
    const hit = t[key] ?? Object.entries(t).find(([k]) => k.endsWith("*") && key.startsWith(k.slice(0, -1)))?.[1];
    return (hit as any)?.rel_l2 ?? 1e-4;
  };
  const check = (what: string, actual: ArrayLike<number>, refName: string, limit = tol(refName)) => {
    const e = relL2(actual, file.float32(refName));
    worst = Math.max(worst, e);
    if (!(e <= limit)) problems.push(`${what} rel_l2 ${e.toExponential(2)} > ${limit}`);
  };
  let model: SegmentationNet | null = null;
  try {
    model = buildModel(device, meta.model, meta.config);
    const params = new Map<string, HostArray>();
    for (const name of file.names)
      if (name.startsWith("param.")) params.set(name.slice(6), { data: file.float32(name), shape: file.tensors.get(name)!.shape });
    model.loadStateDict(params, { strict: true });
    for (const [, m] of model.namedChildren()) if (m instanceof Dropout) m.enabled = false;
    const host = (name: string) => Tensor.from(device, file.float32(name), file.tensors.get(name)!.shape);

    // 1. eval forward with the loaded running statistics
    model.eval();
    const evalOut = tidy(device, () => noGrad(() => model!.forward(host("input"))));
    check("eval.output", await evalOut.read(), "eval.output");
    evalOut.dispose();

    // 2. training forward, loss, backward
    model.train();
    const ds = meta.loss?.deep_supervision;
    const outNames: string[] = ds ? ds.outputs : ["train.output"];
    const targetNames: string[] = ds ? ds.targets : ["target"];
    const kept = tidy(device, () => {
      const x = host("input");
      const outs = ds ? model!.forwardAll!(x) : [model!.forward(x)];
      const loss = lossOf(meta, outs, targetNames.map(host));
      backward(loss);
      return [loss, ...outs];
    });
    const [loss, ...outs] = kept;
    const lossRef = file.float32("train.loss")[0]!;
    const lossVal = (await loss!.read())[0]!;
    const lossErr = Math.abs(lossVal - lossRef) / Math.max(Math.abs(lossRef), 1e-12);
    worst = Math.max(worst, lossErr);
    if (!(lossErr <= (meta.tol?.["train.loss"]?.rel ?? 1e-4))) problems.push(`train.loss ${lossVal} vs ${lossRef}`);
    for (let i = 0; i < outs.length; i++) check(outNames[i]!, await outs[i]!.read(), outNames[i]!);
    kept.forEach((t) => t.dispose());

    // 3. gradients; parameters whose exact gradient is ~0 are only checked for smallness
    const zero = new Set<string>(meta.zero_grad_keys ?? []);
    let largest = 0;
    for (const n of file.names) if (n.startsWith("grad.")) largest = Math.max(largest, maxAbs(file.float32(n)));
    const engineGrads = new Map<string, Float32Array>();
    for (const [key, p] of model.namedParameters()) {
      if (!p.grad) {
        problems.push(`no gradient reached ${key}`);
        continue;
      }
      const g = (await p.grad.read()) as Float32Array;
      engineGrads.set(key, g);
      if (zero.has(key)) {
        if (!(maxAbs(g) <= 1e-4 * largest)) problems.push(`grad.${key} should be ~0, max ${maxAbs(g)}`);
      } else check(`grad.${key}`, g, `grad.${key}`);
    }

    // 4. BN running statistics after the training forward
    const state = model.stateDict();
    for (const n of file.names) {
      const m = /^train\.running_(mean|var)\.(.+)$/.exec(n);
      if (!m) continue;
      const t = state.get(`${m[2]}.running_${m[1]}`);
      if (!t) problems.push(`model has no ${m[2]}.running_${m[1]}`);
      else check(n, await t.read(), n);
    }

    // 5. Adam: from the file's own params and grads (checks the optimizer: max abs 1e-6 per
    //    element), and the end-to-end update from the engine's gradients, compared as a whole
    //    (all parameters but the zero-grad ones concatenated: rel-L2 1e-2), because single updates
    //    with |g| ≈ eps are ill-conditioned (reference README).
    const o = meta.optimizer ?? {};
    let updDiff = 0, updRef = 0;
    for (const useEngine of [false, true]) {
      const keys = [...model.namedParameters()].map(([k]) => k).filter((k) => !(useEngine && zero.has(k)));
      const ps = keys.map((k) => {
        const t = host(`param.${k}`);
        t.requiresGrad = true;
        t.grad = useEngine ? Tensor.from(device, engineGrads.get(k)!, t.shape) : host(`grad.${k}`);
        return t;
      });
      const adam = new Adam(ps, { lr: o.lr ?? 1e-3, betas: o.betas ?? [0.9, 0.999], eps: o.eps ?? 1e-8, weightDecay: o.weight_decay ?? 0 });
      adam.step();
      for (let i = 0; i < keys.length; i++) {
        const after = (await ps[i]!.read()) as Float32Array;
        const ref = file.float32(`adam.${keys[i]}`);
        const p0 = file.float32(`param.${keys[i]}`);
        if (!useEngine) {
          let m = 0;
          for (let j = 0; j < ref.length; j++) m = Math.max(m, Math.abs(after[j]! - ref[j]!));
          if (!(m <= 1e-6)) problems.push(`adam.${keys[i]} (from file grads) max abs ${m.toExponential(2)}`);
        } else
          for (let j = 0; j < ref.length; j++) {
            const e = after[j]! - ref[j]!, r = ref[j]! - p0[j]!;
            updDiff += e * e;
            updRef += r * r;
          }
      }
      adam.zeroGrad();
      adam.dispose();
      ps.forEach((t) => t.dispose());
    }
    const upd = Math.sqrt(updDiff) / Math.max(Math.sqrt(updRef), 1e-12);
    if (!(upd <= 1e-2)) problems.push(`end-to-end Adam update rel_l2 ${upd.toExponential(2)} > 1e-2`);
  } catch (e) {
    return { name: c.name, op: meta.model, pass: false, worst: Infinity, detail: `error: ${(e as Error).message}` };
  } finally {
    model?.dispose();
  }
  return { name: c.name, op: meta.model, pass: problems.length === 0, worst, detail: problems.slice(0, 6).join("; ") + (problems.length > 6 ? ` (+${problems.length - 6} more)` : "") };
}

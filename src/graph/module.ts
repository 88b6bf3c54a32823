import { keep, numel, PulmoError, Tensor, shapeStr, tidy, type Device } from "../runtime/index.ts";
import { isGradEnabled } from "./tape.ts";
import { readSafetensors, writeSafetensors, type TensorToWrite } from "../../weights/safetensors.ts";

/** Host data for loading a state dict (from safetensors or a converter). */
export interface HostArray {
  data: Float32Array;
  shape: readonly number[];
}

export interface LoadReport {
  /** keys the module has but the source lacks (non-strict only) */
  missing: string[];
  /** keys the source has but the module lacks (non-strict only: ignored) */
  unexpected: string[];
}

/** A network component with parameters and buffers named and ordered as PyTorch's state_dict:
 * own parameters, own buffers, then each child in registration order. */
export class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  constructor(readonly device: Device) {}

  protected param(name: string, shape: readonly number[], init?: Float32Array): Tensor {
    const t = init ? Tensor.from(this.device, init, shape) : Tensor.zeros(this.device, shape);
    keep(t);
    t.requiresGrad = true;
    this.params.set(name, t);
    return t;
  }

  protected buffer(name: string, shape: readonly number[], fill = 0): Tensor {
    const t = fill === 0 ? Tensor.zeros(this.device, shape) : Tensor.from(this.device, new Float32Array(numel(shape)).fill(fill), shape);
    keep(t);
    this.buffers.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    releaseTemporariesInInference(m);
    return m;
  }

  *namedParameters(prefix = ""): Generator<[string, Tensor]> {
    for (const [k, t] of this.params) yield [prefix + k, t];
    for (const [k, c] of this.children) yield* c.namedParameters(`${prefix}${k}.`);
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  *namedChildren(prefix = ""): Generator<[string, Module]> {
    for (const [k, c] of this.children) {
      yield [prefix + k, c];
      yield* c.namedChildren(`${prefix}${k}.`);
    }
  }

  /** Parameters and buffers in PyTorch state_dict order. */
  stateDict(prefix = ""): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [k, t] of this.params) out.set(prefix + k, t);
    for (const [k, t] of this.buffers) out.set(prefix + k, t);
    for (const [k, c] of this.children) for (const [ck, t] of c.stateDict(`${prefix}${k}.`)) out.set(ck, t);
    return out;
  }

  /** Loads tensors by state-dict name. Strict: any missing, unexpected or mis-shaped tensor is an
   * error listing them all. Non-strict: mis-shaped is still an error; missing and unexpected keys
   * are reported and ignored. */
  loadStateDict(source: Map<string, HostArray>, { strict = true }: { strict?: boolean } = {}): LoadReport {
    // PyTorch's BN step counter is only used when momentum is None; nothing here reads it.
    source = new Map([...source].filter(([k]) => !k.endsWith(".num_batches_tracked")));
    const mine = this.stateDict();
    const missing = [...mine.keys()].filter((k) => !source.has(k));
    const unexpected = [...source.keys()].filter((k) => !mine.has(k));
    const misshaped: string[] = [];
    for (const [k, t] of mine) {
      const s = source.get(k);
      if (s && (s.shape.length !== t.shape.length || s.shape.some((d, i) => d !== t.shape[i])))
        misshaped.push(`${k}: expected ${shapeStr(t.shape)}, got ${shapeStr(s.shape)}`);
    }
    const problems = [
      ...misshaped.map((m) => `mis-shaped ${m}`),
      ...(strict ? missing.map((k) => `missing ${k} ${shapeStr(mine.get(k)!.shape)}`) : []),
      ...(strict ? unexpected.map((k) => `unexpected ${k} ${shapeStr(source.get(k)!.shape)}`) : []),
    ];
    if (problems.length) throw new PulmoError(`loadStateDict: ${problems.length} problem(s): ${problems.join("; ")}`);
    for (const [k, t] of mine) {
      const s = source.get(k);
      if (!s) continue;
      for (let i = 0; i < s.data.length; i++)
        if (!Number.isFinite(s.data[i]!)) throw new PulmoError(`loadStateDict: ${k} has a non-finite value at index ${i}`);
      this.device.upload(t.buffer, t.byteOffset, s.data);
    }
    return { missing, unexpected };
  }

  /** Loads a safetensors file holding a PyTorch state_dict (F32/F16/BF16 converted to f32). */
  loadSafetensors(bytes: Uint8Array, options: { strict?: boolean } = {}): LoadReport {
    const file = readSafetensors(bytes);
    const source = new Map<string, HostArray>();
    for (const name of file.names) source.set(name, { data: file.float32(name), shape: file.tensors.get(name)!.shape });
    return this.loadStateDict(source, options);
  }

  /** The state dict as safetensors bytes (PyTorch names and layouts; `metadata` goes in the header). */
  async toSafetensors(metadata?: Record<string, string>): Promise<Uint8Array> {
    const tensors: Record<string, TensorToWrite> = {};
    for (const [k, t] of this.stateDict()) tensors[k] = { shape: t.shape, data: await t.readFloat() };
    return writeSafetensors(tensors, metadata);
  }

  train(mode = true): this {
    this.training = mode;
    for (const c of this.children.values()) c.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Stops gradients for every parameter whose name starts with one of the prefixes (all if none). */
  freeze(...prefixes: string[]): this {
    return this.setTrainable(false, prefixes);
  }

  unfreeze(...prefixes: string[]): this {
    return this.setTrainable(true, prefixes);
  }

  private setTrainable(on: boolean, prefixes: string[]): this {
    let hit = 0;
    for (const [k, t] of this.namedParameters())
      if (prefixes.length === 0 || prefixes.some((p) => k === p || k.startsWith(p.endsWith(".") ? p : `${p}.`))) {
        t.requiresGrad = on;
        hit++;
      }
    if (hit === 0) throw new PulmoError(`${on ? "unfreeze" : "freeze"}: no parameter matches ${prefixes.join(", ")}`);
    return this;
  }

  parameterCount(): number {
    return this.parameters().reduce((a, t) => a + t.size, 0);
  }

  dispose(): void {
    for (const t of this.stateDict().values()) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}


/** In inference (no tape), a child module's temporaries are dead once it returns: its forward runs
 * inside a tidy scope that keeps only what it returns, so peak memory is one block's working set
 * plus what the caller still holds, not the whole network's intermediates. With the tape on,
 * intermediates stay alive for the backward (the tape retains what it needs). */
function releaseTemporariesInInference(m: Module): void {
  const forward = (m as unknown as { forward?: (...args: unknown[]) => unknown }).forward;
  if (typeof forward !== "function" || Object.prototype.hasOwnProperty.call(m, "forward")) return;
  Object.defineProperty(m, "forward", {
    value: (...args: unknown[]) =>
      isGradEnabled() ? forward.apply(m, args) : tidy(m.device, () => forward.apply(m, args)),
  });
}

// Shared pieces of the per-network tests in test/models: the golden file and its metadata, the
// paper key lists, golden parameters, relative L2 error, and the usual build/forward/reject checks.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { GOLDEN_MODELS_DIR, referenceKeyLines, stateDictLines } from "../helpers.ts";
import { PulmoError, Tensor, tidy, type Device, type HostArray } from "../../src/node.ts";
import { backward, noGrad } from "../../src/graph/index.ts";
import { concat, slice, sum } from "../../src/graph/ops/index.ts";
import { readSafetensors } from "../../weights/safetensors.ts";

export type GoldenFile = ReturnType<typeof readSafetensors>;

/** test/golden/models/<name>.safetensors and its case metadata (config, param_count, forward_macs, tol). */
export function loadGolden(name: string): { file: GoldenFile; meta: any } {
  const file = readSafetensors(readFileSync(join(GOLDEN_MODELS_DIR, `${name}.safetensors`)));
  return { file, meta: JSON.parse(file.metadata.case!) };
}

/** The golden file's param.* tensors as a state dict, in file order. */
export function goldenParams(file: GoldenFile): Map<string, HostArray> {
  const params = new Map<string, HostArray>();
  for (const n of file.names) if (n.startsWith("param.")) params.set(n.slice(6), { data: file.float32(n), shape: file.tensors.get(n)!.shape });
  return params;
}

/** "key [shape]" lines of test/golden/models/keys/<name>.txt (paper preset), in file order, without
 * num_batches_tracked (PyTorch's BN step counter: the engine does not keep it, loadStateDict skips it).
 * `counts`, when given, is checked as [all lines, kept lines]. */
export function paperKeys(name: string, counts?: [number, number]): string[] {
  const { lines, kept } = referenceKeyLines(name);
  if (counts) expect([lines.length, kept.length]).toEqual(counts);
  return kept;
}

/** The paper key list as [key, shape] pairs (num_batches_tracked dropped; none in these lists). */
export function paperKeyShapes(name: string): [string, number[]][] {
  return paperKeys(name).map((l) => {
    const m = /^(\S+) \[([\d, ]*)\]$/.exec(l);
    if (!m) throw new Error(`bad key line ${l}`);
    return [m[1]!, m[2]!.split(",").filter((s) => s.trim()).map(Number)];
  });
}

/** A module's state dict as "key [shape]" lines, comparable with paperKeys. */
export const keysOf = stateDictLines;

/** {key, shape} records (a config-only key list) as "key [shape]" lines. */
export const specLines = (specs: readonly { key: string; shape: readonly number[] }[]): string[] =>
  specs.map((s) => `${s.key} [${s.shape.join(", ")}]`);

/** The paper key list with each dimension mapped through `map` (a small stand-in for the paper widths). */
export const mappedKeys = (name: string, map: Record<number, number>): string[] =>
  paperKeyShapes(name).map(([k, s]) => `${k} [${s.map((d) => map[d] ?? d).join(", ")}]`);

/** Total element count of a [key, shape] list. */
export const shapeTotal = (ks: [string, number[]][]): number => ks.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);

/** sqrt(Σ(a-b)² / Σb²) over b's length. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0, n = 0;
  for (let i = 0; i < b.length; i++) {
    e += (a[i]! - b[i]!) ** 2;
    n += b[i]! ** 2;
  }
  return Math.sqrt(e / n);
}

interface Disposable { dispose(): void }

/** Runs fn with a built module, disposing it afterwards whatever happens. */
export function withModel<M extends Disposable, R>(m: M, fn: (m: M) => R): R {
  try {
    const r = fn(m);
    if (r instanceof Promise) return r.finally(() => m.dispose()) as R;
    m.dispose();
    return r;
  } catch (e) {
    m.dispose();
    throw e;
  }
}

interface Net extends Disposable {
  eval(): unknown;
  forward(x: Tensor): Tensor;
}

/** Eval-mode forward of zeros of `shape`; returns the output shape (and checks every value is finite when asked). */
export async function zerosForwardShape(dev: Device, m: Net, shape: number[], finite = false): Promise<readonly number[]> {
  m.eval();
  const x = Tensor.zeros(dev, shape);
  const y = tidy(dev, () => noGrad(() => m.forward(x)));
  if (finite) expect([...(await y.read())].every(Number.isFinite)).toBe(true);
  const s = y.shape;
  y.dispose();
  x.dispose();
  return s;
}

/** Each input shape is refused by the forward with a PulmoError: in eval mode under noGrad, or,
 * with `raw`, a plain forward in the module's current mode. */
export function expectForwardRejects(dev: Device, m: Net, shapes: number[][], raw = false): void {
  if (!raw) m.eval();
  for (const shape of shapes) {
    const x = Tensor.zeros(dev, shape);
    expect(() => (raw ? m.forward(x) : noGrad(() => m.forward(x)))).toThrow(PulmoError);
    x.dispose();
  }
}

/** Batch of 2 in eval mode with the golden weights: another sample (`first` of the golden input)
 * first, the golden input second; the second output must match eval.output (rel L2 < 1e-4). */
export async function expectGoldenSecondOfTwo(
  dev: Device, file: GoldenFile, m: Net & { loadStateDict(sd: Map<string, HostArray>, o: { strict: boolean }): unknown },
  outChannels: number, first: (x: Float32Array) => Float32Array,
): Promise<void> {
  m.loadStateDict(goldenParams(file), { strict: true });
  m.eval();
  const x1 = file.float32("input");
  const [, c, ...spatial] = file.tensors.get("input")!.shape as number[];
  const x2 = new Float32Array(2 * x1.length);
  x2.set(first(x1), 0);
  x2.set(x1, x1.length);
  const xt = Tensor.from(dev, x2, [2, c!, ...spatial]);
  const y = tidy(dev, () => noGrad(() => m.forward(xt)));
  expect(y.shape).toEqual([2, outChannels, ...spatial]);
  const ref = file.float32("eval.output");
  const second = ((await y.read()) as Float32Array).subarray(ref.length);
  expect(relL2(second, ref)).toBeLessThan(1e-4);
  y.dispose();
  xt.dispose();
}

/** The usual other sample: 1 - x plus a small index pattern. */
export const perturbed = (x: Float32Array): Float32Array => x.map((v, i) => 1 - v + 0.01 * (i % 7));

/** Eval: a batch of 2 equals the two single-sample forwards (rel L2 < 1e-5); returns the batch output shape. */
export async function expectBatchEqualsSingles(dev: Device, m: Net, x: Tensor): Promise<readonly number[]> {
  const [both, a, b] = tidy(dev, () => noGrad(() => [m.forward(x), m.forward(slice(x, 0, 0, 1)), m.forward(slice(x, 0, 1, 2))]));
  const ab = tidy(dev, () => concat([a!, b!], 0));
  const shape = both!.shape;
  const y = (await both!.read()) as Float32Array, z = (await ab.read()) as Float32Array;
  expect(relL2(y, z)).toBeLessThan(1e-5);
  [both!, a!, b!, ab].forEach((t) => t.dispose());
  return shape;
}

/** parameterCount/forwardMacs against the golden metadata (forwardMacs with and without the input shape). */
export function expectGoldenCounts(
  meta: any, parameterCount: (c: any) => number, forwardMacs: (...args: any[]) => number, macsWithoutShape = true,
): void {
  expect(parameterCount(meta.config)).toBe(meta.param_count);
  expect(forwardMacs(meta.config, meta.config.input_shape)).toBe(meta.forward_macs);
  if (macsWithoutShape) expect(forwardMacs(meta.config)).toBe(meta.forward_macs);
}

/** A factory call with the golden config overridden, as a thunk for toThrow. */
export const badConfig = <T>(factory: (c: any) => T, base: Record<string, any>) =>
  (over: Record<string, any>) => () => factory({ ...base, ...over });

interface TrainableNet extends Net {
  train(): unknown;
  namedParameters(): Iterable<[string, { grad: unknown }]>;
}

/** Eval forward of x: the output shape is `outShape` and every value finite; then one train-mode
 * backward of sum(forward(x)) gives every parameter a gradient. */
export async function expectForwardAndGrads(dev: Device, m: TrainableNet, x: Tensor, outShape: number[]): Promise<void> {
  m.eval();
  const y = tidy(dev, () => noGrad(() => m.forward(x)));
  expect(y.shape).toEqual(outShape);
  expect(Array.from(await y.read()).every(Number.isFinite)).toBe(true);
  y.dispose();
  m.train();
  const loss = tidy(dev, () => {
    const l = sum(m.forward(x));
    backward(l);
    return l;
  });
  loss.dispose();
  for (const [k, p] of m.namedParameters()) expect(p.grad, k).toBeTruthy();
}

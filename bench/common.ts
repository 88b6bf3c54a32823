// Shared by bench/kernels.ts and bench/models.ts: timing with GPU completion, the adapter's
// measured ceilings (kernels/bench/fma.wgsl, kernels/bench/copy.wgsl), seeded inputs, result files.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Tensor, writeFileAtomic, type Device } from "../src/node.ts";

export const resultsDir = join(import.meta.dirname, "results");

/** Median wall time (ms) of `reps` runs of `fn` after one warm-up run; each run ends with
 * device.flush(), so the time includes GPU completion. `after` runs after each flush (the warm-up's
 * too), outside the timed span. */
export async function median(device: Device, fn: () => void, reps: number, after?: () => void): Promise<number> {
  return (await timings(device, fn, reps, after)).median;
}

/** The timed runs themselves (ms, in order) and their median; see median(). */
export async function timings(device: Device, fn: () => void, reps: number, after?: () => void): Promise<{ median: number; times: number[] }> {
  fn();
  await device.flush();
  after?.();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    await device.flush();
    times.push(performance.now() - t0);
    after?.();
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, times };
}

/** FMA ceiling (GFLOP/s): `invocations` threads of kernels/bench/fma.wgsl, each 64 FLOP per iteration
 * (8 independent vec4 FMA chains), median of `reps` after a warm-up. The default 256k threads: with
 * 64k the fixed cost of a dispatch and its completion kept the probe 10–20 % low (NOTES.md, fifth pass). */
export async function fmaCeiling(device: Device, reps: number, iters: number, invocations = 262144): Promise<number> {
  const out = Tensor.empty(device, [invocations]);
  const ms = await median(device, () => device.dispatch({ kernel: "bench/fma", bindings: { out }, uniforms: { iters, seed: 0.5 }, workgroups: invocations / 64, label: "fma ceiling" }), reps);
  out.dispose();
  return (invocations * iters * 64) / ms / 1e6;
}

/** Copy ceiling (GB/s, bytes read + written) of kernels/bench/copy.wgsl over `n` floats (n divisible
 * by 256), `groups` grid-striding workgroups; the default gives each invocation COPY_PER_LANE vec4s
 * ( the best of 4–32 in the fifth pass's sweep, NOTES.md). `exp`: the same copy writing
 * exp(x), what a kernel that takes one exp per value can reach at best. */
export const COPY_PER_LANE = 16;
export async function copyCeiling(device: Device, reps: number, n: number, groups = Math.max(1, Math.floor(n / 4 / 64 / COPY_PER_LANE)), exp = false): Promise<number> {
  const x = exp ? Tensor.from(device, randData([n]), [n]) : Tensor.zeros(device, [n]), y = Tensor.empty(device, [n]);
  const ms = await median(device, () => device.dispatch({ kernel: "bench/copy", constants: { EXP: exp ? 1 : 0 }, bindings: { x, y }, uniforms: { n4: n / 4 }, workgroups: groups, label: exp ? "exp-copy rate" : "copy ceiling" }), reps);
  x.dispose();
  y.dispose();
  return (n * 8) / ms / 1e6;
}

/** Uniform values in [−scale, scale) from a fixed LCG seed (the same data on every run). */
export function rand(device: Device, shape: number[], scale = 1): Tensor {
  return Tensor.from(device, randData(shape, scale), shape);
}

/** The values rand() uploads, for feeding the same data to the peer runtimes. */
export function randData(shape: number[], scale = 1): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) data[i] = ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2 * scale;
  return data;
}

/** Writes `text` to bench/results/<name> atomically (creating the folder). */
export function writeResult(name: string, text: string): void {
  mkdirSync(resultsDir, { recursive: true });
  writeFileAtomic(join(resultsDir, name), new TextEncoder().encode(text));
}

/** The conv-loop roofline (GFLOP/s) of kernels/bench/load_fma.wgsl: `invocations` threads, each
 * `iters` per-lane loads × 16 FMAs, the weights read at uniform addresses (mode 0, the direct
 * conv's inner loop) or held in registers (mode 1). */
export async function loadFmaCeiling(device: Device, reps: number, iters: number, mode: 0 | 1 | 2, invocations = 65536): Promise<number> {
  const n = 1 << 20;
  const x = Tensor.zeros(device, [n]), w = Tensor.zeros(device, [256 * 4]), out = Tensor.empty(device, [invocations]);
  const ms = await median(device, () => device.dispatch({ kernel: "bench/load_fma", constants: { MODE: mode }, bindings: { x, w, out }, uniforms: { iters, n }, workgroups: invocations / 64, label: "load-fma ceiling" }), reps);
  x.dispose();
  w.dispose();
  out.dispose();
  return (invocations * iters * 32) / ms / 1e6;
}

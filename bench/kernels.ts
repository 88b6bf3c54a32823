// Kernel throughput against this adapter's measured ceilings (FMA-only and copy shaders), side by
// side with the peer runtimes on the same adapter (bench/peers/runtimes.ts).
// `npm run bench:kernels` (issue 7 sizes), `-- --quick` (sizes ÷ 2 per axis, a few minutes),
// `-- --no-peers` (ours only), `-- --only <substring>` (kernels whose name contains it; results
// then go to kernels[.quick].only.json/md, or with `--merge` replace those kernels' rows in
// kernels[.quick].json/md, each row keeping the date it was measured).
// Each figure: median of ≥ 5 timed runs after one warm-up, GPU completion included.
import { setGpuProvider } from "../src/node.ts";
import { installNavigatorGpu, OrtWebPeer, OrtNodePeer, TfjsPeer, type OnnxCase, type TfCase, type PeerTime } from "./peers/runtimes.ts";
import {
  createDevice, deprioritizeMainThread, Tensor, tidy, backward, noGrad,
  conv3d, convTranspose3d, instanceNorm, batchNorm, layerNorm, softmax, matmul, linear, leakyRelu,
  maxPool3d, upsample, msDeformAttn3d, convLstm2d, Adam, SGD, cast
} from "../src/node.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fmaCeiling as measureFma, copyCeiling as measureCopy, loadFmaCeiling, randData, resultsDir, writeResult } from "./common.ts";
import type { OnnxGraph, OnnxNode } from "./peers/onnx.ts";

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const withPeers = !argv.includes("--no-peers");
const only = argv.includes("--only") ? argv[argv.indexOf("--only") + 1]! : "";
const merge = argv.includes("--merge");
if (merge && !only) throw new Error("--merge needs --only <substring>: it replaces those kernels' rows in the full results");
const resultsBase = quick ? "kernels.quick" : "kernels";
/** --merge: the full run whose rows this run's rows replace (read first, so a missing file fails before any timing) */
const fullRun: { date: string; rows: Row[]; ceilings: unknown } | null = merge ? (() => {
  const path = join(resultsDir, `${resultsBase}.json`);
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`--merge: cannot read the full results ${path} (${(e as Error).message}); run without --only first`);
  }
})() : null;
const startedAt = new Date().toISOString();
const reps = 5;
/** kernels whose warm-up run takes under SHORT_SPAN_MS / reps get ≈ SHORT_SPAN_MS of timed runs, at most SHORT_REPS */
const SHORT_SPAN_MS = 300, SHORT_REPS = 21;

// One GPU object for us and the peers: the same Dawn instance and adapter.
const gpu = installNavigatorGpu();
setGpuProvider(() => gpu);
const device = await createDevice();
const s = (n: number) => (quick ? Math.max(2, n >> 1) : n);

const PEERS = ["onnxruntime-web webgpu", "tfjs webgpu", "onnxruntime-node cpu"] as const;
type PeerName = (typeof PEERS)[number];
interface PeerCell { ms?: number; ratio?: number; error?: string; note?: string }
interface Row {
  kernel: string; direction: "forward" | "backward"; shape: string; ms: number; gflops?: number; gbps?: number;
  /** the matching ceiling (GFLOP/s or GB/s), median of the probes run beside this kernel */
  ceiling: number;
  /** median over runs of rate / adjacent ceiling probe */
  fraction: number;
  /** time_peer / time_ours per peer (> 1: ours is faster) */
  peers: Partial<Record<PeerName, PeerCell>>;
  /** when the row was measured (rows merged in later with --merge keep their own date) */
  measured?: string;
}

const ortWeb = withPeers ? await OrtWebPeer.start().then(async (p) => {
  console.log(`onnxruntime-web warm-up (first run in this process): ${(await p.warmUp()).toFixed(0)} s`);
  return p;
}).catch((e) => e as Error) : null;
const ortNode = withPeers ? await OrtNodePeer.start().catch((e) => e as Error) : null;
const tfjs = withPeers ? await TfjsPeer.start().catch((e) => e as Error) : null;
// Dawn polls on the main thread (src/platform/node.ts): lowered once every device, ours and the
// WebGPU peers', exists, so all of them and their driver threads keep the normal priority.
deprioritizeMainThread();
// onnxruntime-web's warm-up leaves ≈ 30–40 s of background work on the driver's threads (its
// pipelines compiling); the ceilings and the first rows wait until the process is idle.
if (withPeers) console.log(`waited ${(await untilIdle()).toFixed(0)} s for the peers' background work to end`);
async function untilIdle(limitS = 300): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const c0 = process.cpuUsage(), w0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const c = process.cpuUsage(c0), cores = (c.user + c.system) / 1000 / (performance.now() - w0);
    if (cores < 0.2 || performance.now() - t0 > limitS * 1000) return (performance.now() - t0) / 1000;
  }
}
/** The previous row's peer sessions can leave their pipelines compiling in the background, as the
 * warm-up does: each row waits for an idle process before it measures (and says when it had to). */
async function quietAfterPeers(kernel: string): Promise<void> {
  if (!withPeers) return;
  const s = await untilIdle(60);
  if (s > 1.5) console.log(`(${kernel}: waited ${s.toFixed(0)} s for the process to go idle)`);
}
const startError = (p: unknown) => (p instanceof Error ? `could not start: ${p.message}` : undefined);

// Ceilings
// Probe sizes (FMA_PROBE_ITERS rounds on 256k threads ≈ 9 GFLOP; COPY_PROBE_FLOATS: 64 MiB each way,
// past the host's caches) are the same for the start-of-run and beside-run probes, and for --quick.
const FMA_PROBE_ITERS = 512, COPY_PROBE_FLOATS = 16 * 1024 * 1024;
const fmaCeiling = await measureFma(device, reps, FMA_PROBE_ITERS);
const copyCeiling = await measureCopy(device, reps, COPY_PROBE_FLOATS);
// The same copy with one exp per value: the best a kernel that takes an exp of every value it
// moves (softmax) can do.
const expCopy = await measureCopy(device, reps, COPY_PROBE_FLOATS, undefined, true);
console.log(`adapter: ${device.adapterDescription}`);
// The conv-loop roofline (kernels/bench/load_fma.wgsl): what a loop of per-lane input loads × 16
// FMAs reaches when the weights come from memory each step, from registers, or in a 4×16 tile.
const convLoop = {
  uniform_weights: await loadFmaCeiling(device, reps, 256, 0),
  register_weights: await loadFmaCeiling(device, reps, 256, 1),
  tile_4x16: await loadFmaCeiling(device, reps, 256, 2),
};
console.log(`ceilings: FMA ${fmaCeiling.toFixed(1)} GFLOP/s, copy ${copyCeiling.toFixed(1)} GB/s (with one exp per value ${expCopy.toFixed(1)} GB/s); conv-shaped loop: ` +
  Object.entries(convLoop).map(([k, v]) => `${k} ${v.toFixed(1)} GFLOP/s (${(100 * v / fmaCeiling).toFixed(0)} %)`).join(", "));

const rows: Row[] = [];
/** ORT's node-placement log lines per kernel: the proof each op ran on the WebGPU EP. */
const placements: Record<string, string[]> = {};
/** max |ours − onnxruntime-node| / max |onnxruntime-node| per kernel (same graph, same data). */
const agreement: Record<string, number> = {};

interface Peers { onnx?: () => OnnxCase; tf?: () => TfCase; note?: string }
interface Work { flops?: number; bytes?: number; bwdFlops?: number; bwdBytes?: number; /** no backward row (f16 is forward-only) */ fwdOnly?: boolean }

const cell = (t: PeerTime | undefined, ours: number, note?: string): PeerCell =>
  t?.ms !== undefined ? { ms: +t.ms.toFixed(3), ratio: +(t.ms / ours).toFixed(2), ...(note ? { note } : {}) } : { error: t?.error ?? "not run", ...(note ? { note } : {}) };

/** Times `fn` `reps` times (more for short kernels) after a warm-up, each run followed by a short probe of the matching
 * ceiling, so that with other processes competing for the cores every run is compared with the
 * ceiling measured right beside it. `prepare`, when given, runs (and its GPU work completes)
 * before each run, untimed. Returns the per-run times and ceilings. */
async function timedWithCeiling(fn: () => void, kind: "fma" | "copy", prepare?: () => void): Promise<{ times: number[]; ceilings: number[] }> {
  const probe = () => (kind === "fma" ? measureFma(device, 1, FMA_PROBE_ITERS) : measureCopy(device, 1, COPY_PROBE_FLOATS));
  const ready = async () => { if (prepare) { prepare(); await device.flush(); } };
  await ready();
  const w0 = performance.now();
  fn();
  await device.flush();
  const times: number[] = [], ceilings: number[] = [];
  // short kernels get more runs (up to SHORT_REPS): a 5 ms run swings ±30 % run to run here
  const n = Math.max(reps, Math.min(SHORT_REPS, Math.ceil(SHORT_SPAN_MS / (performance.now() - w0))));
  for (let i = 0; i < n; i++) {
    await ready();
    const t0 = performance.now();
    fn();
    await device.flush();
    times.push(performance.now() - t0);
    ceilings.push(await probe());
  }
  return { times, ceilings };
}
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

async function bench(kernel: string, shape: string, fwd: () => Tensor, inputs: Tensor[], work: Work, peers: Peers = {}) {
  if (only && !kernel.includes(only)) return;
  await quietAfterPeers(kernel);
  const kind = work.flops ? "fma" : "copy";
  const fr = await timedWithCeiling(() => tidy(device, () => { noGrad(fwd); }), kind);
  const fms = med(fr.times);
  const add = (direction: Row["direction"], times: number[], ceilings: number[], amount: number): Row => {
    const ms = med(times);
    const row: Row = { kernel, direction, shape, ms: +ms.toFixed(3), fraction: 0, ceiling: +med(ceilings).toFixed(2), peers: {} };
    const rate = +(amount / ms / 1e6).toFixed(2);
    if (kind === "fma") row.gflops = rate; else row.gbps = rate;
    // fraction: median over runs of (this run's rate / the ceiling probed right after it)
    row.fraction = +med(times.map((t, i) => amount / t / 1e6 / ceilings[i]!)).toFixed(3);
    rows.push(row);
    return row;
  };
  const f = add("forward", fr.times, fr.ceilings, (work.flops ?? work.bytes)!);
  if (work.fwdOnly) {
    writeResults();
    console.log(`${kernel.padEnd(26)} forward  ${shape.padEnd(30)} ${f.ms.toFixed(2).padStart(9)} ms  ${f.gflops !== undefined ? `${f.gflops} GFLOP/s` : `${f.gbps} GB/s`}  ${(f.fraction * 100).toFixed(1)} % of ceiling (${f.ceiling})`);
    return;
  }
  // the output gradient is made once, outside the timed runs (a fill of y's size is not the op's work)
  let yShape: number[] = [];
  tidy(device, () => { noGrad(() => { yShape = [...fwd().shape]; }); });
  const seed = Tensor.from(device, randData(yShape), yShape);
  for (const t of inputs) t.requiresGrad = true;
  // The backward alone: each run's forward is recorded and completed untimed (its tensors kept in
  // a scope of their own until the backward is recorded), then backward + GPU completion is timed.
  const scope = new Set<{ dispose(): void }>();
  const inScope = (fn: () => void) => { device.scopes.push(scope); try { fn(); } finally { device.scopes.pop(); } };
  let y: Tensor | null = null;
  const br = await timedWithCeiling(() => {
    inScope(() => backward(y!, [seed]));
    for (const t of scope) t.dispose();
    scope.clear();
    for (const t of inputs) { t.grad?.dispose(); t.grad = null; }
  }, kind, () => inScope(() => { y = fwd(); }));
  const b = add("backward", br.times, br.ceilings, (work.bwdFlops ?? work.bwdBytes)!);
  for (const t of inputs) t.requiresGrad = false;
  seed.dispose();

  if (withPeers) {
    const onnx = peers.onnx?.();
    const noOnnx = "no ONNX graph for this op (see bench/NOTES.md)";
    const noTrain = "inference only: onnxruntime has no training on WebGPU or in Node";
    if (ortWeb instanceof OrtWebPeer && onnx) {
      const r = await ortWeb.time(onnx, reps);
      if (r.placement) placements[kernel] = r.placement;
      f.peers["onnxruntime-web webgpu"] = cell(r, fms, peers.note);
    } else f.peers["onnxruntime-web webgpu"] = { error: startError(ortWeb) ?? noOnnx };
    b.peers["onnxruntime-web webgpu"] = { error: noTrain };
    if (ortNode instanceof OrtNodePeer && onnx) {
      const r = await ortNode.time(onnx, reps);
      f.peers["onnxruntime-node cpu"] = cell(r, fms, peers.note);
      if (r.output) {
        const ours = await noGrad(fwd).readFloat();
        if (ours.length === r.output.length) {
          let d = 0, m = 0;
          for (let i = 0; i < ours.length; i++) { d = Math.max(d, Math.abs(ours[i]! - r.output[i]!)); m = Math.max(m, Math.abs(r.output[i]!)); }
          agreement[kernel] = d / Math.max(m, 1e-30);
        }
      }
    } else f.peers["onnxruntime-node cpu"] = { error: startError(ortNode) ?? noOnnx };
    b.peers["onnxruntime-node cpu"] = { error: noTrain };
    const tcase = peers.tf?.();
    if (tfjs instanceof TfjsPeer && tcase) {
      const r = await tfjs.time(tcase, reps);
      f.peers["tfjs webgpu"] = cell(r.fwd, fms, peers.note);
      b.peers["tfjs webgpu"] = r.bwd ? cell(r.bwd, b.ms, peers.note) : { error: "no gradient timed" };
    } else {
      f.peers["tfjs webgpu"] = { error: startError(tfjs) ?? "no tfjs composition for this op (see bench/NOTES.md)" };
      b.peers["tfjs webgpu"] = f.peers["tfjs webgpu"];
    }
  }
  writeResults();
  for (const r of [f, b]) {
    const ps = PEERS.map((p) => r.peers[p]?.ratio !== undefined ? `${p.split(" ")[0]} ×${r.peers[p]!.ratio}` : r.peers[p]?.error && !/inference only/.test(r.peers[p]!.error!) ? `${p.split(" ")[0]}: ${r.peers[p]!.error!.slice(0, 80)}` : "").filter(Boolean).join("  ");
    console.log(`${kernel.padEnd(26)} ${r.direction.padEnd(8)} ${shape.padEnd(30)} ${r.ms.toFixed(2).padStart(9)} ms  ${r.gflops !== undefined ? `${r.gflops} GFLOP/s` : `${r.gbps} GB/s`}  ${(r.fraction * 100).toFixed(1)} % of ceiling (${r.ceiling})  ${ps}`);
  }
}

// ---- ONNX / tfjs helpers: the same op, data and shapes for the peers
const data = (shape: number[], scale = 1) => ({ data: randData(shape, scale), shape });
const ints = (name: string, v: number[]) => ({ name, shape: [v.length], data: BigInt64Array.from(v.map(BigInt)) });
function onnx1(op: string, x: { name: string; shape: number[]; scale?: number }[], consts: { name: string; shape: number[]; data: Float32Array | BigInt64Array }[], outShape: number[], attrs: OnnxNode["attrs"] = {}, inputNames?: string[]): OnnxCase {
  const feeds: OnnxCase["feeds"] = {};
  for (const i of x) feeds[i.name] = data(i.shape, i.scale);
  const graph: OnnxGraph = {
    nodes: [{ op, inputs: inputNames ?? [...x.map((i) => i.name), ...consts.map((c) => c.name)], outputs: ["y"], attrs }],
    inputs: x.map(({ name, shape }) => ({ name, shape })), outputs: [{ name: "y", shape: outShape }], initializers: consts,
  };
  return { graph, feeds };
}
/** NCDHW → NDHWC shape (tfjs conv3d is channels-last only; the data is random either way). */
const cl = ([n, c, ...sp]: number[]) => [n!, ...sp, c!];
/** [Cout, Cin, kd, kh, kw] → tfjs filter [kd, kh, kw, Cin, Cout]. */
const tfFilter = ([co, ci, ...k]: number[]) => [...k, ci!, co!];

{ // conv3d 32→32 k3 on 1×32×64³
  const d = s(64), xs = [1, 32, d, d, d], wsh = [32, 32, 3, 3, 3];
  const x = Tensor.from(device, randData(xs), xs), w = Tensor.from(device, randData(wsh, 0.05), wsh);
  const flops = 2 * 32 * 32 * 27 * d ** 3;
  await bench("conv3d k3 32→32", `1×32×${d}³`, () => conv3d(x, w, null, { padding: 1 }), [x, w], { flops, bwdFlops: 2 * flops }, {
    onnx: () => onnx1("Conv", [{ name: "x", shape: xs }], [{ name: "w", shape: wsh, data: randData(wsh, 0.05) }], xs, { pads: [1, 1, 1, 1, 1, 1], kernel_shape: [3, 3, 3] }),
    tf: () => ({ inputs: { x: data(cl(xs)), w: data(tfFilter(wsh), 0.05) }, fwd: (t) => tfjsPeer().conv3d(t.x, t.w, 1, "same"), grads: ["x", "w"] }),
  });
  if (device.gpu.features.has("shader-f16")) {
    // f16 storage, f32 accumulation; forward only, no peer offers an f16 conv here
    const xh = cast(x, "f16"), wh = cast(w, "f16");
    await bench("conv3d k3 32→32 f16", `1×32×${d}³ f16 (f32 acc.)`, () => conv3d(xh, wh, null, { padding: 1 }), [], { flops, fwdOnly: true });
    xh.dispose();
    wh.dispose();
  }
}
{ // 1×1×1 conv, 5³ and 7³ stride (1,2,2)
  const d = s(64), xs = [1, 32, d, d, d], wsh = [32, 32, 1, 1, 1];
  const x = Tensor.from(device, randData(xs), xs), w = Tensor.from(device, randData(wsh, 0.1), wsh);
  const flops = 2 * 32 * 32 * d ** 3;
  await bench("conv3d k1 32→32", `1×32×${d}³`, () => conv3d(x, w), [x, w], { flops, bwdFlops: 2 * flops }, {
    onnx: () => onnx1("Conv", [{ name: "x", shape: xs }], [{ name: "w", shape: wsh, data: randData(wsh, 0.1) }], xs, { kernel_shape: [1, 1, 1] }),
    tf: () => ({ inputs: { x: data(cl(xs)), w: data(tfFilter(wsh), 0.1) }, fwd: (t) => tfjsPeer().conv3d(t.x, t.w, 1, "valid"), grads: ["x", "w"] }),
  });
  for (const k of [5, 7]) {
    const xsh = [1, 1, s(48), s(96), s(96)], wk = [16, 1, k, k, k];
    const xk = Tensor.from(device, randData(xsh), xsh), wt = Tensor.from(device, randData(wk, 0.1), wk);
    const o = [s(48), s(96) / 2, s(96) / 2];
    const fl = 2 * 16 * k ** 3 * o[0]! * o[1]! * o[2]!;
    const p = k >> 1;
    await bench(`conv3d k${k} s(1,2,2) 1→16`, `1×1×${s(48)}×${s(96)}²`, () => conv3d(xk, wt, null, { stride: [1, 2, 2], padding: p }), [xk, wt], { flops: fl, bwdFlops: 2 * fl }, {
      onnx: () => onnx1("Conv", [{ name: "x", shape: xsh }], [{ name: "w", shape: wk, data: randData(wk, 0.1) }], [1, 16, ...o], { pads: [p, p, p, p, p, p], strides: [1, 2, 2], kernel_shape: [k, k, k] }),
      // tfjs conv3d pads only 'same'/'valid': 'same' gives the same output size (padding split 1/2 not 2/2)
      tf: () => ({ inputs: { x: data(cl(xsh)), w: data(tfFilter(wk), 0.1) }, fwd: (t) => tfjsPeer().conv3d(t.x, t.w, [1, 2, 2], "same"), grads: ["x", "w"] }),
    });
  }
}
{ // conv_transpose3d k2 s2
  const d = s(32), xs = [1, 32, d, d, d], wsh = [32, 16, 2, 2, 2], ys = [1, 16, 2 * d, 2 * d, 2 * d];
  const x = Tensor.from(device, randData(xs), xs), w = Tensor.from(device, randData(wsh, 0.1), wsh);
  const flops = 2 * 32 * 16 * 8 * d ** 3;
  await bench("conv_transpose3d k2 s2", `1×32×${d}³`, () => convTranspose3d(x, w, null, { stride: 2 }), [x, w], { flops, bwdFlops: 2 * flops }, {
    onnx: () => onnx1("ConvTranspose", [{ name: "x", shape: xs }], [{ name: "w", shape: wsh, data: randData(wsh, 0.1) }], ys, { strides: [2, 2, 2], kernel_shape: [2, 2, 2] }),
    // tfjs conv3dTranspose filter is [kd, kh, kw, outC, inC]
    tf: () => ({ inputs: { x: data(cl(xs)), w: data([2, 2, 2, 16, 32], 0.1) }, fwd: (t) => tfjsPeer().conv3dTranspose(t.x, t.w, cl(ys), 2, "valid"), grads: ["x", "w"] }),
  });
}
{ // norms and element-wise on 1×32×64³
  const d = s(64), shape = [1, 32, d, d, d], n = 32 * d ** 3, x = Tensor.from(device, randData(shape), shape);
  const gd = randData([32]), bd = randData([32], 0.5);
  const g = Tensor.from(device, gd, [32]), b = Tensor.from(device, bd, [32]);
  const c32 = (name: string, v: Float32Array) => ({ name, shape: [32], data: v });
  /** tfjs composition: normalise over `axes` of NDHWC with per-channel affine. */
  const tfNorm = (axes: number[]) => (t: Record<string, any>) => {
    const tf = tfjsPeer();
    const { mean, variance } = tf.moments(t.x, axes, true);
    return tf.add(tf.mul(tf.mul(tf.sub(t.x, mean), tf.rsqrt(tf.add(variance, 1e-5))), t.g), t.b);
  };
  const normTf = (axes: number[]) => (): TfCase => ({ inputs: { x: data(cl(shape)), g: data([32]), b: data([32], 0.5) }, fwd: tfNorm(axes), grads: ["x"] });
  await bench("instance_norm", `1×32×${d}³`, () => instanceNorm(x, g, b), [x], { bytes: 3 * 4 * n, bwdBytes: 5 * 4 * n }, {
    onnx: () => onnx1("InstanceNormalization", [{ name: "x", shape }], [c32("g", gd), c32("b", bd)], shape, { epsilon: { float: 1e-5 } }),
    tf: normTf([1, 2, 3]), note: "tfjs: composed (moments, sub, mul, rsqrt, add)",
  });
  const rm = Tensor.zeros(device, [32]), rv = Tensor.from(device, randData([32]), [32]);
  await bench("batch_norm (train)", `1×32×${d}³`, () => batchNorm(x, g, b, { training: true, runningMean: rm, runningVar: rv }), [x], { bytes: 3 * 4 * n, bwdBytes: 5 * 4 * n }, {
    onnx: () => batchNormOnnx(shape, gd, bd), tf: normTf([0, 1, 2, 3]), note: "composed from mean/variance ops (batch statistics)",
  });
  // eval: running statistics (variance positive), one read of x and one write of y
  const md = randData([32], 0.1), vd = randData([32], 0.5).map((v) => 1 + v);
  const em = Tensor.from(device, md, [32]), ev = Tensor.from(device, vd, [32]);
  await bench("batch_norm (eval)", `1×32×${d}³`, () => batchNorm(x, g, b, { training: false, runningMean: em, runningVar: ev }), [x], { bytes: 8 * n, bwdBytes: 12 * n }, {
    onnx: () => onnx1("BatchNormalization", [{ name: "x", shape }], [c32("g", gd), c32("b", bd), c32("m", md), c32("v", vd)], shape, { epsilon: { float: 1e-5 } }),
    tf: () => ({ inputs: { x: data(cl(shape)), m: { data: md, shape: [32] }, v: { data: vd, shape: [32] }, g: { data: gd, shape: [32] }, b: { data: bd, shape: [32] } },
      fwd: (t) => tfjsPeer().batchNorm(t.x, t.m, t.v, t.b, t.g, 1e-5), grads: ["x"] }),
  });
  await bench("leaky_relu", `1×32×${d}³`, () => leakyRelu(x, 0.01), [x], { bytes: 8 * n, bwdBytes: 12 * n }, {
    onnx: () => onnx1("LeakyRelu", [{ name: "x", shape }], [], shape, { alpha: { float: 0.01 } }),
    tf: () => ({ inputs: { x: data(cl(shape)) }, fwd: (t) => tfjsPeer().leakyRelu(t.x, 0.01), grads: ["x"] }),
  });
  const ps = [1, 32, d / 2, d / 2, d / 2];
  await bench("max_pool3d 2³", `1×32×${d}³`, () => maxPool3d(x, { kernel: 2 }), [x], { bytes: 4 * n * (1 + 2 / 8), bwdBytes: 4 * n * 2 }, {
    onnx: () => onnx1("MaxPool", [{ name: "x", shape }], [], ps, { kernel_shape: [2, 2, 2], strides: [2, 2, 2] }),
    tf: () => ({ inputs: { x: data(cl(shape)) }, fwd: (t) => tfjsPeer().maxPool3d(t.x, 2, 2, "valid"), grads: ["x"] }),
  });
  const xs = Tensor.from(device, randData(ps), ps);
  await bench("upsample trilinear ×2", `1×32×${d / 2}³`, () => upsample(xs, { scale: [2, 2, 2], mode: "trilinear" }), [xs], { bytes: 4 * n * (1 + 1 / 8), bwdBytes: 4 * n * (1 + 1 / 8) }, {
    onnx: () => onnx1("Resize", [{ name: "x", shape: ps }], [{ name: "scales", shape: [5], data: new Float32Array([1, 1, 2, 2, 2]) }], shape,
      { mode: "linear", coordinate_transformation_mode: "half_pixel" }, ["x", "", "scales"]),
    // tfjs has no 3-D resize: bilinear over (H, W) with D folded into the batch, then linear over D the same way
    tf: () => ({ inputs: { x: data(cl(ps)) }, fwd: (t) => tfTrilinear2x(t.x), grads: ["x"] }), note: "tfjs: composed from two resizeBilinear passes",
  });
}
/** One timed row for a step with no backward (optimizer updates): bytes moved per step. */
async function benchStep(kernel: string, shape: string, step: () => void, bytes: number) {
  if (only && !kernel.includes(only)) return;
  await quietAfterPeers(kernel);
  const r = await timedWithCeiling(step, "copy");
  const ms = med(r.times);
  const row: Row = { kernel, direction: "forward", shape, ms: +ms.toFixed(3), gbps: +(bytes / ms / 1e6).toFixed(2), ceiling: +med(r.ceilings).toFixed(2),
    fraction: +med(r.times.map((t, i) => bytes / t / 1e6 / r.ceilings[i]!)).toFixed(3),
    peers: { "onnxruntime-web webgpu": { error: "no training" }, "tfjs webgpu": { error: "not composed (tf.train.adam not timed)" }, "onnxruntime-node cpu": { error: "no training" } } };
  rows.push(row);
  writeResults();
  console.log(`${kernel.padEnd(26)} step     ${shape.padEnd(30)} ${row.ms.toFixed(2).padStart(9)} ms  ${row.gbps} GB/s  ${(row.fraction * 100).toFixed(1)} % of ceiling (${row.ceiling})`);
}
{ // optimizer steps: 4 M parameters (quick: 1 M) in one tensor, state on the GPU, one fused dispatch
  const n = quick ? 1 << 20 : 1 << 22;
  const p = Tensor.from(device, randData([n], 0.1), [n]);
  p.requiresGrad = true;
  p.grad = Tensor.from(device, randData([n], 0.01), [n]);
  const adam = new Adam([p], { lr: 1e-3 }), sgd = new SGD([p], { lr: 1e-3, momentum: 0.9 });
  // Adam reads p, grad, m, v and writes p, m, v; SGD with momentum reads p, grad, v and writes p, v
  await benchStep("adam step", `${n} params`, () => adam.step(), 28 * n);
  await benchStep("sgd step (momentum)", `${n} params`, () => sgd.step(), 20 * n);
}
{ // matmul and the transformer's linear layers
  const m = s(1024), a = Tensor.from(device, randData([m, m]), [m, m]), b = Tensor.from(device, randData([m, m], 0.5), [m, m]);
  await bench("matmul", `${m}²`, () => matmul(a, b), [a, b], { flops: 2 * m ** 3, bwdFlops: 4 * m ** 3 }, {
    onnx: () => onnx1("MatMul", [{ name: "a", shape: [m, m] }, { name: "b", shape: [m, m], scale: 0.5 }], [], [m, m]),
    tf: () => ({ inputs: { a: data([m, m]), b: data([m, m], 0.5) }, fwd: (t) => tfjsPeer().matMul(t.a, t.b), grads: ["a", "b"] }),
  });
  const t = s(7776), x = Tensor.from(device, randData([t, 384]), [t, 384]);
  const wd = randData([1536, 384], 0.05), bd = randData([1536]);
  const w = Tensor.from(device, wd, [1536, 384]), bias = Tensor.from(device, bd, [1536]);
  await bench("linear 384→1536", `${t}×384`, () => linear(x, w, bias), [x, w], { flops: 2 * t * 384 * 1536, bwdFlops: 4 * t * 384 * 1536 }, {
    onnx: () => onnx1("Gemm", [{ name: "x", shape: [t, 384] }], [{ name: "w", shape: [1536, 384], data: wd }, { name: "b", shape: [1536], data: bd }], [t, 1536], { transB: 1 }),
    tf: () => ({ inputs: { x: data([t, 384]), w: data([1536, 384], 0.05), b: data([1536]) }, fwd: (v) => tfjsPeer().add(tfjsPeer().matMul(v.x, v.w, false, true), v.b), grads: ["x", "w"] }),
  });
  const h = Tensor.from(device, randData([t, 384]), [t, 384]);
  const lwd = randData([384]), lbd = randData([384], 0.5);
  const lw = Tensor.from(device, lwd, [384]), lb = Tensor.from(device, lbd, [384]);
  await bench("layer_norm 384", `${t}×384`, () => layerNorm(h, lw, lb), [h], { bytes: 8 * t * 384, bwdBytes: 16 * t * 384 }, {
    onnx: () => onnx1("LayerNormalization", [{ name: "x", shape: [t, 384] }], [{ name: "g", shape: [384], data: lwd }, { name: "b", shape: [384], data: lbd }], [t, 384], { axis: -1, epsilon: { float: 1e-5 } }),
    tf: () => ({ inputs: { x: data([t, 384]), g: data([384]), b: data([384], 0.5) }, fwd: (v) => {
      const tf = tfjsPeer(), { mean, variance } = tf.moments(v.x, [1], true);
      return tf.add(tf.mul(tf.mul(tf.sub(v.x, mean), tf.rsqrt(tf.add(variance, 1e-5))), v.g), v.b);
    }, grads: ["x"] }), note: "tfjs: composed (moments, sub, mul, rsqrt, add)",
  });
  await bench("softmax 384", `${t}×384`, () => softmax(h, -1), [h], { bytes: 8 * t * 384, bwdBytes: 12 * t * 384 }, {
    onnx: () => onnx1("Softmax", [{ name: "x", shape: [t, 384] }], [], [t, 384], { axis: -1 }),
    tf: () => ({ inputs: { x: data([t, 384]) }, fwd: (v) => tfjsPeer().softmax(v.x, -1), grads: ["x"] }),
  });
}
{ // ms_deform_attn3d, CoTr-sized
  const shapes: [number, number, number][] = quick ? [[6, 12, 12], [3, 6, 6]] : [[12, 24, 24], [6, 12, 12]];
  const S = shapes.reduce((a, [dd, hh, ww]) => a + dd * hh * ww, 0), Lq = S, H = 6, Dh = 64, L = 2, P = 4;
  const vs = [1, S, H, Dh], ls = [1, Lq, H, L, P, 3], as = [1, Lq, H, L, P];
  const value = Tensor.from(device, randData(vs), vs), attn = Tensor.from(device, randData(as, 0.5), as);
  const locData = new Float32Array(ls.reduce((a, b) => a * b, 1)).map((_, i) => ((i * 2654435761) % 1000) / 1000);
  const locs = Tensor.from(device, locData, ls);
  const flops = 2 * Lq * H * L * P * 9 * Dh;
  const { tfMsDeformAttn3d } = await import("./peers/tfjs_msda.ts");
  const tfCase = (): TfCase => ({ inputs: { value: data(vs), loc: { data: locData, shape: ls }, attn: data(as, 0.5) },
    fwd: (t) => tfMsDeformAttn3d(tfjsPeer(), t.value, t.loc, t.attn, shapes), grads: ["value", "loc", "attn"] });
  if (tfjs instanceof TfjsPeer && (!only || "ms_deform_attn3d".includes(only))) {
    // the tfjs composition must compute our op: same data, compare outputs before timing
    const c = tfCase(), tf = tfjsPeer();
    const ins = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
    const tdev: GPUDevice = tf.backend().device;
    tdev.pushErrorScope("validation");
    const theirs: Float32Array = await tf.tidy(() => c.fwd(ins)).data();
    const failed = await tdev.popErrorScope(); // a failed tfjs kernel leaves garbage, not an error
    tf.dispose(Object.values(ins));
    const ours = await noGrad(() => msDeformAttn3d(value, shapes, locs, attn)).readFloat();
    let dd = 0, m = 0;
    for (let i = 0; i < ours.length; i++) { dd = Math.max(dd, Math.abs(ours[i]! - theirs[i]!)); m = Math.max(m, Math.abs(theirs[i]!)); }
    agreement["ms_deform_attn3d (tfjs composition)"] = ours.length === theirs.length && !failed ? dd / Math.max(m, 1e-30) : NaN;
  }
  await bench("ms_deform_attn3d", `Lq ${Lq}, 6 heads, 2 lvls, 4 pts, Dh 64`, () => msDeformAttn3d(value, shapes, locs, attn), [value, locs, attn], { flops, bwdFlops: 2 * flops }, {
    onnx: () => msdaOnnx(shapes, vs, ls, as, locData), tf: tfCase,
    note: "composed: ONNX per level from Slice/Transpose/GridSample (5-D, opset 20)/Mul/ReduceSum; tfjs (no grid-sample) from gather-based trilinear sampling (bench/peers/tfjs_msda.ts)",
  });
}
{ // convlstm2d: 256 hidden on 32×32 over 8 steps (÷4 hidden in quick mode)
  const hid = quick ? 64 : 256, hw = s(32), T = 8, cin = hid;
  const xs = [1, T, cin, hw, hw], wsh = [4 * hid, cin + hid, 3, 3];
  const wd = randData(wsh, 0.02), bd = randData([4 * hid]);
  const x = Tensor.from(device, randData(xs), xs), w = Tensor.from(device, wd, wsh), b = Tensor.from(device, bd, [4 * hid]);
  const flops = T * 2 * 4 * hid * (cin + hid) * 9 * hw * hw;
  await bench("convlstm2d", `T ${T}, ${hid} hidden, ${hw}²`, () => convLstm2d(x, w, b, { hidden: hid, kernel: 3, recurrentActivation: "hard_sigmoid" }), [x, w, b], { flops, bwdFlops: 2 * flops }, {
    onnx: () => convLstmOnnx(T, cin, hid, hw, wd, bd),
    tf: () => ({ inputs: { x: data([1, T, hw, hw, cin]), w: data([3, 3, cin + hid, 4 * hid], 0.02), b: data([4 * hid]) }, fwd: (v) => tfConvLstm(v, T, hid, hw), grads: ["x", "w", "b"] }),
    note: "composed from the peer's conv2d and element-wise ops, unrolled over the 8 steps",
  });
}

// ---- compositions for the peers

function tfjsPeer(): any {
  return (tfjs as TfjsPeer).tf;
}

function batchNormOnnx(shape: number[], gd: Float32Array, bd: Float32Array): OnnxCase {
  const c = shape[1]!, bc = [1, c, 1, 1, 1];
  const nodes: OnnxNode[] = [
    { op: "ReduceMean", inputs: ["x"], outputs: ["mean"], attrs: { axes: [0, 2, 3, 4], keepdims: 1 } },
    { op: "Sub", inputs: ["x", "mean"], outputs: ["d"] },
    { op: "Mul", inputs: ["d", "d"], outputs: ["d2"] },
    { op: "ReduceMean", inputs: ["d2"], outputs: ["var"], attrs: { axes: [0, 2, 3, 4], keepdims: 1 } },
    { op: "Add", inputs: ["var", "eps"], outputs: ["ve"] },
    { op: "Sqrt", inputs: ["ve"], outputs: ["sd"] },
    { op: "Div", inputs: ["d", "sd"], outputs: ["xn"] },
    { op: "Mul", inputs: ["xn", "g"], outputs: ["xg"] },
    { op: "Add", inputs: ["xg", "b"], outputs: ["y"] },
  ];
  return {
    graph: { nodes, inputs: [{ name: "x", shape }], outputs: [{ name: "y", shape }], initializers: [
      { name: "eps", shape: [], data: new Float32Array([1e-5]) }, { name: "g", shape: bc, data: gd }, { name: "b", shape: bc, data: bd }] },
    feeds: { x: data(shape) },
  };
}

/** Trilinear ×2 (align_corners = false) from tfjs's bilinear resize: (H, W) with D in the batch, then D. */
function tfTrilinear2x(x: any): any {
  const tf = tfjsPeer();
  const [n, d, h, w, c] = x.shape;
  const hw = tf.image.resizeBilinear(tf.reshape(x, [n * d, h, w, c]), [2 * h, 2 * w], false, true);
  const dz = tf.reshape(hw, [n, d, 4 * h * w, c]);
  const up = tf.image.resizeBilinear(dz, [2 * d, 4 * h * w], false, true);
  return tf.reshape(up, [n, 2 * d, 2 * h, 2 * w, c]);
}

function tfConvLstm(v: Record<string, any>, T: number, hid: number, hw: number): any {
  const tf = tfjsPeer();
  let h = tf.zeros([1, hw, hw, hid]), c = tf.zeros([1, hw, hw, hid]);
  const hs: any[] = [];
  const hsig = (z: any) => tf.clipByValue(tf.add(tf.mul(z, 0.2), 0.5), 0, 1);
  for (let t = 0; t < T; t++) {
    const xt = tf.squeeze(tf.slice(v.x, [0, t, 0, 0, 0], [1, 1, -1, -1, -1]), [1]);
    const z = tf.add(tf.conv2d(tf.concat([xt, h], -1), v.w, 1, "same"), v.b);
    const [i, f, g, o] = tf.split(z, 4, -1);
    c = tf.add(tf.mul(hsig(f), c), tf.mul(hsig(i), tf.tanh(g)));
    h = tf.mul(hsig(o), tf.tanh(c));
    hs.push(h);
  }
  return tf.stack(hs, 1);
}

function convLstmOnnx(T: number, cin: number, hid: number, hw: number, wd: Float32Array, bd: Float32Array): OnnxCase {
  const nodes: OnnxNode[] = [];
  const state = [1, hid, hw, hw];
  const inits: OnnxGraph["initializers"] = [
    { name: "w", shape: [4 * hid, cin + hid, 3, 3], data: wd }, { name: "b", shape: [4 * hid], data: bd },
    { name: "h_init", shape: state, data: new Float32Array(hid * hw * hw) }, ints("axis1", [1]),
  ];
  let h = "h_init", c = "h_init";
  const outs: string[] = [];
  for (let t = 0; t < T; t++) {
    inits.push({ name: `t${t}`, shape: [], data: BigInt64Array.from([BigInt(t)]) });
    const p = (s: string) => `${s}${t}`;
    nodes.push(
      { op: "Gather", inputs: ["x", p("t")], outputs: [p("xt")], attrs: { axis: 1 } },
      { op: "Concat", inputs: [p("xt"), h], outputs: [p("xh")], attrs: { axis: 1 } },
      { op: "Conv", inputs: [p("xh"), "w", "b"], outputs: [p("z")], attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
      { op: "Split", inputs: [p("z")], outputs: [p("zi"), p("zf"), p("zg"), p("zo")], attrs: { axis: 1 } },
      ...["i", "f", "o"].map((k) => ({ op: "HardSigmoid", inputs: [p(`z${k}`)], outputs: [p(`s${k}`)], attrs: { alpha: { float: 0.2 }, beta: { float: 0.5 } } })),
      { op: "Tanh", inputs: [p("zg")], outputs: [p("tg")] },
      { op: "Mul", inputs: [p("sf"), c], outputs: [p("fc")] },
      { op: "Mul", inputs: [p("si"), p("tg")], outputs: [p("ig")] },
      { op: "Add", inputs: [p("fc"), p("ig")], outputs: [p("c")] },
      { op: "Tanh", inputs: [p("c")], outputs: [p("tc")] },
      { op: "Mul", inputs: [p("so"), p("tc")], outputs: [p("h")] },
      { op: "Unsqueeze", inputs: [p("h"), "axis1"], outputs: [p("hu")] },
    );
    h = p("h");
    c = p("c");
    outs.push(p("hu"));
  }
  nodes.push({ op: "Concat", inputs: outs, outputs: ["y"], attrs: { axis: 1 } });
  const xs = [1, T, cin, hw, hw];
  return { graph: { nodes, inputs: [{ name: "x", shape: xs }], outputs: [{ name: "y", shape: [1, T, hid, hw, hw] }], initializers: inits }, feeds: { x: data(xs) } };
}

/** MSDA from GridSample per level: value level l → [H, Dh, d, h, w]; its sampling locations
 * (in [0, 1]) → grid [H, Lq, P, 1, 3] in [−1, 1]; samples × attention weights summed over P, then
 * over levels. (Which location component maps to which axis does not change the cost.) */
function msdaOnnx(shapes: [number, number, number][], vs: number[], ls: number[], as: number[], locData: Float32Array): OnnxCase {
  const [, , H, Dh] = vs as [number, number, number, number];
  const Lq = ls[1]!, P = ls[4]!;
  const nodes: OnnxNode[] = [];
  const inits: OnnxGraph["initializers"] = [ints("ax1", [1]), ints("ax3", [3]), { name: "two", shape: [], data: new Float32Array([2]) }, { name: "one", shape: [], data: new Float32Array([1]) }];
  let start = 0;
  const levels: string[] = [];
  shapes.forEach(([d, h, w], l) => {
    const p = (s: string) => `${s}_l${l}`;
    inits.push(ints(p("st"), [start]), ints(p("en"), [start + d * h * w]), ints(p("vshape"), [H, Dh, d, h, w]), { name: p("idx"), shape: [], data: BigInt64Array.from([BigInt(l)]) },
      ints(p("gshape"), [H, Lq, P, 1, 3]), ints(p("ashape"), [H, 1, Lq, P, 1]));
    start += d * h * w;
    nodes.push(
      { op: "Slice", inputs: ["value", p("st"), p("en"), "ax1"], outputs: [p("v")] },
      { op: "Transpose", inputs: [p("v")], outputs: [p("vt")], attrs: { perm: [0, 2, 3, 1] } },
      { op: "Reshape", inputs: [p("vt"), p("vshape")], outputs: [p("vg")] },
      { op: "Gather", inputs: ["loc", p("idx")], outputs: [p("lc")], attrs: { axis: 3 } },
      { op: "Transpose", inputs: [p("lc")], outputs: [p("lt")], attrs: { perm: [0, 2, 1, 3, 4] } },
      { op: "Reshape", inputs: [p("lt"), p("gshape")], outputs: [p("g01")] },
      { op: "Mul", inputs: [p("g01"), "two"], outputs: [p("g2")] },
      { op: "Sub", inputs: [p("g2"), "one"], outputs: [p("grid")] },
      { op: "GridSample", inputs: [p("vg"), p("grid")], outputs: [p("s")], attrs: { mode: "linear", padding_mode: "zeros", align_corners: 0 } },
      { op: "Gather", inputs: ["attn", p("idx")], outputs: [p("ac")], attrs: { axis: 3 } },
      { op: "Transpose", inputs: [p("ac")], outputs: [p("at")], attrs: { perm: [0, 2, 1, 3] } },
      { op: "Reshape", inputs: [p("at"), p("ashape")], outputs: [p("aw")] },
      { op: "Mul", inputs: [p("s"), p("aw")], outputs: [p("sw")] },
      { op: "ReduceSum", inputs: [p("sw"), "ax3"], outputs: [p("r")], attrs: { keepdims: 0 } },
    );
    levels.push(p("r"));
  });
  nodes.push({ op: "Sum", inputs: levels, outputs: ["acc"] });
  inits.push(ints("oshape", [1, H * Dh, Lq]));
  // acc [H, Dh, Lq, 1] → [1, Lq, H*Dh]
  nodes.push({ op: "Reshape", inputs: ["acc", "oshape"], outputs: ["acc2"] }, { op: "Transpose", inputs: ["acc2"], outputs: ["y"], attrs: { perm: [0, 2, 1] } });
  return {
    graph: { nodes, inputs: [{ name: "value", shape: vs }, { name: "loc", shape: ls }, { name: "attn", shape: as }], outputs: [{ name: "y", shape: [1, Lq, H * Dh] }], initializers: inits, opset: 20 },
    feeds: { value: data(vs), loc: { data: locData, shape: ls }, attn: data(as, 0.5) },
  };
}

// ---- results (rewritten after every kernel, so an interrupted full run still leaves its rows)
function writeResults(): void {
  const peerInfo = {
    "onnxruntime-web webgpu": ortWeb instanceof OrtWebPeer ? `onnxruntime-web ${ortWeb.version()}` : startError(ortWeb),
    "tfjs webgpu": tfjs instanceof TfjsPeer ? `tfjs-core ${tfjs.version()}, backend ${tfjs.tf.getBackend()}` : startError(tfjs),
    "onnxruntime-node cpu": ortNode instanceof OrtNodePeer ? "onnxruntime-node" : startError(ortNode),
  };
  for (const r of rows) r.measured ??= startedAt;
  let outRows = rows;
  let date = startedAt;
  const prev = fullRun;
  if (prev) {
    // the full run's rows, with this run's rows in place of the kernels it re-measured
    const rerun = new Set(rows.map((r) => r.kernel));
    outRows = [];
    for (const r of prev.rows) {
      if (!rerun.has(r.kernel)) outRows.push({ ...r, measured: r.measured ?? prev.date });
      else if (!outRows.some((o) => o.kernel === r.kernel)) outRows.push(...rows.filter((n) => n.kernel === r.kernel));
    }
    for (const r of rows) if (!outRows.includes(r)) outRows.push(r);
    date = prev.date;
  }
  const ceilings = { fma_gflops: +fmaCeiling.toFixed(2), copy_gbps: +copyCeiling.toFixed(2), exp_copy_gbps: +expCopy.toFixed(2), conv_loop_gflops: Object.fromEntries(Object.entries(convLoop).map(([k, v]) => [k, +v.toFixed(2)])) };
  const result = {
    adapter: device.adapterDescription, date, quick, reps, short_reps: SHORT_REPS, short_span_ms: SHORT_SPAN_MS,
    // merged: the full run's start-of-run ceilings stay; this run's go beside them
    ceilings: (prev?.ceilings ?? ceilings) as typeof ceilings,
    ...(prev ? { merged_run_ceilings: ceilings } : {}),
    peers: withPeers ? peerInfo : null, ort_webgpu_placement: placements, agreement_with_onnxruntime_node: agreement,
    tfjs_console: tfjs instanceof TfjsPeer ? tfjs.warnings.slice(0, 20) : [], rows: outRows,
  };
  const name = resultsBase + (only && !merge ? ".only" : "");
  const remeasured = [...new Set(outRows.filter((r) => r.measured !== date).map((r) => `${r.kernel} (${r.measured!.slice(0, 16).replace("T", " ")})`))];
  writeResult(`${name}.json`, JSON.stringify(result, null, 2) + "\n");
  const ratio = (c?: PeerCell) => (c?.ratio !== undefined ? `×${c.ratio}` : c?.error ? "—" : "");
  const md = [
    `# Kernel bench (${quick ? "quick sizes" : "issue 7 sizes"})`, "",
    `Adapter: ${device.adapterDescription}. Ceilings measured at the start of the run: FMA ${result.ceilings.fma_gflops.toFixed(1)} GFLOP/s, copy ${result.ceilings.copy_gbps.toFixed(1)} GB/s (the same copy taking one exp per value: ${result.ceilings.exp_copy_gbps.toFixed(1)} GB/s). ` +
    `Median of ${reps} runs after warm-up (up to ${SHORT_REPS} for kernels under ${SHORT_SPAN_MS / reps} ms), GPU completion included; the backward is timed alone (each run's forward completed untimed before it; tfjs's backward = its forward + backward − forward). ` +
    `Each timed run is followed by a short probe of the matching ceiling; % of ceiling is the median of run rate / probe (the machine is shared, see bench/NOTES.md). ` +
    `Peer columns: time_peer / time_ours (> 1: ours faster); — = not available (reason in kernels.json and bench/NOTES.md).` +
    (remeasured.length ? ` Run of ${date.slice(0, 16).replace("T", " ")} UTC; rows re-measured later (--merge), each with its own ceiling probes: ${remeasured.join(", ")}.` : ""), "",
    "| kernel | dir | shape | ms | GFLOP/s | GB/s | ceiling beside it | % of ceiling | vs ORT-web WebGPU | vs tfjs WebGPU | vs ORT-node CPU |", "|---|---|---|---|---|---|---|---|---|---|---|",
    ...outRows.map((r) => `| ${r.kernel} | ${r.direction} | ${r.shape} | ${r.ms} | ${r.gflops ?? ""} | ${r.gbps ?? ""} | ${r.ceiling} ${r.gflops !== undefined ? "GFLOP/s" : "GB/s"} | ${(r.fraction * 100).toFixed(1)} | ${ratio(r.peers["onnxruntime-web webgpu"])} | ${ratio(r.peers["tfjs webgpu"])} | ${ratio(r.peers["onnxruntime-node cpu"])} |`),
  ].join("\n");
  writeResult(`${name}.md`, md + "\n");
}
writeResults();
console.log(JSON.stringify({ placements, agreement }, null, 1));
device.destroy();
process.exit(0);

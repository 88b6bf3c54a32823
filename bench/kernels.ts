// Kernel throughput against this adapter's measured ceilings (FMA-only and copy shaders).
// `npm run bench:kernels` (full sizes of issue 7) or `-- --quick` (sizes ÷ 2 per axis, for a smoke run).
// Each figure: median of ≥ 5 timed runs after one warm-up, GPU completion included.
import {
  createDevice, Tensor, tidy, backward, noGrad,
  conv3d, convTranspose3d, instanceNorm, batchNorm, layerNorm, softmax, matmul, linear, leakyRelu,
  maxPool3d, upsample, msDeformAttn3d, convLstm2d, type Device,
} from "../src/node.ts";
import { median as medianOf, fmaCeiling as measureFma, copyCeiling as measureCopy, rand, writeResult } from "./common.ts";

const quick = process.argv.includes("--quick");
const reps = quick ? 3 : 5;

const median = (device: Device, fn: () => void) => medianOf(device, fn, reps);

interface Row { kernel: string; direction: "forward" | "backward"; shape: string; ms: number; gflops?: number; gbps?: number; fraction: number }

const device = await createDevice();
const s = (n: number) => (quick ? Math.max(2, n >> 1) : n);

// Ceilings
const fmaCeiling = await measureFma(device, reps, quick ? 128 : 512);
const copyCeiling = await measureCopy(device, reps, (quick ? 8 : 32) * 1024 * 1024 / 4);
console.log(`adapter: ${device.adapterDescription}`);
console.log(`ceilings: FMA ${fmaCeiling.toFixed(1)} GFLOP/s, copy ${copyCeiling.toFixed(1)} GB/s`);

const rows: Row[] = [];
async function bench(kernel: string, shape: string, fwd: () => Tensor, inputs: Tensor[], work: { flops?: number; bytes?: number; bwdFlops?: number; bwdBytes?: number }) {
  const fms = await median(device, () => tidy(device, () => { noGrad(fwd); }));
  const add = (direction: Row["direction"], ms: number, flops?: number, bytes?: number) => {
    const row: Row = { kernel, direction, shape, ms: +ms.toFixed(3), fraction: 0 };
    if (flops) { row.gflops = +(flops / ms / 1e6).toFixed(2); row.fraction = +(row.gflops / fmaCeiling).toFixed(3); }
    else if (bytes) { row.gbps = +(bytes / ms / 1e6).toFixed(2); row.fraction = +(row.gbps / copyCeiling).toFixed(3); }
    rows.push(row);
    console.log(`${kernel.padEnd(28)} ${direction.padEnd(8)} ${shape.padEnd(30)} ${row.ms.toFixed(2).padStart(9)} ms  ${row.gflops !== undefined ? `${row.gflops} GFLOP/s` : `${row.gbps} GB/s`}  ${(row.fraction * 100).toFixed(1)} % of ceiling`);
  };
  add("forward", fms, work.flops, work.bytes);
  for (const t of inputs) t.requiresGrad = true;
  const bms = await median(device, () => tidy(device, () => {
    const y = fwd();
    backward(y, [Tensor.zeros(device, y.shape)]);
    for (const t of inputs) { t.grad?.dispose(); t.grad = null; }
  }));
  add("backward", Math.max(bms - fms, 1e-3), work.bwdFlops, work.bwdBytes);
  for (const t of inputs) t.requiresGrad = false;
}

{ // conv3d 32→32 k3 on 1×32×64³
  const d = s(64), x = rand(device, [1, 32, d, d, d]), w = rand(device, [32, 32, 3, 3, 3], 0.05);
  const flops = 2 * 32 * 32 * 27 * d ** 3;
  await bench("conv3d k3 32→32", `1×32×${d}³`, () => conv3d(x, w, null, { padding: 1 }), [x, w], { flops, bwdFlops: 2 * flops });
}
{ // 1×1×1 conv, 5³ and 7³ stride (1,2,2)
  const d = s(64), x = rand(device, [1, 32, d, d, d]), w = rand(device, [32, 32, 1, 1, 1], 0.1);
  const flops = 2 * 32 * 32 * d ** 3;
  await bench("conv3d k1 32→32", `1×32×${d}³`, () => conv3d(x, w), [x, w], { flops, bwdFlops: 2 * flops });
  for (const k of [5, 7]) {
    const xs = rand(device, [1, 1, s(48), s(96), s(96)]), ws = rand(device, [16, 1, k, k, k], 0.1);
    const o = [s(48), s(96) / 2, s(96) / 2];
    const f = 2 * 16 * k ** 3 * o[0]! * o[1]! * o[2]!;
    await bench(`conv3d k${k} s(1,2,2) 1→16`, `1×1×${s(48)}×${s(96)}²`, () => conv3d(xs, ws, null, { stride: [1, 2, 2], padding: k >> 1 }), [xs, ws], { flops: f, bwdFlops: 2 * f });
  }
}
{ // conv_transpose3d k2 s2
  const d = s(32), x = rand(device, [1, 32, d, d, d]), w = rand(device, [32, 16, 2, 2, 2], 0.1);
  const flops = 2 * 32 * 16 * 8 * d ** 3;
  await bench("conv_transpose3d k2 s2", `1×32×${d}³`, () => convTranspose3d(x, w, null, { stride: 2 }), [x, w], { flops, bwdFlops: 2 * flops });
}
{ // norms and element-wise on 1×32×64³
  const d = s(64), shape = [1, 32, d, d, d], n = 32 * d ** 3, x = rand(device, shape);
  const g = rand(device, [32]), b = rand(device, [32]);
  await bench("instance_norm", `1×32×${d}³`, () => instanceNorm(x, g, b), [x], { bytes: 3 * 4 * n, bwdBytes: 5 * 4 * n });
  const rm = Tensor.zeros(device, [32]), rv = rand(device, [32]);
  await bench("batch_norm (train)", `1×32×${d}³`, () => batchNorm(x, g, b, { training: true, runningMean: rm, runningVar: rv }), [x], { bytes: 3 * 4 * n, bwdBytes: 5 * 4 * n });
  await bench("leaky_relu", `1×32×${d}³`, () => leakyRelu(x, 0.01), [x], { bytes: 8 * n, bwdBytes: 12 * n });
  await bench("max_pool3d 2³", `1×32×${d}³`, () => maxPool3d(x, { kernel: 2 }), [x], { bytes: 4 * n * (1 + 2 / 8), bwdBytes: 4 * n * 2 });
  const xs = rand(device, [1, 32, d / 2, d / 2, d / 2]);
  await bench("upsample trilinear ×2", `1×32×${d / 2}³`, () => upsample(xs, { scale: [2, 2, 2], mode: "trilinear" }), [xs], { bytes: 4 * n * (1 + 1 / 8), bwdBytes: 4 * n * (1 + 1 / 8) });
}
{ // matmul and the transformer's linear layers
  const m = s(1024), a = rand(device, [m, m]), b = rand(device, [m, m]);
  await bench("matmul", `${m}²`, () => matmul(a, b), [a, b], { flops: 2 * m ** 3, bwdFlops: 4 * m ** 3 });
  const t = s(7776), x = rand(device, [t, 384]), w = rand(device, [1536, 384], 0.05), bias = rand(device, [1536]);
  await bench("linear 384→1536", `${t}×384`, () => linear(x, w, bias), [x, w], { flops: 2 * t * 384 * 1536, bwdFlops: 4 * t * 384 * 1536 });
  const h = rand(device, [t, 384]), lw = rand(device, [384]), lb = rand(device, [384]);
  await bench("layer_norm 384", `${t}×384`, () => layerNorm(h, lw, lb), [h], { bytes: 8 * t * 384, bwdBytes: 16 * t * 384 });
  await bench("softmax 384", `${t}×384`, () => softmax(h, -1), [h], { bytes: 8 * t * 384, bwdBytes: 12 * t * 384 });
}
{ // ms_deform_attn3d, CoTr-sized
  const shapes: [number, number, number][] = quick ? [[6, 12, 12], [3, 6, 6]] : [[12, 24, 24], [6, 12, 12]];
  const S = shapes.reduce((a, [dd, hh, ww]) => a + dd * hh * ww, 0), Lq = S, H = 6, Dh = 64, L = 2, P = 4;
  const value = rand(device, [1, S, H, Dh]), loc = rand(device, [1, Lq, H, L, P, 3], 0.5), attn = rand(device, [1, Lq, H, L, P], 0.5);
  const locs = Tensor.from(device, new Float32Array(loc.size).map((_, i) => ((i * 2654435761) % 1000) / 1000), loc.shape);
  const flops = 2 * Lq * H * L * P * 9 * Dh;
  await bench("ms_deform_attn3d", `Lq ${Lq}, 6 heads, 2 lvls, 4 pts, Dh 64`, () => msDeformAttn3d(value, shapes, locs, attn), [value, locs, attn], { flops, bwdFlops: 2 * flops });
}
{ // convlstm2d: 256 hidden on 32×32 over 8 steps (÷4 hidden in quick mode)
  const hid = quick ? 64 : 256, hw = s(32), T = 8, cin = hid;
  const x = rand(device, [1, T, cin, hw, hw]), w = rand(device, [4 * hid, cin + hid, 3, 3], 0.02), b = rand(device, [4 * hid]);
  const flops = T * 2 * 4 * hid * (cin + hid) * 9 * hw * hw;
  await bench("convlstm2d", `T ${T}, ${hid} hidden, ${hw}²`, () => convLstm2d(x, w, b, { hidden: hid, kernel: 3, recurrentActivation: "hard_sigmoid" }), [x, w, b], { flops, bwdFlops: 2 * flops });
}

const result = { adapter: device.adapterDescription, date: new Date().toISOString(), quick, ceilings: { fma_gflops: +fmaCeiling.toFixed(2), copy_gbps: +copyCeiling.toFixed(2) }, rows };
writeResult(quick ? "kernels.quick.json" : "kernels.json", JSON.stringify(result, null, 2) + "\n");
const md = [
  `# Kernel bench (${quick ? "quick sizes" : "issue 7 sizes"})`, "",
  `Adapter: ${device.adapterDescription}. Ceilings measured in the same run: FMA ${fmaCeiling.toFixed(1)} GFLOP/s, copy ${copyCeiling.toFixed(1)} GB/s. Median of ${reps} after warm-up; backward = (forward + backward) − forward.`, "",
  "| kernel | dir | shape | ms | GFLOP/s | GB/s | % of ceiling |", "|---|---|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.kernel} | ${r.direction} | ${r.shape} | ${r.ms} | ${r.gflops ?? ""} | ${r.gbps ?? ""} | ${(r.fraction * 100).toFixed(1)} |`),
].join("\n");
writeResult(quick ? "kernels.quick.md" : "kernels.md", md + "\n");
device.destroy();
process.exit(0);

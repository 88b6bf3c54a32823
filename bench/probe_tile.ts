// Register-tile roofline of this adapter (kernels/bench/tile_fma.wgsl): GFLOP/s of a conv-shaped
// loop with a P × Q accumulator tile, P per-lane input loads and Q weight loads per step, for each
// weight source, as a fraction of the FMA ceiling measured alternately in the same process.
// Usage: npx tsx bench/probe_tile.ts [--reps 5]  → bench/results/probe_tile.json
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fmaCeiling, writeResult } from "./common.ts";
import { commandDevice } from "../src/cli/device.ts";

const argv = process.argv.slice(2);
const reps = argv.includes("--reps") ? Number(argv[argv.indexOf("--reps") + 1]) : 5;
const device = await commandDevice(); // as the `pulmo` commands: main thread deprioritized
const gpu = device.gpu;
const code = readFileSync(join(import.meta.dirname, "..", "kernels", "bench", "tile_fma.wgsl"), "utf8");
const module = gpu.createShaderModule({ code });
const invocations = 65536, iters = 256, n = 1 << 22;
const buf = (size: number, usage: number) => gpu.createBuffer({ size, usage });
const S = GPUBufferUsage.STORAGE, U = GPUBufferUsage.UNIFORM, D = GPUBufferUsage.COPY_DST;
const params = buf(16, U | D), x = buf(n * 4, S), w = buf(4096, S), wu = buf(4096, U), out = buf(invocations * 4, S);
gpu.queue.writeBuffer(params, 0, new Uint32Array([iters, n, 0, 0]));
const sources = ["storage", "uniform", "workgroup", "registers"];

async function time(pipeline: GPUComputePipeline, group: GPUBindGroup): Promise<number> {
  const run = async () => {
    const enc = gpu.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(invocations / 64);
    pass.end();
    const t0 = performance.now();
    gpu.queue.submit([enc.finish()]);
    await gpu.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await run();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) t.push(await run());
  return t.sort((a, b) => a - b)[Math.floor(reps / 2)]!;
}

const rows: { P: number; Q: number; source: string; gflops: number; fma_gflops: number; fraction: number }[] = [];
for (const [P, Q] of [[1, 16], [4, 4], [4, 8], [4, 16], [8, 8], [8, 16]] as const) {
  for (let s = 0; s < 4; s++) {
    const pipeline = gpu.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main", constants: { P, Q, SOURCE: s } } });
    const group = gpu.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [params, x, w, wu, out].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const ms = await time(pipeline, group);
    const fma = await fmaCeiling(device, 3, 128);
    const gflops = (invocations * iters * P * Q * 2) / ms / 1e6;
    rows.push({ P, Q, source: sources[s]!, gflops: +gflops.toFixed(2), fma_gflops: +fma.toFixed(2), fraction: +(gflops / fma).toFixed(3) });
    console.log(`P ${P} Q ${Q} ${sources[s]!.padEnd(9)} ${gflops.toFixed(2).padStart(6)} GFLOP/s  ${(100 * gflops / fma).toFixed(1).padStart(5)} % of FMA ${fma.toFixed(1)}`);
  }
}
writeResult("probe_tile.json", JSON.stringify({ adapter: device.adapterDescription, date: new Date().toISOString(), reps, invocations, iters, rows }, null, 2) + "\n");
device.destroy();

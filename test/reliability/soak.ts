// Long-run memory checks: many consecutive inferences of a small model (segment() over a volume,
// the whole pipeline) and many training steps (fit), sampling the buffer pool and the process RSS.
// After a warm-up the pool must not grow at all and RSS must stay within a small band. Used by
// `npm run soak` (scripts/soak.ts, full counts) and test/reliability/soak.test.ts (short run).
import v8 from "node:v8";
import vm from "node:vm";
import { Adam, bceWithLogitsLoss, buildModel, fit, nn, segment, type Device } from "../../src/node.ts";
import { TinyNet, blob } from "../graph/fit_data.ts";

export interface Samples {
  /** iteration index of each sample */
  at: number[];
  poolAllocatedBytes: number[];
  poolInUseBytes: number[];
  rssBytes: number[];
  heapBytes: number[];
}

export interface SoakSummary {
  iterations: number;
  warmup: number;
  seconds: number;
  /** pool bytes allocated right after warm-up and at the end (equal when flat) */
  poolAllocatedAfterWarmup: number;
  poolAllocatedAtEnd: number;
  poolAllocatedMax: number;
  /** pool bytes in use between iterations (the run's own buffers all released: the model's only) */
  poolInUseAfterWarmup: number;
  poolInUseAtEnd: number;
  buffersCreatedAfterWarmup: number;
  buffersCreatedAtEnd: number;
  /** median RSS of the first and last fifth of the samples after warm-up, MiB */
  rssEarlyMiB: number;
  rssLateMiB: number;
  rssGrowthMiB: number;
  /** least-squares slope of RSS over the samples after warm-up, MiB per 1,000 iterations */
  rssSlopeMiBPer1000: number;
  /** V8 heap in use (after a full collection), median of the first and last fifth, MiB */
  heapEarlyMiB: number;
  heapLateMiB: number;
  heapGrowthMiB: number;
}

const MiB = 1024 * 1024;

/** A full collection before each RSS sample, so garbage not yet collected does not read as growth
 * (global.gc under --expose-gc, else the same function obtained at run time). */
export const collect: () => void =
  (globalThis as { gc?: () => void }).gc ??
  (() => {
    v8.setFlagsFromString("--expose-gc");
    return vm.runInNewContext("gc") as () => void;
  })();
const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
}

class Recorder {
  readonly s: Samples = { at: [], poolAllocatedBytes: [], poolInUseBytes: [], rssBytes: [], heapBytes: [] };
  created: number[] = [];
  constructor(private device: Device) {}
  sample(i: number): void {
    collect();
    this.s.at.push(i);
    this.s.poolAllocatedBytes.push(this.device.pool.allocatedBytes);
    this.s.poolInUseBytes.push(this.device.pool.inUseBytes);
    const m = process.memoryUsage();
    this.s.rssBytes.push(m.rss);
    this.s.heapBytes.push(m.heapUsed);
    this.created.push(this.device.pool.buffersCreated);
  }
  summary(iterations: number, warmup: number, seconds: number): SoakSummary {
    const k = this.s.at.findIndex((i) => i >= warmup);
    const after = (a: number[]) => a.slice(k);
    const rss = after(this.s.rssBytes);
    const heap = after(this.s.heapBytes);
    const xs = after(this.s.at);
    const fifth = Math.max(1, Math.floor(rss.length / 5));
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
    const my = rss.reduce((a, b) => a + b, 0) / rss.length;
    let num = 0, den = 0;
    xs.forEach((x, i) => {
      num += (x - mx) * (rss[i]! - my);
      den += (x - mx) ** 2;
    });
    const slope = den ? num / den : 0;
    return {
      iterations,
      warmup,
      seconds: round(seconds, 1),
      poolAllocatedAfterWarmup: this.s.poolAllocatedBytes[k]!,
      poolAllocatedAtEnd: this.s.poolAllocatedBytes.at(-1)!,
      poolAllocatedMax: Math.max(...after(this.s.poolAllocatedBytes)),
      poolInUseAfterWarmup: this.s.poolInUseBytes[k]!,
      poolInUseAtEnd: this.s.poolInUseBytes.at(-1)!,
      buffersCreatedAfterWarmup: this.created[k]!,
      buffersCreatedAtEnd: this.created.at(-1)!,
      rssEarlyMiB: round(median(rss.slice(0, fifth)) / MiB),
      rssLateMiB: round(median(rss.slice(-fifth)) / MiB),
      rssGrowthMiB: round((median(rss.slice(-fifth)) - median(rss.slice(0, fifth))) / MiB),
      rssSlopeMiBPer1000: round((slope * 1000) / MiB),
      heapEarlyMiB: round(median(heap.slice(0, fifth)) / MiB),
      heapLateMiB: round(median(heap.slice(-fifth)) / MiB),
      heapGrowthMiB: round((median(heap.slice(-fifth)) - median(heap.slice(0, fifth))) / MiB),
    };
  }
}

/** shared/reference/models.py PRESETS["unet3d"]["tiny"] */
export const TINY_UNET3D = { enc: [[4, 6], [6, 10], [10, 16]], dec: [[10, 8], [6, 6]] };

function volume(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 1400 - 1000);
}

/** `iterations` segment() calls of a tiny 3D U-Net over an 8×8×16 CT (2 windows of 8³ each). */
export async function soakInference(device: Device, iterations: number, o: { warmup?: number; every?: number } = {}): Promise<SoakSummary> {
  const warmup = o.warmup ?? Math.max(5, Math.floor(iterations / 10));
  const every = o.every ?? Math.max(1, Math.floor(iterations / 100));
  nn.setInitSeed(7);
  const model = buildModel(device, "unet3d", TINY_UNET3D);
  model.eval();
  const rec = new Recorder(device);
  const ct = { data: volume(8 * 8 * 16, 3), shape: [8, 8, 16] as [number, number, number], spacing: [1, 1, 1] };
  const t0 = performance.now();
  try {
    for (let i = 0; i < iterations; i++) {
      const r = await segment(model, ct, { window: { patch: [8, 8, 8], overlap: 0 } });
      if (r.windows !== 2) throw new Error(`expected 2 windows, got ${r.windows}`);
      if ((i + 1) % every === 0 || i + 1 === iterations) {
        await device.flush();
        rec.sample(i + 1);
      }
    }
  } finally {
    model.dispose();
  }
  return rec.summary(iterations, warmup, (performance.now() - t0) / 1000);
}

/** `steps` fit() steps (Adam, batch 2, validation each epoch of 4 steps) of a small conv net. */
export async function soakTraining(device: Device, steps: number, o: { warmup?: number } = {}): Promise<SoakSummary & { firstLoss: number; lastLoss: number }> {
  const warmup = o.warmup ?? Math.max(8, Math.floor(steps / 10));
  const net = new TinyNet(device);
  const optimizer = new Adam(net.parameters(), { lr: 0.02 });
  const samples = Array.from({ length: 8 }, (_, i) => blob(i + 1));
  const rec = new Recorder(device);
  const losses: number[] = [];
  const stepsPerEpoch = 4;
  const t0 = performance.now();
  try {
    await fit({
      model: net,
      optimizer,
      loss: bceWithLogitsLoss,
      samples,
      validation: samples.slice(0, 2),
      batchSize: 2,
      epochs: Math.ceil(steps / stepsPerEpoch),
      onStep: (s) => void losses.push(s.loss),
      // sampled once per epoch, after validation: the loop's own buffers are all released then
      onEpoch: async () => {
        await device.flush();
        rec.sample(losses.length);
      },
    });
  } finally {
    optimizer.dispose();
    net.dispose();
  }
  return { ...rec.summary(losses.length, warmup, (performance.now() - t0) / 1000), firstLoss: round(losses[0]!, 4), lastLoss: round(losses.at(-1)!, 4) };
}

// Faults during long runs: cancellation of segmentation and training (stops within one window or
// step, GPU memory back to its baseline), device loss mid-run (a clear PulmoError, then a new device
// and the reloaded model give the same result), and two models interleaved on one device.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runSegment, type SegmentModel } from "../../src/cli/segment.ts";
import { writeNifti } from "../../src/io/nifti.ts";
import {
  Adam, InferenceCancelledError, PulmoError, Tensor, bceWithLogitsLoss, buildModel, createDevice, fit, nn, segment, slidingWindow,
  type Device, type SegmentationNet,
} from "../../src/node.ts";
import { useDevice } from "../helpers.ts";
import { TINY_UNET3D } from "./soak.ts";

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 31) - 1);
}

function tinyUnet(d: Device, seed: number, config: Record<string, unknown> = TINY_UNET3D): SegmentationNet {
  nn.setInitSeed(seed);
  const m = buildModel(d, "unet3d", config);
  m.eval();
  return m;
}

/** fit samples for the 2-channel tiny U-Net: [1, 1, 8³] inputs, one-hot [1, 2, 8³] targets */
const samples = Array.from({ length: 6 }, (_, i) => {
  const fg = rand(512, i + 11).map((v) => (v > 0 ? 1 : 0));
  const target = new Float32Array(1024);
  fg.forEach((v, k) => ((target[k] = 1 - v), (target[512 + k] = v)));
  return { input: { data: rand(512, i + 1), shape: [1, 1, 8, 8, 8] }, target: { data: target, shape: [1, 2, 8, 8, 8] } };
});

describe("cancellation", () => {
  const dev = useDevice();

  it("slidingWindow: an abort during a window's forward stops before the next window; pool back to baseline", async () => {
    const d = dev();
    const model = tinyUnet(d, 1);
    await d.flush();
    const baseline = d.pool.inUseBytes;
    const ac = new AbortController();
    const done: number[] = [];
    // 3 × 3 windows of 8³ over 8 × 24 × 24; abort arrives while window 3 is on the GPU
    const run = slidingWindow(model, rand(8 * 24 * 24, 5), 1, [8, 24, 24], {
      patch: [8, 8, 8],
      overlap: 0,
      signal: ac.signal,
      onProgress: (p) => {
        done.push(p.done);
        if (p.done === 2) queueMicrotask(() => ac.abort());
      },
    });
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceCancelledError);
    const c = err as InferenceCancelledError;
    expect(c.total).toBe(9);
    // at most the window in flight when the abort came finishes
    expect(c.done).toBeGreaterThanOrEqual(2);
    expect(c.done).toBeLessThanOrEqual(3);
    expect(done.at(-1)).toBe(c.done);
    await d.flush();
    expect(d.pool.inUseBytes).toBe(baseline);
    model.dispose();
  });

  it("segment: an abort from a timer mid-run rejects with InferenceCancelledError; pool back to baseline", async () => {
    const d = dev();
    const model = tinyUnet(d, 2);
    await d.flush();
    const baseline = d.pool.inUseBytes;
    const ac = new AbortController();
    let windows = 0;
    const run = segment(model, { data: rand(8 * 16 * 32, 6).map((v) => v * 500), shape: [8, 16, 32] }, {
      window: { patch: [8, 8, 8], overlap: 0.5 },
      signal: ac.signal,
      onProgress: (p) => {
        windows = p.done;
        if (p.done === 1) setTimeout(() => ac.abort(), 0);
      },
    });
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferenceCancelledError);
    expect((err as InferenceCancelledError).done).toBe(windows);
    expect(windows).toBeLessThan((err as InferenceCancelledError).total);
    await d.flush();
    expect(d.pool.inUseBytes).toBe(baseline);
    model.dispose();
  });

  it("fit: an abort stops before the next step; pool back to what a finished run leaves", async () => {
    const d = dev();
    const model = tinyUnet(d, 3);
    const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
    // a finished epoch first: Adam's moments exist, so the baseline includes them
    const lossOf = bceWithLogitsLoss;
    const data = samples;
    await fit({ model, optimizer, loss: lossOf, samples: data, epochs: 1 });
    await d.flush();
    const baseline = d.pool.inUseBytes;
    const ac = new AbortController();
    let steps = 0;
    const err = await fit({
      model, optimizer, loss: lossOf, samples: data, epochs: 3, signal: ac.signal,
      onStep: () => {
        if (++steps === 4) ac.abort();
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PulmoError);
    expect((err as Error).message).toBe("training cancelled (epoch 0, step 4)");
    expect(steps).toBe(4);
    await d.flush();
    expect(d.pool.inUseBytes).toBe(baseline);
    optimizer.dispose();
    model.dispose();
  });
});

describe("cancellation of a folder run", () => {
  const dev = useDevice();
  it("runSegment: an abort during case 2 of 4 stops that case within a window and starts no other; cases done stay written", async () => {
    const d = dev();
    const dir = mkdtempSync(join(tmpdir(), "pulmo-cancel-"));
    try {
      const input = join(dir, "cases"), out = join(dir, "out");
      mkdirSync(input);
      for (let k = 0; k < 4; k++)
        writeFileSync(join(input, `case${k}.nii.gz`), writeNifti({ data: rand(8 * 8 * 24, 40 + k).map((v) => v * 500), shape: [8, 8, 24], spacing: [1, 1, 1] }, { gzip: true }));
      const net = tinyUnet(d, 5);
      await d.flush();
      const baseline = d.pool.inUseBytes;
      const ac = new AbortController();
      let windowsOfCase2 = 0, cases = 0;
      // the abort comes from inside case 2's first window forward
      const counting = Object.assign(Object.create(net) as typeof net, {
        forward: (x: Tensor) => {
          if (cases === 2 && ++windowsOfCase2 === 1) ac.abort();
          return net.forward(x);
        },
      });
      const model: SegmentModel = {
        net: counting,
        label: "tiny unet3d",
        needs: [],
        options: () => {
          cases++;
          return { window: { patch: [8, 8, 8], overlap: 0 } };
        },
      };
      const log = console.log;
      console.log = () => {};
      const err = await runSegment(model, { input, out, quiet: true, signal: ac.signal })
        .catch((e: unknown) => e)
        .finally(() => (console.log = log));
      expect(err).toBeInstanceOf(InferenceCancelledError);
      expect((err as InferenceCancelledError).done).toBe(1);
      expect(windowsOfCase2).toBe(1);
      expect(cases).toBe(2);
      expect(readdirSync(out).filter((n) => !n.startsWith("."))).toEqual(["case0.nii.gz"]);
      expect(existsSync(join(out, "case1.nii.gz"))).toBe(false);
      await d.flush();
      expect(d.pool.inUseBytes).toBe(baseline);
      net.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("device loss", () => {
  it("destroying the device mid-run fails the run with 'GPU device lost: …'; a new device and the reloaded model give the same result", async () => {
    const ct = { data: rand(8 * 8 * 24, 9).map((v) => v * 800), shape: [8, 8, 24] as [number, number, number] };
    const options = { window: { patch: [8, 8, 8], overlap: 0 } };
    const a = await createDevice();
    const model = tinyUnet(a, 4);
    const weights = await model.toSafetensors();
    const before = await segment(model, ct, options);
    const t0 = performance.now();
    const err = await segment(model, ct, {
      ...options,
      onProgress: (p) => {
        if (p.done === 1) a.gpu.destroy();
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PulmoError);
    expect((err as Error).message).toMatch(/^GPU device lost: destroyed/);
    expect((err as Error).message).toMatch(/create a new device and reload the model$/);
    expect(performance.now() - t0).toBeLessThan(20_000); // failed, did not hang
    // the next operation on the lost device says the same, at once
    expect(() => Tensor.from(a, [1, 2, 3, 4], [4])).toThrow(/^GPU device lost: destroyed/);
    await expect(a.flush()).rejects.toThrow(/^GPU device lost/);
    model.dispose();
    a.destroy();

    const b = await createDevice();
    try {
      const again = tinyUnet(b, 999); // other initial weights, then the saved ones
      again.loadSafetensors(weights);
      const after = await segment(again, ct, options);
      expect(after.mask).toEqual(before.mask);
      expect(after.windows).toBe(3);
      again.dispose();
    } finally {
      b.destroy();
    }
  });
});

describe("concurrency", () => {
  const dev = useDevice();
  it("two models on one device, inference interleaved, give the same results as each alone", async () => {
    const d = dev();
    const m1 = tinyUnet(d, 21);
    const m2 = tinyUnet(d, 22, { enc: [[3, 5], [5, 8], [8, 12]], dec: [[8, 6], [5, 4]] });
    const cts = [0, 1, 2].map((k) => ({ data: rand(8 * 8 * 16, 30 + k).map((v) => v * 600), shape: [8, 8, 16] as [number, number, number] }));
    const opts = { window: { patch: [8, 8, 8], overlap: 0.5 }, returnProbabilities: true };
    const alone1: Float32Array[] = [], alone2: Float32Array[] = [];
    for (const ct of cts) alone1.push((await segment(m1, ct, opts)).probabilities!);
    for (const ct of cts) alone2.push((await segment(m2, ct, opts)).probabilities!);
    expect(alone1[0]).not.toEqual(alone2[0]);
    await d.flush();
    const baseline = d.pool.inUseBytes;
    // every call started before any finishes: their windows' awaits interleave on the one queue
    const runs = cts.flatMap((ct) => [segment(m1, ct, opts), segment(m2, ct, opts)]);
    const results = await Promise.all(runs);
    cts.forEach((_, k) => {
      expect(results[2 * k]!.probabilities).toEqual(alone1[k]);
      expect(results[2 * k + 1]!.probabilities).toEqual(alone2[k]);
    });
    await d.flush();
    expect(d.pool.inUseBytes).toBe(baseline);
    m1.dispose();
    m2.dispose();
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import {
  InferenceCancelledError, PulmoError, Tensor, binarize, buildModel, concat, fillHolesPerSlice, gaussianImportanceMap, mulScalar, nn, noGrad,
  normalizeIntensity, postprocess, preprocess, resample, resampleToSpacing, segment, slidingWindow, slidingWindowSteps, softmax, spacingGrid,
  tidy, windowStarts, windowWeightSum, type Predictor, type SegmentationNet,
} from "../../src/node.ts";

/** shared/reference/models.py PRESETS["unet3d"]["tiny"] (other keys: the paper preset); 3 levels → multiples of 4. */
const TINY = { enc: [[4, 6], [6, 10], [10, 16]], dec: [[10, 8], [6, 6]] };

/** Deterministic pseudo-random floats in [-1, 1). */
function rand(n: number, seed = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** [C, D, H, W] crop of a host volume. */
function crop(v: Float32Array, C: number, shape: number[], start: number[], size: number[]): Float32Array {
  const [, H, W] = shape as [number, number, number];
  const [d, h, w] = size as [number, number, number];
  const out = new Float32Array(C * d * h * w);
  for (let c = 0; c < C; c++)
    for (let z = 0; z < d; z++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((c * d + z) * h + y) * w + x] = v[((c * shape[0]! + start[0]! + z) * H + start[1]! + y) * W + start[2]! + x]!;
  return out;
}

describe("inference pipeline", () => {
  const dev = useDevice();
  let model: SegmentationNet;
  beforeAll(() => {
    nn.setInitSeed(1234);
    model = buildModel(dev(), "unet3d", TINY);
    model.eval();
  });
  afterAll(() => model?.dispose());

  /** softmax(model(x)) for one [1, C, d, h, w] window, read back. */
  async function direct(x: Float32Array, size: number[]): Promise<Float32Array> {
    const y = noGrad(() => tidy(dev(), () => softmax(model.forward(Tensor.from(dev(), x, [1, 1, ...size])), 1)));
    try {
      return await y.readFloat();
    } finally {
      y.dispose();
    }
  }

  describe("slidingWindow", () => {
    it("over a volume of exactly one patch equals the direct forward (softmax), bit for bit", async () => {
      const shape = [8, 8, 8];
      const x = rand(512, 7);
      const r = await slidingWindow(model, x, 1, shape, { patch: [8, 8, 8] });
      expect(r.windows).toBe(1);
      expect(r.channels).toBe(2);
      expect(r.data).toEqual(await direct(x, shape));
      // constant weights and mirroring off/on keep a single window exact / close
      const c = await slidingWindow(model, x, 1, shape, { patch: [8, 8, 8], gaussian: false });
      expect(c.data).toEqual(r.data);
    });

    it("where a single window covers a voxel the blend equals that window's forward; batching changes nothing", async () => {
      const shape = [8, 8, 12];
      const x = rand(8 * 8 * 12, 11);
      expect(windowStarts(shape, [8, 8, 8], 0.5)).toEqual([[0, 0, 0], [0, 0, 4]]);
      const r = await slidingWindow(model, x, 1, shape, { patch: [8, 8, 8], overlap: 0.5 });
      const w0 = await direct(crop(x, 1, shape, [0, 0, 0], [8, 8, 8]), [8, 8, 8]);
      const w1 = await direct(crop(x, 1, shape, [0, 0, 4], [8, 8, 8]), [8, 8, 8]);
      let overlapDiffers = 0;
      for (let c = 0; c < 2; c++)
        for (let z = 0; z < 8; z++)
          for (let y = 0; y < 8; y++)
            for (let xx = 0; xx < 12; xx++) {
              const v = r.data[((c * 8 + z) * 8 + y) * 12 + xx]!;
              if (xx < 4) expect(v).toBe(w0[((c * 8 + z) * 8 + y) * 8 + xx]);
              else if (xx >= 8) expect(v).toBe(w1[((c * 8 + z) * 8 + y) * 8 + xx - 4]);
              else {
                const a = w0[((c * 8 + z) * 8 + y) * 8 + xx]!;
                const b = w1[((c * 8 + z) * 8 + y) * 8 + xx - 4]!;
                expect(v).toBeGreaterThanOrEqual(Math.min(a, b) - 1e-6);
                expect(v).toBeLessThanOrEqual(Math.max(a, b) + 1e-6);
                if (a !== b) overlapDiffers++;
              }
            }
      expect(overlapDiffers).toBeGreaterThan(0);
      const b2 = await slidingWindow(model, x, 1, shape, { patch: [8, 8, 8], overlap: 0.5, batch: 2 });
      for (let i = 0; i < r.data.length; i++) expect(Math.abs(b2.data[i]! - r.data[i]!)).toBeLessThan(1e-6);
    });

    it("pads a volume smaller than the patch (nnU-Net split) and crops back", async () => {
      const shape = [6, 8, 5];
      const x = rand(6 * 8 * 5, 3);
      const r = await slidingWindow(model, x, 1, shape, { patch: [8, 8, 8], padValue: 0 });
      expect(r.shape).toEqual([6, 8, 5]);
      // padded by hand: D 6→8 (1 before, 1 after), W 5→8 (1 before, 2 after)
      const p = new Float32Array(512);
      for (let z = 0; z < 6; z++) for (let y = 0; y < 8; y++) for (let xx = 0; xx < 5; xx++) p[((z + 1) * 8 + y) * 8 + xx + 1] = x[(z * 8 + y) * 5 + xx]!;
      const full = await direct(p, [8, 8, 8]);
      expect(r.data).toEqual(crop(full, 2, [8, 8, 8], [1, 0, 1], [6, 8, 5]));
    });

    it("a per-voxel model gives the same result for any window size, overlap, batch and mirroring", async () => {
      // logits [x, −x] → softmax = [σ(2x), σ(−2x)]
      const perVoxel: Predictor = { device: dev(), forward: (t: Tensor) => concat([t, mulScalar(t, -1)], 1) };
      const shape = [9, 10, 11];
      const x = rand(9 * 10 * 11, 5);
      const expected = new Float32Array(2 * x.length);
      for (let i = 0; i < x.length; i++) {
        expected[i] = 1 / (1 + Math.exp(-2 * x[i]!));
        expected[x.length + i] = 1 / (1 + Math.exp(2 * x[i]!));
      }
      const variants = [
        { patch: [4, 4, 4], overlap: 0.5 },
        { patch: [3, 5, 7], overlap: 0.25, batch: 3 },
        { patch: [9, 10, 11], overlap: 0 },
        { patch: [12, 4, 8], overlap: 0.75, gaussian: false },
        { patch: [4, 4, 4], overlap: 0.5, mirror: true, batch: 2 },
      ];
      for (const v of variants) {
        const r = await slidingWindow(perVoxel, x, 1, shape, v);
        let maxErr = 0;
        for (let i = 0; i < expected.length; i++) maxErr = Math.max(maxErr, Math.abs(r.data[i]! - expected[i]!));
        expect(maxErr, JSON.stringify(v)).toBeLessThan(2e-6);
      }
      // 2D slice-wise mode
      const r2 = await slidingWindow(perVoxel, x, 1, shape, { patch: [1, 8, 8], dims: 2, batch: 4 });
      let maxErr = 0;
      for (let i = 0; i < expected.length; i++) maxErr = Math.max(maxErr, Math.abs(r2.data[i]! - expected[i]!));
      expect(maxErr).toBeLessThan(2e-6);
    });

    it("rejects bad options with a PulmoError", async () => {
      const x = rand(64);
      await expect(slidingWindow(model, x, 1, [4, 4, 4], { patch: [4, 4] })).rejects.toThrow(/patch must be/);
      await expect(slidingWindow(model, x, 1, [4, 4, 4], { patch: [4, 4, 4], overlap: 1 })).rejects.toThrow(/overlap/);
      await expect(slidingWindow(model, x, 2, [4, 4, 4], { patch: [4, 4, 4] })).rejects.toThrow(PulmoError);
      await expect(slidingWindow(model, x, 1, [4, 4, 4], { patch: [2, 4, 4], dims: 2 })).rejects.toThrow(/patch\[0\] = 1/);
      const nan = rand(64);
      nan[3] = NaN;
      await expect(slidingWindow(model, nan, 1, [4, 4, 4], { patch: [4, 4, 4] })).rejects.toThrow(/NaN/);
    });

    it("cancellation stops between windows with a clear error and leaks no GPU memory", async () => {
      await dev().flush();
      const before = dev().pool.inUseBytes;
      const ac = new AbortController();
      const seen: number[] = [];
      const run = slidingWindow(model, rand(8 * 8 * 20), 1, [8, 8, 20], {
        patch: [8, 8, 8],
        signal: ac.signal,
        onProgress: (p) => {
          seen.push(p.done);
          expect(p.total).toBe(4);
          if (p.done === 1) ac.abort();
        },
      });
      await expect(run).rejects.toThrow(InferenceCancelledError);
      await expect(run).rejects.toThrow("inference cancelled after 1 of 4 windows");
      expect(seen).toEqual([1]);
      await dev().flush();
      expect(dev().pool.inUseBytes).toBe(before);
      const aborted = AbortSignal.abort();
      await expect(segment(model, { data: rand(512), shape: [8, 8, 8] }, { window: { patch: [8, 8, 8] }, signal: aborted })).rejects.toThrow(
        /cancelled after 0 of 1/,
      );
    });
  });

  describe("Gaussian weights and window placement", () => {
    it("importance map: centre 1, separable Gaussian with σ = patch/8, all positive", () => {
      const p = [8, 16, 12];
      const g = gaussianImportanceMap(p);
      const at = (z: number, y: number, x: number) => g[(z * 16 + y) * 12 + x]!;
      expect(at(4, 8, 6)).toBe(1);
      let max = 0;
      let min = Infinity;
      for (const v of g) {
        max = Math.max(max, v);
        min = Math.min(min, v);
      }
      expect(max).toBe(1);
      expect(min).toBeGreaterThan(0);
      // along W: σ = 12/8 = 1.5
      expect(at(4, 8, 7)).toBeCloseTo(Math.exp(-1 / (2 * 1.5 ** 2)), 6);
      expect(at(4, 8, 0)).toBeCloseTo(Math.exp(-36 / (2 * 1.5 ** 2)), 6);
      // separable
      expect(at(2, 3, 9)).toBeCloseTo(at(2, 8, 6) * at(4, 3, 6) * at(4, 8, 9), 7);
      expect(gaussianImportanceMap([2, 2, 2], 1 / 8, false)).toEqual(new Float32Array(8).fill(1));
    });

    it("zeros are raised to the smallest nonzero weight", () => {
      // σ = 8 · 0.05 = 0.4 → radius floor(2.1) = 2: offsets −4, −3, 3 are beyond the truncation
      const g = gaussianImportanceMap([1, 1, 8], 0.05);
      const nonzeroMin = Math.exp(-4 / (2 * 0.4 * 0.4));
      for (const i of [0, 1, 7]) expect(g[i]).toBeCloseTo(nonzeroMin, 7);
      expect(g[4]).toBe(1);
    });

    it("window steps follow nnU-Net and the blend weights sum to 1 everywhere", () => {
      expect(slidingWindowSteps(8, 8, 0.5)).toEqual([0]);
      expect(slidingWindowSteps(12, 8, 0.5)).toEqual([0, 4]);
      expect(slidingWindowSteps(10, 8, 0.5)).toEqual([0, 2]);
      expect(slidingWindowSteps(20, 8, 0.5)).toEqual([0, 4, 8, 12]);
      expect(slidingWindowSteps(21, 8, 0.5)).toEqual([0, 3, 6, 10, 13]); // 3.25·i rounded half to even
      expect(slidingWindowSteps(20, 8, 7 / 8)).toEqual(Array.from({ length: 13 }, (_, i) => i)); // DenseUNet: stride 1
      expect(slidingWindowSteps(30, 8, 0)).toEqual([0, 7, 15, 22]);
      const shape = [9, 13, 10] as const;
      const patch = [4, 6, 5] as const;
      const starts = windowStarts(shape, patch, 0.5);
      const w = gaussianImportanceMap(patch);
      const sum = windowWeightSum(shape, patch, starts, w);
      const total = new Float64Array(sum.length);
      for (const [z0, y0, x0] of starts)
        for (let z = 0; z < 4; z++)
          for (let y = 0; y < 6; y++)
            for (let x = 0; x < 5; x++) {
              const v = ((z0 + z) * 13 + y0 + y) * 10 + x0 + x;
              total[v]! += w[(z * 6 + y) * 5 + x]! / sum[v]!;
            }
      for (const t of total) expect(t).toBeCloseTo(1, 6);
    });
  });

  describe("preprocessing", () => {
    it("Co-ReTr window [−1024, 3068] + min-max; z-score", () => {
      const hu = [-2000, -1024, 1022, 3068, 5000];
      expect(Array.from(normalizeIntensity(hu, { kind: "window-minmax" }))).toEqual([0, 0, 0.5, 1, 1]);
      const vol = Array.from(normalizeIntensity([-500, 0, 500], { kind: "window-minmax", range: "volume" }));
      expect(vol).toEqual([0, 0.5, 1]);
      const z = normalizeIntensity([-100, 0, 100, 900], { kind: "zscore", mean: 100, std: 50, clip: [-1000, 500] });
      expect(Array.from(z)).toEqual([-4, -2, 0, 8]);
      expect(() => normalizeIntensity([0, NaN], { kind: "none" })).toThrow(/NaN/);
      expect(() => normalizeIntensity([0], { kind: "window-minmax", window: [10, 0] })).toThrow(PulmoError);
    });

    it("trilinear with align_corners=False matches hand-computed values", () => {
      // 1D along W: down 4→2 samples source 0.5 and 2.5; up 2→4 samples 0 (clamped), 0.25, 0.75, 1.25 → clamped to the edge
      expect(Array.from(resample({ data: [0, 10, 20, 30], shape: [1, 1, 4] }, [1, 1, 2]))).toEqual([5, 25]);
      expect(Array.from(resample({ data: [0, 10], shape: [1, 1, 2] }, [1, 1, 4]))).toEqual([0, 2.5, 7.5, 10]);
      // 3D: a 2³ cube v = 4z + 2y + x up to 4³ is 4f(z) + 2f(y) + f(x), f = [0, .25, .75, 1]
      const cube = Array.from({ length: 8 }, (_, i) => 4 * (i >> 2) + 2 * ((i >> 1) & 1) + (i & 1));
      const up = resample({ data: cube, shape: [2, 2, 2] }, [4, 4, 4]);
      const f = [0, 0.25, 0.75, 1];
      for (let z = 0; z < 4; z++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) expect(up[(z * 4 + y) * 4 + x]).toBeCloseTo(4 * f[z]! + 2 * f[y]! + f[x]!, 6);
      // 3 → 5 along D (scale 0.6): s = (o + 0.5)·0.6 − 0.5 = −0.2 (→ 0), 0.4, 1, 1.6, 2.2 (→ last voxel)
      const d = resample({ data: [1, 2, 4], shape: [3, 1, 1] }, [5, 1, 1]);
      [1, 1.4, 2, 3.2, 4].forEach((e, i) => expect(d[i]).toBeCloseTo(e, 6));
      // nearest-exact (centre) and PyTorch's legacy nearest
      expect(Array.from(resample({ data: [0, 1, 2, 3, 4, 5], shape: [1, 1, 6] }, [1, 1, 3], "nearest-exact"))).toEqual([1, 3, 5]);
      expect(Array.from(resample({ data: [0, 1, 2, 3, 4, 5], shape: [1, 1, 6] }, [1, 1, 3], "nearest"))).toEqual([0, 2, 4]);
    });

    it("round trips: identity, mask ×2 up and down, linear ramp interior, spacing grid", () => {
      const v = { data: rand(3 * 4 * 5), shape: [3, 4, 5] as const };
      expect(resample(v, [3, 4, 5])).toEqual(v.data);
      const mask = { data: Uint8Array.from(rand(3 * 4 * 5), (x) => (x > 0 ? 1 : 0)), shape: [3, 4, 5] as const };
      const up = resample(mask, [6, 8, 10], "nearest-exact");
      expect(Array.from(resample({ data: up, shape: [6, 8, 10] }, [3, 4, 5], "nearest-exact"))).toEqual(Array.from(mask.data));
      const ramp = { data: Float32Array.from({ length: 10 }, (_, i) => i), shape: [1, 1, 10] as const };
      const back = resample({ data: resample(ramp, [1, 1, 20]), shape: [1, 1, 20] }, [1, 1, 10]);
      for (let i = 1; i < 9; i++) expect(back[i]).toBeCloseTo(i, 6);
      const g = spacingGrid([10, 20, 21], [2.5, 0.9, 0.9], [1.25, 1.8, null]);
      expect(g.shape).toEqual([20, 10, 21]);
      expect(g.spacing).toEqual([1.25, 1.8, 0.9]);
      const r = resampleToSpacing({ data: new Float32Array(10 * 20 * 21).fill(7), shape: [10, 20, 21] }, [2.5, 0.9, 0.9], [1.25, 1.8, null]);
      expect(r.shape).toEqual([20, 10, 21]);
      expect(r.data.every((x) => x === 7)).toBe(true);
    });

    it("CTV paper input: CT + iGTV mask as two channels, mask resampled nearest and not normalised", () => {
      const ct = { data: new Float32Array(2 * 2 * 2).fill(1022), shape: [2, 2, 2] as const };
      const igtv = { data: Uint8Array.from([0, 1, 0, 1, 1, 1, 0, 0]), shape: [2, 2, 2] as const };
      const p = preprocess(ct, { normalization: { kind: "window-minmax" }, extraChannels: [igtv], spacing: [2, 1, 1], targetSpacing: [1, null, null] });
      expect(p.channels).toBe(2);
      expect(p.shape).toEqual([4, 2, 2]);
      expect(Array.from(p.data.subarray(0, 16)).every((x) => x === 0.5)).toBe(true);
      expect(Array.from(p.data.subarray(16))).toEqual([0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0]);
      expect(() => preprocess(ct, { extraChannels: [{ data: new Uint8Array(4), shape: [1, 2, 2] }] })).toThrow(/different grids/);
      expect(() => preprocess(ct, { targetSpacing: [1, 1, 1] })).toThrow(/spacing/);
    });
  });

  describe("postprocess", () => {
    const S = [3, 7, 7] as const;
    const idx = (z: number, y: number, x: number) => (z * 7 + y) * 7 + x;

    it("threshold, argmax", () => {
      expect(Array.from(binarize([0.2, 0.5, 0.51, 0.9], 1, [1, 1, 4]))).toEqual([0, 0, 1, 1]);
      expect(Array.from(binarize([0.2, 0.5, 0.71, 0.9], 1, [1, 1, 4], { threshold: 0.7 }))).toEqual([0, 0, 1, 1]);
      // 3 classes: labels by argmax
      expect(Array.from(binarize([0.5, 0.2, 0.1, 0.3, 0.3, 0.8, 0.2, 0.5, 0.1], 3, [1, 1, 3]))).toEqual([0, 2, 1]);
      // 2-class softmax thresholded on the foreground channel
      expect(Array.from(binarize([0.9, 0.3, 0.1, 0.7], 2, [1, 1, 2], { mode: "threshold" }))).toEqual([0, 1]);
    });

    it("remove components below a volume, keep the largest, fill holes, dilate", () => {
      const m = new Uint8Array(3 * 49);
      // A: a 3×3 ring with a hole in slice 1 (8 voxels) + its centre in slice 0 → 9 voxels
      for (let y = 1; y <= 3; y++) for (let x = 1; x <= 3; x++) if (y !== 2 || x !== 2) m[idx(1, y, x)] = 1;
      m[idx(0, 2, 2)] = 1;
      // B: 2 voxels far away
      m[idx(2, 6, 6)] = 1;
      m[idx(2, 6, 5)] = 1;
      const probs = Float32Array.from(m, (v) => (v ? 0.9 : 0.1));
      // voxel volume 2 mm³: A 18 mm³, B 4 mm³
      const spacing = [2, 1, 1];
      const small = postprocess(probs, 1, S, { spacing, minVolumeCc: 0.005 });
      expect(small.data[idx(2, 6, 6)]).toBe(0);
      expect(small.data[idx(1, 1, 1)]).toBe(1);
      expect(postprocess(probs, 1, S, { spacing, minVolumeMm3: 4 }).data[idx(2, 6, 6)]).toBe(1);
      const largest = postprocess(probs, 1, S, { keepLargest: true });
      expect(largest.data.reduce((a, b) => a + b, 0)).toBe(9);
      const filled = postprocess(probs, 1, S, { keepLargest: true, fillHoles: true });
      expect(filled.data[idx(1, 2, 2)]).toBe(1);
      expect(filled.data.reduce((a, b) => a + b, 0)).toBe(10);
      // a gap to the border is not a hole
      const open = new Uint8Array(49);
      for (let y = 1; y <= 3; y++) for (let x = 1; x <= 3; x++) if ((y !== 2 || x !== 2) && !(y === 2 && x === 3)) open[y * 7 + x] = 1;
      const of = fillHolesPerSlice({ data: open, shape: [1, 7, 7] });
      expect(of.data[2 * 7 + 2]).toBe(0);
      // 7×7 disk dilation (DenseUNet) of one voxel: 29 pixels in its slice
      const one = new Float32Array(49 * 3);
      one[idx(1, 3, 3)] = 1;
      const dil = postprocess(one, 1, S, { dilateDiameter: 7 });
      expect(dil.data.reduce((a, b) => a + b, 0)).toBe(29);
      expect(() => postprocess(probs, 1, S, { minVolumeCc: 1 })).toThrow(/spacing/);
      // the input is never modified
      expect(Array.from(probs.subarray(0, 3))).toEqual([0.1, 0.1, 0.1].map(Math.fround));
    });
  });

  describe("segment", () => {
    it("resamples, segments, resamples back; timings; pool bytes flat across two calls", async () => {
      const shape = [6, 12, 10] as const;
      const hu = Float32Array.from(rand(6 * 12 * 10, 9), (v) => v * 1000);
      const ct = { data: hu, shape, spacing: [2, 1, 1] };
      const opts = {
        preprocess: { normalization: { kind: "window-minmax" as const }, targetSpacing: [1, 1.5, 1.25] },
        window: { patch: [8, 8, 8], overlap: 0.5, batch: 2 },
        postprocess: { keepLargest: true },
        returnProbabilities: true,
      };
      await dev().flush();
      const inUse0 = dev().pool.inUseBytes;
      const progress: string[] = [];
      const r1 = await segment(model, ct, { ...opts, onProgress: (p) => progress.push(`${p.done}/${p.total}`) });
      await dev().flush();
      const inUse1 = dev().pool.inUseBytes;
      const alloc1 = dev().pool.allocatedBytes;
      const r2 = await segment(model, ct, opts);
      await dev().flush();
      expect(inUse1).toBe(inUse0);
      expect(dev().pool.inUseBytes).toBe(inUse0);
      expect(dev().pool.allocatedBytes).toBe(alloc1);
      // working grid 12 × 8 × 8 → windows 2 × 1 × 1
      expect(r1.windows).toBe(2);
      expect(progress).toEqual(["2/2"]);
      expect(r1.mask.length).toBe(6 * 12 * 10);
      expect(r1.shape).toEqual([6, 12, 10]);
      expect(r1.probabilities!.length).toBe(2 * 6 * 12 * 10);
      for (let i = 0; i < r1.mask.length; i++) expect(r1.probabilities![i]! + r1.probabilities![720 + i]!).toBeCloseTo(1, 5);
      expect(r2.mask).toEqual(r1.mask);
      expect(r2.probabilities).toEqual(r1.probabilities);
      for (const k of ["preprocessMs", "inferenceMs", "postprocessMs"] as const) expect(r1.timings[k]).toBeGreaterThanOrEqual(0);
      expect(model.training).toBe(false);
    });
  });
});

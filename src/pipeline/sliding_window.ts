// Sliding-window inference over whole volumes: GPU forwards of patch batches, blended on the host
// with Gaussian (nnU-Net / MONAI) or constant importance weights. Conventions: docs/inference.md.
import { PulmoError, checkFinite, shapeStr } from "../runtime/errors.ts";
import { Tensor, tidy } from "../runtime/tensor.ts";
import type { Device } from "../runtime/device.ts";
import { noGrad } from "../graph/tape.ts";
import { softmax } from "../graph/ops/softmax.ts";
import { sigmoid } from "../graph/ops/activation.ts";

/** Anything with a forward from [N, C, d, h, w] (or [N, C, h, w] with `dims: 2`) to logits
 * [N, C_out, ...] of the same spatial size: every SegmentationNet. */
export interface Predictor {
  readonly device: Device;
  forward(x: Tensor): Tensor;
  training?: boolean;
  train?(mode?: boolean): unknown;
}

export type Activation = "softmax" | "sigmoid" | "none";

export interface SlidingWindowProgress {
  /** windows finished (mirrored copies count once) */
  done: number;
  total: number;
}

export interface SlidingWindowOptions {
  /** window (ROI) size [d, h, w]; must suit the model (e.g. multiples of 16 for Co-ReTr) */
  patch: readonly number[];
  /** fraction of the window shared by neighbours, in [0, 1) (default 0.5) */
  overlap?: number;
  /** windows per forward (default 1) */
  batch?: number;
  /** Gaussian importance weights (default true) or constant weights */
  gaussian?: boolean;
  /** σ = patch · sigmaScale (default 1/8, nnU-Net and MONAI) */
  sigmaScale?: number;
  /** test-time augmentation: average over every flip of the spatial axes (8 in 3D, 4 in 2D) */
  mirror?: boolean;
  /** applied to each window's logits before blending (default: softmax over channels when C_out > 1,
   * sigmoid when C_out = 1). "none" blends raw logits. */
  activation?: Activation;
  /** value the (normalised) input is padded with where the volume is smaller than the window (default 0) */
  padValue?: number;
  /** 2: the model is 2D; `patch[0]` must be 1 and each window's depth axis is dropped (slice-wise mode) */
  dims?: 2 | 3;
  signal?: AbortSignal;
  onProgress?: (p: SlidingWindowProgress) => void;
}

/** Thrown when `signal` aborts a sliding-window run (between windows). */
export class InferenceCancelledError extends PulmoError {
  constructor(
    readonly done: number,
    readonly total: number,
  ) {
    super(`inference cancelled after ${done} of ${total} windows`);
    this.name = "InferenceCancelledError";
  }
}

/** Half-to-even rounding, as numpy's np.round. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Window start offsets along one axis, as nnU-Net's `compute_steps_for_sliding_window`:
 * `n = ceil((size − patch) / (patch · (1 − overlap))) + 1` windows spread evenly from 0 to
 * `size − patch` (starts rounded half-to-even), so the first and last windows touch the edges and
 * every window lies inside. `size` must be >= `patch`.
 */
export function slidingWindowSteps(size: number, patch: number, overlap = 0.5): number[] {
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(patch) || patch < 1 || size < patch)
    throw new PulmoError(`slidingWindowSteps: need integer size >= patch >= 1, got size ${size}, patch ${patch}`);
  if (!(overlap >= 0 && overlap < 1)) throw new PulmoError(`overlap must be in [0, 1), got ${overlap}`);
  const target = patch * (1 - overlap);
  const n = Math.ceil((size - patch) / target - 1e-9) + 1;
  if (n === 1) return [0];
  const step = (size - patch) / (n - 1);
  return Array.from({ length: n }, (_, i) => roundHalfEven(step * i));
}

/**
 * nnU-Net's Gaussian importance map for a window: a unit impulse at the centre (`patch // 2`)
 * filtered with scipy's `gaussian_filter` (σ = patch · sigmaScale, truncate 4, constant mode),
 * i.e. the separable product of sampled, truncated and normalised 1D Gaussians, then divided by its
 * maximum (so the centre weight is 1) and with zeros raised to the smallest nonzero value (no voxel
 * of a window is ever weightless). With `gaussian = false`, all ones. Layout [d, h, w].
 */
export function gaussianImportanceMap(patch: readonly number[], sigmaScale = 1 / 8, gaussian = true): Float32Array {
  const n = patch.reduce((a, b) => a * b, 1);
  if (!gaussian) return new Float32Array(n).fill(1);
  if (!(sigmaScale > 0 && Number.isFinite(sigmaScale))) throw new PulmoError(`sigmaScale must be positive, got ${sigmaScale}`);
  const axes = patch.map((p) => {
    const sigma = p * sigmaScale;
    const radius = Math.floor(4 * sigma + 0.5);
    const c = Math.floor(p / 2);
    const k = new Float64Array(p);
    let sum = 0;
    for (let x = -radius; x <= radius; x++) sum += Math.exp((-0.5 * x * x) / (sigma * sigma));
    for (let i = 0; i < p; i++) {
      const x = i - c;
      k[i] = Math.abs(x) <= radius ? Math.exp((-0.5 * x * x) / (sigma * sigma)) / sum : 0;
    }
    return k;
  });
  const out = new Float64Array(n);
  const dims = patch.length;
  const idx = new Array<number>(dims).fill(0);
  let max = 0;
  for (let i = 0; i < n; i++) {
    let v = 1;
    for (let a = 0; a < dims; a++) v *= axes[a]![idx[a]!]!;
    out[i] = v;
    if (v > max) max = v;
    for (let a = dims - 1; a >= 0; a--) {
      if (++idx[a]! < patch[a]!) break;
      idx[a] = 0;
    }
  }
  const res = new Float32Array(n);
  let minNonzero = Infinity;
  for (let i = 0; i < n; i++) {
    res[i] = out[i]! / max;
    if (res[i]! > 0 && res[i]! < minNonzero) minNonzero = res[i]!;
  }
  for (let i = 0; i < n; i++) if (res[i] === 0) res[i] = minNonzero;
  return res;
}

function checkPatch(patch: readonly number[]): [number, number, number] {
  if (!Array.isArray(patch) || patch.length !== 3 || patch.some((p) => !Number.isSafeInteger(p) || p < 1))
    throw new PulmoError(`slidingWindow: patch must be [d, h, w] of positive integers, got ${JSON.stringify(patch)}`);
  return [patch[0]!, patch[1]!, patch[2]!];
}

/** Every window's start [z, y, x] over a (padded) volume, in raster order. */
export function windowStarts(shape: readonly number[], patch: readonly number[], overlap = 0.5): [number, number, number][] {
  const [sz, sy, sx] = [0, 1, 2].map((a) => slidingWindowSteps(shape[a]!, patch[a]!, overlap)) as [number[], number[], number[]];
  const out: [number, number, number][] = [];
  for (const z of sz) for (const y of sy) for (const x of sx) out.push([z, y, x]);
  return out;
}

/**
 * Sum of the importance maps of every window at each voxel of a (padded) [D, H, W] volume: the
 * denominator of the blend. Each window's prediction is added with weight `w / sum`, so the blend
 * weights at every voxel add up to exactly 1 (up to rounding).
 */
export function windowWeightSum(shape: readonly [number, number, number], patch: readonly [number, number, number], starts: readonly [number, number, number][], weights: Float32Array): Float32Array {
  const [, H, W] = shape;
  const [pd, ph, pw] = patch;
  const sum = new Float32Array(shape[0] * H * W);
  for (const [z0, y0, x0] of starts)
    for (let z = 0; z < pd; z++)
      for (let y = 0; y < ph; y++) {
        const dst = ((z0 + z) * H + (y0 + y)) * W + x0;
        const src = (z * ph + y) * pw;
        for (let x = 0; x < pw; x++) sum[dst + x] += weights[src + x]!;
      }
  return sum;
}

/** Flips a [C, d, h, w] block along the spatial axes set in `flips` (bit 0: w, bit 1: h, bit 2: d). */
function flipBlock(src: Float32Array, C: number, d: number, h: number, w: number, flips: number): Float32Array {
  if (flips === 0) return src;
  const out = new Float32Array(src.length);
  const fz = (flips & 4) !== 0,
    fy = (flips & 2) !== 0,
    fx = (flips & 1) !== 0;
  for (let c = 0; c < C; c++)
    for (let z = 0; z < d; z++) {
      const zz = fz ? d - 1 - z : z;
      for (let y = 0; y < h; y++) {
        const yy = fy ? h - 1 - y : y;
        const s = ((c * d + z) * h + y) * w;
        const t = ((c * d + zz) * h + yy) * w;
        if (fx) for (let x = 0; x < w; x++) out[t + w - 1 - x] = src[s + x]!;
        else for (let x = 0; x < w; x++) out[t + x] = src[s + x]!;
      }
    }
  return out;
}

export interface SlidingWindowResult {
  /** [C_out, D, H, W] blended probabilities (or logits with activation "none") on the input grid */
  data: Float32Array;
  channels: number;
  shape: [number, number, number];
  windows: number;
}

/**
 * Sliding-window inference of `model` over a host volume `input` [C, D, H, W] (C in `channels`).
 *
 * The volume is padded with `padValue` (split as nnU-Net: `diff // 2` before, the rest after) on any
 * axis shorter than the window; windows are placed by `slidingWindowSteps`. Each batch of windows is
 * uploaded, run under `noGrad` inside `tidy` (model in eval mode for the call, its mode restored after),
 * passed through the activation on the GPU, read back, and added to the host accumulator with weight
 * `w / Σw` (Gaussian importance map `w`, Σw over every window covering the voxel). So the result is the
 * importance-weighted average of the per-window **probabilities** (softmax/sigmoid, as nnU-Net;
 * logits only with activation "none"), and where a single window covers a voxel the result is exactly
 * that window's probability. With `mirror`, each window's probabilities are first averaged over every
 * flip of the spatial axes. The padding is cropped off the result. `signal` is checked before each batch;
 * an abort throws `InferenceCancelledError` and releases every GPU buffer of the run.
 */
export async function slidingWindow(
  model: Predictor,
  input: Float32Array,
  channels: number,
  shape: readonly number[],
  options: SlidingWindowOptions,
): Promise<SlidingWindowResult> {
  const device = model.device;
  if (!Number.isSafeInteger(channels) || channels < 1) throw new PulmoError(`slidingWindow: channels must be a positive integer, got ${channels}`);
  if (!Array.isArray(shape) || shape.length !== 3 || shape.some((s) => !Number.isSafeInteger(s) || s < 1))
    throw new PulmoError(`slidingWindow: shape must be [D, H, W] of positive integers, got ${JSON.stringify(shape)}`);
  const [D, H, W] = shape as [number, number, number];
  if (input.length !== channels * D * H * W)
    throw new PulmoError(`slidingWindow: ${input.length} values for ${channels} × ${shapeStr(shape)} (needs ${channels * D * H * W})`);
  const patch = checkPatch(options.patch);
  const overlap = options.overlap ?? 0.5;
  if (typeof overlap !== "number" || !(overlap >= 0 && overlap < 1)) throw new PulmoError(`slidingWindow: overlap must be in [0, 1), got ${overlap}`);
  const batch = options.batch ?? 1;
  if (!Number.isSafeInteger(batch) || batch < 1) throw new PulmoError(`slidingWindow: batch must be a positive integer, got ${batch}`);
  const dims = options.dims ?? 3;
  if (dims !== 2 && dims !== 3) throw new PulmoError(`slidingWindow: dims must be 2 or 3, got ${String(dims)}`);
  if (dims === 2 && patch[0] !== 1) throw new PulmoError(`slidingWindow: the 2D (slice-wise) mode needs patch[0] = 1, got ${patch[0]}`);
  const padValue = options.padValue ?? 0;
  checkFinite(input, "slidingWindow: input");

  // Pad (nnU-Net split) where the volume is smaller than the window.
  const before = [0, 1, 2].map((a) => Math.max(0, patch[a]! - shape[a]!) >> 1);
  const pShape = [0, 1, 2].map((a) => Math.max(shape[a]!, patch[a]!)) as [number, number, number];
  const [PD, PH, PW] = pShape;
  const pN = PD * PH * PW;
  let padded = input;
  if (PD !== D || PH !== H || PW !== W) {
    padded = new Float32Array(channels * pN).fill(padValue);
    for (let c = 0; c < channels; c++)
      for (let z = 0; z < D; z++)
        for (let y = 0; y < H; y++) {
          const s = ((c * D + z) * H + y) * W;
          const t = ((c * PD + z + before[0]!) * PH + y + before[1]!) * PW + before[2]!;
          padded.set(input.subarray(s, s + W), t);
        }
  }

  const starts = windowStarts(pShape, patch, overlap);
  const total = starts.length;
  const weights = gaussianImportanceMap(patch, options.sigmaScale ?? 1 / 8, options.gaussian ?? true);
  const wsum = windowWeightSum(pShape, patch, starts, weights);
  const [pd, ph, pw] = patch;
  const pn = pd * ph * pw;
  const flipsList = options.mirror ? (dims === 3 ? [0, 1, 2, 3, 4, 5, 6, 7] : [0, 1, 2, 3]) : [0];

  const wasTraining = model.training;
  if (wasTraining && model.train) model.train(false);
  let acc: Float32Array | null = null;
  let cOut = 0;
  let done = 0;
  try {
    for (let b0 = 0; b0 < total; b0 += batch) {
      if (options.signal?.aborted) throw new InferenceCancelledError(done, total);
      const group = starts.slice(b0, b0 + batch);
      const nb = group.length;
      // Gather the windows: [nb, C, pd, ph, pw].
      const host = new Float32Array(nb * channels * pn);
      group.forEach(([z0, y0, x0], k) => {
        for (let c = 0; c < channels; c++)
          for (let z = 0; z < pd; z++)
            for (let y = 0; y < ph; y++) {
              const s = ((c * PD + z0 + z) * PH + y0 + y) * PW + x0;
              host.set(padded.subarray(s, s + pw), ((k * channels + c) * pd + z) * ph * pw + y * pw);
            }
      });
      let probs: Float32Array | null = null;
      for (const flips of flipsList) {
        const x = flips === 0 ? host : flipBatch(host, nb, channels, pd, ph, pw, flips);
        const xShape = dims === 3 ? [nb, channels, pd, ph, pw] : [nb, channels, ph, pw];
        const out = noGrad(() =>
          tidy(device, () => {
            const t = Tensor.from(device, x, xShape);
            const logits = model.forward(t);
            const ls = logits.shape;
            const spatialOk = dims === 3 ? ls.length === 5 && ls[2] === pd && ls[3] === ph && ls[4] === pw : ls.length === 4 && ls[2] === ph && ls[3] === pw;
            if (!spatialOk || ls[0] !== nb)
              throw new PulmoError(`slidingWindow: the model maps ${shapeStr(xShape)} to ${shapeStr(ls)}; it must keep the batch and spatial size`);
            const act = options.activation ?? (ls[1] === 1 ? "sigmoid" : "softmax");
            if (act === "softmax") return softmax(logits, 1);
            if (act === "sigmoid") return sigmoid(logits);
            if (act === "none") return logits;
            throw new PulmoError(`slidingWindow: activation must be "softmax", "sigmoid" or "none", got ${JSON.stringify(act)}`);
          }),
        );
        let y: Float32Array;
        try {
          y = await out.readFloat();
        } finally {
          out.dispose();
        }
        const co = out.shape[1]!;
        if (!acc) {
          cOut = co;
          acc = new Float32Array(cOut * pN);
        }
        if (flips !== 0) y = flipBatch(y, nb, co, pd, ph, pw, flips);
        if (flipsList.length === 1) probs = y;
        else {
          if (!probs) probs = new Float32Array(y.length);
          for (let i = 0; i < y.length; i++) probs[i] += y[i]! / flipsList.length;
        }
      }
      // Blend: acc += p · w / Σw.
      const a = acc!;
      group.forEach(([z0, y0, x0], k) => {
        for (let z = 0; z < pd; z++)
          for (let yy = 0; yy < ph; yy++) {
            const v = ((z0 + z) * PH + y0 + yy) * PW + x0;
            const wi = (z * ph + yy) * pw;
            for (let c = 0; c < cOut; c++) {
              const dst = c * pN + v;
              const src = ((k * cOut + c) * pd + z) * ph * pw + yy * pw;
              for (let x = 0; x < pw; x++) a[dst + x] += probs![src + x]! * (weights[wi + x]! / wsum[v + x]!);
            }
          }
      });
      done += nb;
      options.onProgress?.({ done, total });
    }
  } finally {
    if (wasTraining && model.train) model.train(true);
  }

  // Crop the padding off.
  let data = acc!;
  if (PD !== D || PH !== H || PW !== W) {
    data = new Float32Array(cOut * D * H * W);
    for (let c = 0; c < cOut; c++)
      for (let z = 0; z < D; z++)
        for (let y = 0; y < H; y++) {
          const s = ((c * PD + z + before[0]!) * PH + y + before[1]!) * PW + before[2]!;
          data.set(acc!.subarray(s, s + W), ((c * D + z) * H + y) * W);
        }
  }
  return { data, channels: cOut, shape: [D, H, W], windows: total };
}

function flipBatch(src: Float32Array, n: number, C: number, d: number, h: number, w: number, flips: number): Float32Array {
  const per = C * d * h * w;
  const out = new Float32Array(src.length);
  for (let k = 0; k < n; k++) out.set(flipBlock(src.subarray(k * per, (k + 1) * per), C, d, h, w, flips), k * per);
  return out;
}

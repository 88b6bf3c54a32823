// Host-side (CPU) preprocessing for inference: intensity normalisation per paper, resampling of
// [D, H, W] volumes to a target spacing (trilinear for images, nearest for masks, PyTorch's
// align_corners=False grid) and back, and stacking of input channels. Conventions: docs/inference.md.
import { PulmoError, shapeStr } from "../runtime/errors.ts";
import { checkSpacing, checkVolume, type Shape3, type Spacing3, type Volume } from "./masks/volume.ts";

/** Co-ReTr's HU window (paper: "truncated to the range [−1024, 3068] ... followed by a min-max normalization"). */
export const CORETR_HU_WINDOW: readonly [number, number] = [-1024, 3068];

/**
 * Intensity normalisation of a CT volume.
 * - `window-minmax` (Co-ReTr): clip to [lo, hi] HU (default [−1024, 3068]), then min-max to [0, 1].
 *   `range: "window"` (default) uses the window bounds themselves, `(v − lo) / (hi − lo)`, the same
 *   map for every scan; `range: "volume"` uses the clipped volume's own min and max (a constant
 *   volume maps to 0).
 * - `zscore` (nnU-Net CT scheme, the ResNet paper's "population-level" normalisation): optional clip to
 *   [lo, hi] first, then `(v − mean) / max(std, 1e-8)` with the given dataset statistics.
 * - `none`: values copied as they are.
 */
export type Normalization =
  | { kind: "window-minmax"; window?: readonly [number, number]; range?: "window" | "volume" }
  | { kind: "zscore"; mean: number; std: number; clip?: readonly [number, number] }
  | { kind: "none" };

function finite(what: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new PulmoError(`${what} must be a finite number, got ${String(v)}`);
  return v;
}

function checkWindow(what: string, w: unknown): [number, number] {
  if (!Array.isArray(w) || w.length !== 2) throw new PulmoError(`${what} must be [lo, hi], got ${JSON.stringify(w)}`);
  const lo = finite(`${what}[0]`, w[0]);
  const hi = finite(`${what}[1]`, w[1]);
  if (!(hi > lo)) throw new PulmoError(`${what} must have hi > lo, got [${lo}, ${hi}]`);
  return [lo, hi];
}

/** Normalised copy of `data` (never modified) as float32. NaN voxels are rejected. */
export function normalizeIntensity(data: ArrayLike<number>, norm: Normalization): Float32Array {
  const n = data.length;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = data[i]!;
    if (Number.isNaN(v)) throw new PulmoError(`normalizeIntensity: voxel ${i} is NaN`);
  }
  if (!norm || typeof norm !== "object") throw new PulmoError(`normalizeIntensity: normalization must be an object with a 'kind'`);
  switch (norm.kind) {
    case "none":
      for (let i = 0; i < n; i++) out[i] = data[i]!;
      return out;
    case "window-minmax": {
      const [lo, hi] = checkWindow("window-minmax window", norm.window ?? CORETR_HU_WINDOW);
      const range = norm.range ?? "window";
      if (range !== "window" && range !== "volume")
        throw new PulmoError(`window-minmax range must be "window" or "volume", got ${JSON.stringify(range)}`);
      let a = lo,
        b = hi;
      if (range === "volume") {
        a = Infinity;
        b = -Infinity;
        for (let i = 0; i < n; i++) {
          const v = Math.min(hi, Math.max(lo, data[i]!));
          if (v < a) a = v;
          if (v > b) b = v;
        }
      }
      const scale = b > a ? 1 / (b - a) : 0;
      for (let i = 0; i < n; i++) out[i] = (Math.min(hi, Math.max(lo, data[i]!)) - a) * scale;
      return out;
    }
    case "zscore": {
      const mean = finite("zscore mean", norm.mean);
      const std = finite("zscore std", norm.std);
      if (std < 0) throw new PulmoError(`zscore std must be >= 0, got ${std}`);
      const inv = 1 / Math.max(std, 1e-8);
      const [lo, hi] = norm.clip ? checkWindow("zscore clip", norm.clip) : [-Infinity, Infinity];
      for (let i = 0; i < n; i++) out[i] = (Math.min(hi, Math.max(lo, data[i]!)) - mean) * inv;
      return out;
    }
    default:
      throw new PulmoError(`normalizeIntensity: unknown kind ${JSON.stringify((norm as { kind: unknown }).kind)} (window-minmax, zscore, none)`);
  }
}

/**
 * Interpolation for `resample`, with PyTorch `F.interpolate(size=...)` semantics on each axis
 * (align_corners=False, scale = in / out):
 * - `linear` (trilinear): source coordinate `s = (o + 0.5)·scale − 0.5`, clamped below at 0,
 *   `i0 = floor(s)`, `i1 = min(i0 + 1, in − 1)`, weight `s − i0` on `i1`. Separable (W, then H, then D).
 * - `nearest-exact`: `i = min(floor((o + 0.5)·scale), in − 1)` (centre-aligned; the default for masks).
 * - `nearest`: PyTorch's legacy `i = min(floor(o·scale), in − 1)`.
 */
export type Interpolation = "linear" | "nearest-exact" | "nearest";

/** Per output index along one axis: two source indices and the weight of the second. */
function axisTable(inSize: number, outSize: number, mode: Interpolation): { i0: Int32Array; i1: Int32Array; t: Float64Array } {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const t = new Float64Array(outSize);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    if (mode === "linear") {
      const s = Math.max(0, (o + 0.5) * scale - 0.5);
      const a = Math.min(Math.floor(s), inSize - 1);
      i0[o] = a;
      i1[o] = Math.min(a + 1, inSize - 1);
      t[o] = s - a;
      if (i1[o] === a) t[o] = 0;
    } else {
      const a = Math.min(Math.floor(mode === "nearest" ? o * scale : (o + 0.5) * scale), inSize - 1);
      i0[o] = a;
      i1[o] = a;
      t[o] = 0;
    }
  }
  return { i0, i1, t };
}

/** Resamples along one axis of a [A, L, B] view (L the axis) to length `out`. */
function resampleAxis(src: Float32Array, A: number, L: number, B: number, out: number, mode: Interpolation): Float32Array {
  const dst = new Float32Array(A * out * B);
  const { i0, i1, t } = axisTable(L, out, mode);
  for (let a = 0; a < A; a++) {
    const sBase = a * L * B;
    const dBase = a * out * B;
    for (let o = 0; o < out; o++) {
      const r0 = sBase + i0[o]! * B;
      const r1 = sBase + i1[o]! * B;
      const w = t[o]!;
      const d = dBase + o * B;
      if (w === 0) for (let b = 0; b < B; b++) dst[d + b] = src[r0 + b]!;
      else for (let b = 0; b < B; b++) dst[d + b] = src[r0 + b]! * (1 - w) + src[r1 + b]! * w;
    }
  }
  return dst;
}

function checkShape3(what: string, s: readonly number[]): Shape3 {
  if (!Array.isArray(s) || s.length !== 3 || s.some((d) => !Number.isSafeInteger(d) || d < 1))
    throw new PulmoError(`${what} must be [D, H, W] of positive integers, got ${JSON.stringify(s)}`);
  return [s[0]!, s[1]!, s[2]!];
}

/** `v` resampled to `outShape` (float32; the input is never modified). Axes whose size is unchanged
 * are copied, so resampling to the same shape is the identity. */
export function resample(v: Volume, outShape: readonly number[], mode: Interpolation = "linear"): Float32Array {
  const [D, H, W] = checkVolume(v, "resample");
  const [oD, oH, oW] = checkShape3("resample output shape", outShape);
  if (mode !== "linear" && mode !== "nearest-exact" && mode !== "nearest")
    throw new PulmoError(`resample: mode must be "linear", "nearest-exact" or "nearest", got ${JSON.stringify(mode)}`);
  if (D * H * W === 0) throw new PulmoError(`resample: empty volume ${shapeStr([D, H, W])}`);
  let cur = v.data instanceof Float32Array ? v.data : Float32Array.from(v.data);
  if (oW !== W) cur = resampleAxis(cur, D * H, W, 1, oW, mode);
  if (oH !== H) cur = resampleAxis(cur, D, H, oW, oH, mode);
  if (oD !== D) cur = resampleAxis(cur, 1, D, oH * oW, oD, mode);
  return cur === v.data ? Float32Array.from(cur) : cur;
}

/** Each of the C channels of a [C, D, H, W] array resampled to `outShape`. */
export function resampleChannels(data: Float32Array, channels: number, shape: Shape3, outShape: Shape3, mode: Interpolation = "linear"): Float32Array {
  const n = shape[0] * shape[1] * shape[2];
  if (data.length !== channels * n) throw new PulmoError(`resampleChannels: ${data.length} values for ${channels} × ${shapeStr(shape)}`);
  const m = outShape[0] * outShape[1] * outShape[2];
  const out = new Float32Array(channels * m);
  for (let c = 0; c < channels; c++) out.set(resample({ data: data.subarray(c * n, (c + 1) * n), shape }, outShape, mode), c * m);
  return out;
}

/**
 * Grid of a volume of `shape` and `spacing` resampled to `target` spacing: each axis gets
 * `max(1, round(size · spacing / target))` voxels over the same physical extent (the outer voxel
 * faces stay put, as align_corners=False), so the spacing actually reached is
 * `size · spacing / outSize`, within half a voxel of the extent of `target`. A `target` entry of
 * null or 0 keeps that axis.
 */
export function spacingGrid(shape: readonly number[], spacing: readonly number[], target: readonly (number | null)[]): { shape: Shape3; spacing: Spacing3 } {
  const s = checkShape3("spacingGrid shape", shape);
  const sp = checkSpacing(spacing, "spacingGrid");
  if (!Array.isArray(target) || target.length !== 3) throw new PulmoError(`target spacing must be three mm sizes (D, H, W), got ${JSON.stringify(target)}`);
  const outShape = [0, 0, 0] as [number, number, number];
  const outSpacing = [0, 0, 0] as [number, number, number];
  for (let a = 0; a < 3; a++) {
    const t = target[a];
    if (t === null || t === 0) {
      outShape[a] = s[a];
      outSpacing[a] = sp[a];
      continue;
    }
    if (typeof t !== "number" || !(Number.isFinite(t) && t > 0))
      throw new PulmoError(`target spacing must be positive finite mm (or null to keep an axis), got ${JSON.stringify(target)}`);
    outShape[a] = Math.max(1, Math.round((s[a] * sp[a]) / t));
    outSpacing[a] = (s[a] * sp[a]) / outShape[a];
  }
  return { shape: outShape, spacing: outSpacing };
}

/** A volume resampled to a target spacing (see `spacingGrid`): trilinear for images, nearest-exact for masks. */
export function resampleToSpacing(
  v: Volume,
  spacing: readonly number[],
  target: readonly (number | null)[],
  mode: Interpolation = "linear",
): { data: Float32Array; shape: Shape3; spacing: Spacing3 } {
  const g = spacingGrid(v.shape, spacing, target);
  return { data: resample(v, g.shape, mode), shape: g.shape, spacing: g.spacing };
}

export interface PreprocessOptions {
  /** intensity normalisation of the CT (default none) */
  normalization?: Normalization;
  /** voxel size of the input in mm (D, H, W); needed with `targetSpacing` */
  spacing?: readonly number[];
  /** resample to this spacing (mm, D/H/W; null keeps an axis) before inference */
  targetSpacing?: readonly (number | null)[];
  /** resample to exactly this shape instead (e.g. the DenseUNet's 512→256 in-plane resize) */
  targetShape?: readonly number[];
  /** extra input channels after the CT, on the CT's grid, e.g. the CTV paper's iGTV mask: resampled
   * with nearest-exact, not normalised (values kept as they are, masks as 0/1) */
  extraChannels?: Volume[];
}

export interface Preprocessed {
  /** [C, D, H, W] model input on the working grid */
  data: Float32Array;
  channels: number;
  /** working grid */
  shape: Shape3;
  /** working spacing (mm), when the input spacing was given */
  spacing: Spacing3 | null;
  /** the input grid, to resample predictions back to */
  originalShape: Shape3;
}

/** Normalises the CT, stacks the extra channels (as 0/1 where they are masks, values kept), and
 * resamples everything to the working grid. */
export function preprocess(ct: Volume, options: PreprocessOptions = {}): Preprocessed {
  const shape = checkVolume(ct, "preprocess ct");
  if (shape[0] * shape[1] * shape[2] === 0) throw new PulmoError(`preprocess: empty CT volume ${shapeStr(shape)}`);
  const extras = options.extraChannels ?? [];
  extras.forEach((e, k) => {
    const s = checkVolume(e, `preprocess extra channel ${k}`);
    if (s[0] !== shape[0] || s[1] !== shape[1] || s[2] !== shape[2])
      throw new PulmoError(`preprocess: extra channel ${k} has shape ${shapeStr(s)}, the CT ${shapeStr(shape)} (different grids)`);
  });
  if (options.targetSpacing && options.targetShape) throw new PulmoError(`preprocess: give targetSpacing or targetShape, not both`);
  const spacing = options.spacing ? checkSpacing(options.spacing, "preprocess") : null;
  let outShape: Shape3 = shape;
  let outSpacing: Spacing3 | null = spacing;
  if (options.targetSpacing) {
    if (!spacing) throw new PulmoError(`preprocess: targetSpacing needs the input spacing`);
    const g = spacingGrid(shape, spacing, options.targetSpacing);
    outShape = g.shape;
    outSpacing = g.spacing;
  } else if (options.targetShape) {
    outShape = checkShape3("preprocess targetShape", options.targetShape);
    outSpacing = spacing ? [(shape[0] * spacing[0]) / outShape[0], (shape[1] * spacing[1]) / outShape[1], (shape[2] * spacing[2]) / outShape[2]] : null;
  }
  const norm = normalizeIntensity(ct.data, options.normalization ?? { kind: "none" });
  const m = outShape[0] * outShape[1] * outShape[2];
  const channels = 1 + extras.length;
  const data = new Float32Array(channels * m);
  data.set(resample({ data: norm, shape }, outShape, "linear"), 0);
  extras.forEach((e, k) => data.set(resample(e, outShape, "nearest-exact"), (k + 1) * m));
  return { data, channels, shape: outShape, spacing: outSpacing, originalShape: shape };
}

// Host-side post-processing of blended probabilities: threshold or argmax, then connected-component
// clean-up, per-slice hole filling and the DenseUNet's disk dilation. Conventions: docs/inference.md.
import { PulmoError, shapeStr } from "../runtime/errors.ts";
import { connectedComponents, type Connectivity } from "./masks/components.ts";
import { dilateSlicesDisk } from "./masks/morphology.ts";
import { checkSpacing, checkVolume, type Mask, type Shape3 } from "./masks/volume.ts";

export interface PostprocessOptions {
  /** "threshold": voxel set where channel `channel`'s probability > `threshold`; "argmax": label of the
   * most probable channel (ties: the lowest). Default: threshold for one channel, argmax otherwise. */
  mode?: "threshold" | "argmax";
  /** default 0.5 (the DenseUNet paper uses 0.7) */
  threshold?: number;
  /** channel thresholded in "threshold" mode (default: the last, i.e. the foreground of a 2-class softmax) */
  channel?: number;
  /** drop components smaller than this many cm³ (needs `spacing`) */
  minVolumeCc?: number;
  /** drop components smaller than this many mm³ (needs `spacing`) */
  minVolumeMm3?: number;
  /** keep only the largest component (per label) */
  keepLargest?: boolean;
  /** fill the holes of each axial (H, W) slice: background pixels not 4-connected to the slice border */
  fillHoles?: boolean;
  /** per-slice dilation by a disk of this diameter in voxels (the DenseUNet paper: 7) */
  dilateDiameter?: number;
  /** connectivity of the components (default 26) */
  connectivity?: Connectivity;
  /** voxel size in mm (D, H, W), for the volume criteria */
  spacing?: readonly number[];
}

/** Binary mask (or label map) from [C, D, H, W] probabilities. */
export function binarize(probs: ArrayLike<number>, channels: number, shape: Shape3, options: PostprocessOptions = {}): Uint8Array {
  const n = shape[0] * shape[1] * shape[2];
  if (!Number.isSafeInteger(channels) || channels < 1 || probs.length !== channels * n)
    throw new PulmoError(`postprocess: ${probs.length} values for ${channels} channel(s) × ${shapeStr(shape)}`);
  const mode = options.mode ?? (channels === 1 ? "threshold" : "argmax");
  const out = new Uint8Array(n);
  if (mode === "threshold") {
    const t = options.threshold ?? 0.5;
    if (typeof t !== "number" || !Number.isFinite(t)) throw new PulmoError(`postprocess: threshold must be a finite number, got ${t}`);
    const ch = options.channel ?? channels - 1;
    if (!Number.isSafeInteger(ch) || ch < 0 || ch >= channels) throw new PulmoError(`postprocess: channel ${ch} outside 0..${channels - 1}`);
    const base = ch * n;
    for (let i = 0; i < n; i++) out[i] = probs[base + i]! > t ? 1 : 0;
    return out;
  }
  if (mode !== "argmax") throw new PulmoError(`postprocess: mode must be "threshold" or "argmax", got ${JSON.stringify(mode)}`);
  if (channels > 255) throw new PulmoError(`postprocess: argmax over ${channels} channels does not fit a byte label map`);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bv = probs[i]!;
    for (let c = 1; c < channels; c++) {
      const v = probs[c * n + i]!;
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

/** Fills the holes of every axial slice of a 0/1 mask in place: background pixels that no
 * 4-connected background path joins to the slice border become set. */
export function fillHolesPerSlice(mask: Mask): Mask {
  const [D, H, W] = checkVolume(mask, "fillHolesPerSlice");
  const HW = H * W;
  const outside = new Uint8Array(HW);
  const stack = new Int32Array(HW);
  const out = Uint8Array.from(mask.data, (v) => (v ? 1 : 0));
  for (let z = 0; z < D; z++) {
    const m = out.subarray(z * HW, (z + 1) * HW);
    outside.fill(0);
    let top = 0;
    const seed = (i: number) => {
      if (!m[i] && !outside[i]) {
        outside[i] = 1;
        stack[top++] = i;
      }
    };
    for (let x = 0; x < W; x++) {
      seed(x);
      seed((H - 1) * W + x);
    }
    for (let y = 0; y < H; y++) {
      seed(y * W);
      seed(y * W + W - 1);
    }
    while (top > 0) {
      const i = stack[--top]!;
      const y = (i / W) | 0;
      const x = i - y * W;
      if (x > 0) seed(i - 1);
      if (x < W - 1) seed(i + 1);
      if (y > 0) seed(i - W);
      if (y < H - 1) seed(i + W);
    }
    for (let i = 0; i < HW; i++) if (!m[i] && !outside[i]) m[i] = 1;
  }
  return { data: out, shape: mask.shape };
}

/** Applies the component criteria, hole filling and dilation to one binary mask. */
export function cleanMask(mask: Mask, options: PostprocessOptions = {}): Mask {
  const shape = checkVolume(mask, "cleanMask");
  let data = mask.data;
  const conn = options.connectivity ?? 26;
  if (options.minVolumeCc !== undefined && options.minVolumeMm3 !== undefined) throw new PulmoError(`postprocess: give minVolumeCc or minVolumeMm3, not both`);
  const minMm3 = options.minVolumeCc !== undefined ? options.minVolumeCc * 1000 : options.minVolumeMm3;
  if (minMm3 !== undefined) {
    if (typeof minMm3 !== "number" || !(minMm3 >= 0 && Number.isFinite(minMm3))) throw new PulmoError(`postprocess: minimum volume must be a non-negative number, got ${minMm3}`);
    if (!options.spacing) throw new PulmoError(`postprocess: a minimum component volume needs the voxel spacing`);
    const sp = checkSpacing(options.spacing, "postprocess");
    const voxelMm3 = sp[0] * sp[1] * sp[2];
    const cc = connectedComponents({ data, shape }, conn);
    const keep = cc.sizes.map((s) => s * voxelMm3 >= minMm3);
    const out = new Uint8Array(data.length);
    for (let i = 0; i < out.length; i++) {
      const l = cc.labels[i]!;
      out[i] = l > 0 && keep[l - 1] ? 1 : 0;
    }
    data = out;
  }
  if (options.keepLargest) data = connectedComponents({ data, shape }, conn).largest.data;
  let m: Mask = { data, shape };
  if (options.fillHoles) m = fillHolesPerSlice(m);
  if (options.dilateDiameter !== undefined && options.dilateDiameter > 1) m = dilateSlicesDisk(m, options.dilateDiameter);
  if (m.data === mask.data) m = { data: Uint8Array.from(m.data), shape };
  return m;
}

/**
 * Probabilities [C, D, H, W] → mask: `binarize`, then, per foreground label, remove components under
 * the minimum volume, keep the largest, fill holes per slice and dilate (in that order). A label map
 * (argmax with C > 2) is cleaned label by label; filled holes and dilation only claim background.
 */
export function postprocess(probs: ArrayLike<number>, channels: number, shape: Shape3, options: PostprocessOptions = {}): Mask {
  const labels = binarize(probs, channels, shape, options);
  let maxLabel = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]! > maxLabel) maxLabel = labels[i]!;
  if (maxLabel <= 1) return cleanMask({ data: labels, shape }, options);
  const out = new Uint8Array(labels.length);
  for (let l = 1; l <= maxLabel; l++) {
    const bin = Uint8Array.from(labels, (v) => (v === l ? 1 : 0));
    const c = cleanMask({ data: bin, shape }, options).data;
    for (let i = 0; i < out.length; i++) if (c[i] && (labels[i] === l || labels[i] === 0) && out[i] === 0) out[i] = l;
  }
  return { data: out, shape };
}

// Training crops from whole volumes: fixed-size patches of a [C, D, H, W] input and its label map,
// a share of them centred on foreground voxels (nnU-Net's foreground oversampling), the rest
// anywhere, seeded so an epoch's crops depend only on (seed, epoch). Browser-safe.
import { PulmoError, shapeStr } from "../runtime/errors.ts";
import { rng as mulberry32 } from "../graph/fit.ts";
import type { Sample } from "../graph/fit.ts";
import type { Shape3 } from "./masks/volume.ts";

export interface TrainingVolume {
  /** [C, D, H, W] model input (already normalised) */
  input: Float32Array;
  channels: number;
  /** [D, H, W] class indices (0 background) */
  label: Uint8Array;
  shape: Shape3;
  /** indices of the foreground voxels (computed once) */
  foreground?: Int32Array;
}

export interface CropOptions {
  patch: readonly [number, number, number];
  /** crops per volume per epoch (default 4, as Co-ReTr's "4 samples") */
  perVolume?: number;
  /** share of crops centred on a random foreground voxel (default 1/3, nnU-Net) */
  foregroundFraction?: number;
  /** seed of the crop positions (default 0) */
  seed?: number;
}

/** Indices of the voxels with a non-zero label. */
export function foregroundIndices(label: Uint8Array): Int32Array {
  let n = 0;
  for (let i = 0; i < label.length; i++) if (label[i]) n++;
  const out = new Int32Array(n);
  for (let i = 0, k = 0; i < label.length; i++) if (label[i]) out[k++] = i;
  return out;
}

/** One crop of `v` starting at `start` (zero-padded where the patch leaves the volume): input
 * [1, C, d, h, w] and target [1, 1, d, h, w] class indices (0/1 for one class: the same array fits
 * a softmax loss's indices and a sigmoid loss's same-shape target). */
export function cropSample(v: TrainingVolume, start: readonly number[], patch: readonly [number, number, number]): Sample {
  const [D, H, W] = v.shape;
  const [pd, ph, pw] = patch;
  const C = v.channels;
  const input = new Float32Array(C * pd * ph * pw);
  const target = new Float32Array(pd * ph * pw);
  for (let z = 0; z < pd; z++) {
    const sz = start[0]! + z;
    if (sz < 0 || sz >= D) continue;
    for (let y = 0; y < ph; y++) {
      const sy = start[1]! + y;
      if (sy < 0 || sy >= H) continue;
      for (let x = 0; x < pw; x++) {
        const sx = start[2]! + x;
        if (sx < 0 || sx >= W) continue;
        const src = (sz * H + sy) * W + sx;
        const dst = (z * ph + y) * pw + x;
        target[dst] = v.label[src]!;
        for (let c = 0; c < C; c++) input[c * pd * ph * pw + dst] = v.input[c * D * H * W + src]!;
      }
    }
  }
  return { input: { data: input, shape: [1, C, pd, ph, pw] }, target: { data: target, shape: [1, 1, pd, ph, pw] } };
}

/** Start of a patch centred on voxel `i`, kept inside the volume where the volume is large enough. */
function centredStart(i: number, shape: Shape3, patch: readonly number[]): number[] {
  const [, H, W] = shape;
  const c = [Math.floor(i / (H * W)), Math.floor(i / W) % H, i % W];
  return c.map((v, a) => {
    const s = v - (patch[a]! >> 1);
    return shape[a]! >= patch[a]! ? Math.min(Math.max(0, s), shape[a]! - patch[a]!) : Math.floor((shape[a]! - patch[a]!) / 2);
  });
}

function checkPatch(patch: readonly number[]): void {
  if (patch.length !== 3 || patch.some((p) => !Number.isSafeInteger(p) || p < 1)) throw new PulmoError(`crop patch must be [d, h, w] of positive integers, got ${JSON.stringify(patch)}`);
}

/**
 * A SampleSource for fit(): every epoch, `perVolume` crops of each volume, the first
 * `round(perVolume · foregroundFraction)` (at least one when the volume has foreground and the
 * fraction is > 0) centred on random foreground voxels, the rest at random starts.
 */
export function randomCrops(volumes: TrainingVolume[], o: CropOptions): (epoch: number) => Sample[] {
  checkPatch(o.patch);
  const per = o.perVolume ?? 4;
  const frac = o.foregroundFraction ?? 1 / 3;
  if (!Number.isSafeInteger(per) || per < 1) throw new PulmoError(`crops per volume must be a positive integer, got ${per}`);
  if (!(frac >= 0 && frac <= 1)) throw new PulmoError(`foreground fraction must be in [0, 1], got ${frac}`);
  for (const v of volumes) {
    const n = v.shape[0] * v.shape[1] * v.shape[2];
    if (v.label.length !== n || v.input.length !== v.channels * n) throw new PulmoError(`training volume ${shapeStr(v.shape)}: input or label has the wrong length`);
    v.foreground ??= foregroundIndices(v.label);
  }
  return (epoch) => {
    const r = mulberry32(((o.seed ?? 0) * 0x9e3779b1) ^ (epoch * 0x85ebca6b));
    const out: Sample[] = [];
    for (const v of volumes) {
      const fg = v.foreground!;
      const nFg = fg.length ? Math.max(frac > 0 ? 1 : 0, Math.round(per * frac)) : 0;
      for (let k = 0; k < per; k++) {
        const start =
          k < nFg
            ? centredStart(fg[Math.floor(r() * fg.length)]!, v.shape, o.patch)
            : o.patch.map((p, a) => (v.shape[a]! >= p ? Math.floor(r() * (v.shape[a]! - p + 1)) : Math.floor((v.shape[a]! - p) / 2)));
        out.push(cropSample(v, start, o.patch));
      }
    }
    return out;
  };
}

/** Fixed validation crops: one per volume, centred on the foreground's bounding-box centre (the
 * volume's centre without foreground). */
export function validationCrops(volumes: TrainingVolume[], patch: readonly [number, number, number]): Sample[] {
  checkPatch(patch);
  return volumes.map((v) => {
    const fg = v.foreground ?? foregroundIndices(v.label);
    const [D, H, W] = v.shape;
    let centre = ((D >> 1) * H + (H >> 1)) * W + (W >> 1);
    if (fg.length) {
      const lo = [D, H, W], hi = [0, 0, 0];
      for (const i of fg) {
        const c = [Math.floor(i / (H * W)), Math.floor(i / W) % H, i % W];
        for (let a = 0; a < 3; a++) (lo[a] = Math.min(lo[a]!, c[a]!)), (hi[a] = Math.max(hi[a]!, c[a]!));
      }
      const m = lo.map((l, a) => (l + hi[a]!) >> 1);
      centre = (m[0]! * H + m[1]!) * W + m[2]!;
    }
    return cropSample(v, centredStart(centre, v.shape, patch), patch);
  });
}

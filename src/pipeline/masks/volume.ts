// Host-side volumes for the mask operations: plain typed arrays in C order over [D, H, W].
import { PulmoError, shapeStr } from "../../runtime/errors.ts";

/** [D, H, W]: slices, rows, columns. */
export type Shape3 = readonly [number, number, number];

/** Voxel size in millimetres, in the same D, H, W order as the shape. */
export type Spacing3 = readonly [number, number, number];

/**
 * A volume as it arrives from anywhere (a safetensors tensor, a GPU read-back, a DICOM decoder):
 * any numeric array of D·H·W values in C order (W fastest). As a mask, a voxel is set when its
 * value is non-zero (so 0/1 floats, 0/255 bytes and booleans-as-numbers all work).
 */
export interface Volume {
  data: ArrayLike<number>;
  shape: Shape3;
}

/** A binary mask produced by these operations: one byte per voxel, 0 or 1. */
export interface Mask {
  data: Uint8Array;
  shape: Shape3;
}

export function voxelCount(shape: Shape3): number {
  return shape[0] * shape[1] * shape[2];
}

/** Checks a shape is three non-negative integers and that `v` holds exactly that many values. */
export function checkVolume(v: Volume, what: string): Shape3 {
  const s = v.shape;
  if (!Array.isArray(s as unknown) || s.length !== 3 || s.some((d) => !Number.isSafeInteger(d) || d < 0))
    throw new PulmoError(`${what}: shape must be [D, H, W] of non-negative integers, got ${JSON.stringify(s)}`);
  const n = voxelCount(s);
  if (v.data.length !== n) throw new PulmoError(`${what}: ${v.data.length} values for shape ${shapeStr(s)} (needs ${n})`);
  return [s[0], s[1], s[2]];
}

export function checkSameShape(a: Shape3, b: Shape3, what: string): void {
  if (a[0] !== b[0] || a[1] !== b[1] || a[2] !== b[2])
    throw new PulmoError(`${what}: shape ${shapeStr(b)} does not match ${shapeStr(a)}`);
}

export function checkSpacing(spacing: readonly number[], what: string): Spacing3 {
  if (!Array.isArray(spacing as unknown) || spacing.length !== 3 || spacing.some((s) => !(Number.isFinite(s) && s > 0)))
    throw new PulmoError(`${what}: spacing must be three positive finite millimetre sizes (D, H, W), got ${JSON.stringify(spacing)}`);
  return [spacing[0]!, spacing[1]!, spacing[2]!];
}

/** The mask as 0/1 bytes (a copy; `v` is never modified). */
export function toBits(v: Volume): Uint8Array {
  const n = v.data.length;
  const out = new Uint8Array(n);
  const d = v.data;
  for (let i = 0; i < n; i++) out[i] = d[i] !== 0 ? 1 : 0;
  return out;
}

// Binary morphology on [D, H, W] masks: the CTV margin expansion, per-slice disk dilation and
// the 6-connected erosion used to extract surfaces.
import { PulmoError } from "../../runtime/errors.ts";
import { squaredDistanceTransform } from "./edt.ts";
import { checkSameShape, checkSpacing, checkVolume, toBits, type Mask, type Spacing3, type Volume } from "./volume.ts";

/**
 * Voxels within `marginMm` of `mask` (Euclidean, with voxel `spacing` in mm, D/H/W), minus the
 * voxels set in `avoid`: the cropped isotropic CTV expansion. "Within" is inclusive: a voxel whose
 * exact EDT distance to the nearest mask voxel is `<= marginMm` is kept (golden cases
 * expand_margin_0/1 have 9 and 61 voxels at exactly the margin distance, and keep them).
 * Mask voxels that are in `avoid` are removed too. `marginMm = 0` returns `mask − avoid`.
 */
export function expandMargin(mask: Volume, avoid: Volume | null, spacing: Spacing3, marginMm: number): Mask {
  const shape = checkVolume(mask, "expandMargin mask");
  if (avoid) checkSameShape(shape, checkVolume(avoid, "expandMargin avoid"), "expandMargin avoid");
  checkSpacing(spacing, "expandMargin");
  if (!(Number.isFinite(marginMm) && marginMm >= 0))
    throw new PulmoError(`expandMargin: margin must be a non-negative finite number of mm, got ${marginMm}`);
  const d2 = squaredDistanceTransform(mask, spacing);
  const out = new Uint8Array(d2.length);
  const av = avoid?.data;
  for (let i = 0; i < d2.length; i++) {
    // sqrt then compare, as SciPy's `edt <= margin` does (same rounding at the boundary).
    out[i] = Math.sqrt(d2[i]!) <= marginMm && !(av && av[i] !== 0) ? 1 : 0;
  }
  return { data: out, shape };
}

/** Radius of the disk for a given diameter: `floor(diameter / 2)`. */
export function diskRadius(diameter: number): number {
  if (!(Number.isSafeInteger(diameter) && diameter >= 0))
    throw new PulmoError(`disk: diameter must be a non-negative integer number of voxels, got ${diameter}`);
  return Math.floor(diameter / 2);
}

/**
 * The disk footprint as a (2r+1)×(2r+1) 0/1 grid, r = floor(diameter / 2): offsets (dy, dx) with
 * dy² + dx² <= r², i.e. `skimage.morphology.disk(diameter // 2)`. Diameter 7 → r = 3:
 * ```
 * . . . # . . .
 * . # # # # # .
 * . # # # # # .
 * # # # # # # #
 * . # # # # # .
 * . # # # # # .
 * . . . # . . .
 * ```
 * An even diameter d gives the same disk as d + 1 (a centred disk always has odd width).
 */
export function diskFootprint(diameter: number): { radius: number; size: number; data: Uint8Array } {
  const r = diskRadius(diameter);
  const size = 2 * r + 1;
  const data = new Uint8Array(size * size);
  for (let y = -r; y <= r; y++) for (let x = -r; x <= r; x++) data[(y + r) * size + (x + r)] = y * y + x * x <= r * r ? 1 : 0;
  return { radius: r, size, data };
}

/**
 * Per-slice binary dilation by `diskFootprint(diameter)`: each (H, W) slice independently, no
 * growth along D; outside the volume counts as background. Computed as a 2D squared EDT per slice
 * (dilation by the disk of radius r = every pixel with a set pixel at squared distance <= r²),
 * which is O(D·H·W) whatever the radius, and exact (integer squared distances).
 */
export function dilateSlicesDisk(mask: Volume, diameter: number): Mask {
  const shape = checkVolume(mask, "dilateSlicesDisk");
  const r = diskRadius(diameter);
  const d2 = squaredDistanceTransform(mask, [1, 1, 1], [false, true, true]);
  const out = new Uint8Array(d2.length);
  const r2 = r * r;
  for (let i = 0; i < d2.length; i++) out[i] = d2[i]! <= r2 ? 1 : 0;
  return { data: out, shape };
}

/**
 * Binary erosion by the 6-connected cross (a voxel survives when it and its six face neighbours
 * are set); outside the volume counts as background, so set voxels on the border are eroded.
 */
export function erode6(mask: Volume): Mask {
  const shape = checkVolume(mask, "erode6");
  const [D, H, W] = shape;
  const m = toBits(mask);
  const out = new Uint8Array(m.length);
  const HW = H * W;
  for (let z = 0; z < D; z++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const i = z * HW + y * W + x;
        out[i] =
          m[i] &&
          z > 0 && m[i - HW] && z < D - 1 && m[i + HW] &&
          y > 0 && m[i - W] && y < H - 1 && m[i + W] &&
          x > 0 && m[i - 1] && x < W - 1 && m[i + 1]
            ? 1
            : 0;
      }
  return { data: out, shape };
}

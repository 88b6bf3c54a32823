// Voxel ↔ patient coordinates of a slice stack. Voxel index (x = column, y = row, z = slice)
// maps to patient mm as origin + x·dx·row + y·dy·column + z·dz·slice, where `row` is the direction
// along a row (ImageOrientationPatient[0..2], increasing column index) and `column` the direction
// down a column (ImageOrientationPatient[3..5]); data are stored [D, H, W] = [slice, row, column].
import { fail } from "./errors.ts";

export type Vec3 = [number, number, number];

export interface SeriesGeometry {
  /** patient position (mm) of the centre of voxel (0, 0, 0): ImagePositionPatient of the first slice */
  origin: Vec3;
  /** direction cosines of increasing column index (along a row) */
  rowDirection: Vec3;
  /** direction cosines of increasing row index (down a column) */
  columnDirection: Vec3;
  /** direction of increasing slice index (row × column for a sorted series) */
  sliceDirection: Vec3;
  /** [dz, dy, dx] in mm: slice spacing, PixelSpacing[0] (between rows), PixelSpacing[1] (between columns) */
  spacing: Vec3;
  /** [D, H, W] */
  shape: Vec3;
  /** 4×4 row-major matrix: [x, y, z, 1] (column, row, slice index) → patient mm */
  affine: number[][];
}

export const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const cross = (a: Vec3, b: Vec3): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const norm = (a: Vec3) => Math.sqrt(dot(a, a));

/** Builds the geometry (and affine) from its parts, checking the directions are orthonormal. */
export function makeGeometry(parts: { origin: Vec3; rowDirection: Vec3; columnDirection: Vec3; sliceDirection?: Vec3; spacing: Vec3; shape: Vec3 }): SeriesGeometry {
  const { origin, rowDirection: r, columnDirection: c, spacing, shape } = parts;
  const s = parts.sliceDirection ?? cross(r, c);
  for (const [name, v] of [["row", r], ["column", c], ["slice", s]] as const)
    if (v.length !== 3 || !v.every(Number.isFinite) || Math.abs(norm(v) - 1) > 1e-3) fail(`${name} direction [${v}] is not a unit vector`);
  if (Math.abs(dot(r, c)) > 1e-3 || Math.abs(dot(r, s)) > 1e-3 || Math.abs(dot(c, s)) > 1e-3) fail("row, column and slice directions are not orthogonal");
  if (!origin.every(Number.isFinite)) fail(`origin [${origin}] is not finite`);
  if (!spacing.every((v) => Number.isFinite(v) && v > 0)) fail(`spacing [${spacing}] must be positive`);
  if (!shape.every((v) => Number.isInteger(v) && v > 0)) fail(`shape [${shape}] must be positive integers`);
  const [dz, dy, dx] = spacing;
  const affine = [0, 1, 2].map((i) => [r[i]! * dx, c[i]! * dy, s[i]! * dz, origin[i]!]);
  affine.push([0, 0, 0, 1]);
  return { origin: [...origin], rowDirection: [...r], columnDirection: [...c], sliceDirection: [...s], spacing: [...spacing], shape: [...shape], affine };
}

/** Patient mm of voxel index (x, y, z), fractional allowed. */
export function voxelToPatient(g: SeriesGeometry, x: number, y: number, z: number): Vec3 {
  const a = g.affine;
  return [0, 1, 2].map((i) => a[i]![0]! * x + a[i]![1]! * y + a[i]![2]! * z + a[i]![3]!) as Vec3;
}

/** Voxel index (x, y, z) of a patient point (the directions are orthonormal, so the inverse is a transpose). */
export function patientToVoxel(g: SeriesGeometry, p: Vec3): Vec3 {
  const d: Vec3 = [p[0] - g.origin[0], p[1] - g.origin[1], p[2] - g.origin[2]];
  return [dot(d, g.rowDirection) / g.spacing[2], dot(d, g.columnDirection) / g.spacing[1], dot(d, g.sliceDirection) / g.spacing[0]];
}

const lps = (v: Vec3): Vec3 => [-v[0], -v[1], v[2]];
const unit = (v: Vec3): Vec3 => {
  const n = norm(v);
  return [v[0] / n, v[1] / n, v[2] / n];
};

/**
 * The NIfTI affine (RAS+ mm, voxel (i, j, k) = (column, row, slice)) of a DICOM geometry: DICOM
 * patient coordinates are LPS, so x and y change sign. Same [D, H, W] data order on both sides.
 */
export function niftiAffineOf(g: SeriesGeometry): number[][] {
  const a = g.affine;
  return [
    a[0]!.map((v) => -v),
    a[1]!.map((v) => -v),
    [...a[2]!],
    [0, 0, 0, 1],
  ];
}

/** The DICOM geometry of a volume with a NIfTI (RAS+) affine and shape [D, H, W]. */
export function geometryFromNiftiAffine(affine: readonly (readonly number[])[], shape: Vec3): SeriesGeometry {
  if (affine.length < 3 || affine.slice(0, 3).some((r) => r.length < 4 || !r.every(Number.isFinite))) fail("NIfTI affine must be a finite 3×4 or 4×4 matrix");
  const col = (j: number): Vec3 => lps([affine[0]![j]!, affine[1]![j]!, affine[2]![j]!]);
  const [ci, cj, ck] = [col(0), col(1), col(2)];
  const spacing: Vec3 = [norm(ck), norm(cj), norm(ci)];
  if (!spacing.every((s) => s > 0)) fail(`NIfTI affine has a zero-length axis (spacing [${spacing}])`);
  return makeGeometry({ origin: col(3), rowDirection: unit(ci), columnDirection: unit(cj), sliceDirection: unit(ck), spacing, shape });
}

// A CT series from its single-slice files: slices sorted along the slice normal, checked to form
// one regular grid, converted to HU, with the identifiers needed to reference the series later.
import type { DicomDataset } from "./dataset.ts";
import { fail, rethrowWith } from "./errors.ts";
import { cross, dot, makeGeometry, type SeriesGeometry, type Vec3 } from "./geometry.ts";
import { decodeFrames } from "./pixels.ts";
import { readDicom } from "./reader.ts";
import { TAGS } from "./tags.ts";

/** Patient, study and series attributes carried into files that reference the series. */
export interface SeriesReference {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  frameOfReferenceUid: string;
  sopClassUid: string;
  /** per slice, in sorted order */
  sopInstanceUids: string[];
  patientName: string;
  patientId: string;
  patientBirthDate: string;
  patientSex: string;
  studyDate: string;
  studyTime: string;
  studyId: string;
  accessionNumber: string;
  referringPhysicianName: string;
  studyDescription: string;
  modality: string;
}

export interface CtSeries {
  /** HU, [D, H, W] C-order */
  data: Float32Array;
  shape: [number, number, number];
  /** [dz, dy, dx] mm */
  spacing: [number, number, number];
  geometry: SeriesGeometry;
  reference: SeriesReference;
  /** each slice's position along the slice direction (mm), sorted */
  slicePositions: number[];
}

export interface SeriesOptions {
  /** allowed deviation of a slice gap from the series' spacing, as a fraction of it (default 0.01) */
  spacingTolerance?: number;
}

interface Slice {
  index: number;
  ds: DicomDataset;
  ts: string;
  position: Vec3;
  along: number;
}

const close = (a: readonly number[], b: readonly number[], tol: number) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);

/** Reads a CT (or any single-frame cross-sectional) series; the files may come in any order. */
export function readCtSeries(files: Uint8Array[], options: SeriesOptions = {}): CtSeries {
  if (!Array.isArray(files) || files.length === 0) fail("readCtSeries: no files given");
  const tolerance = options.spacingTolerance ?? 0.01;
  const parsed = files.map((bytes, index) => {
    try {
      return { index, ...readDicom(bytes) };
    } catch (e) {
      return rethrowWith(e, `(file ${index})`);
    }
  });
  const first = parsed[0]!.dataset;
  const what = (i: number) => `series file ${i}`;
  const seriesUid = first.requireString(TAGS.SeriesInstanceUID, what(0));
  const iop = first.requireNumbers(TAGS.ImageOrientationPatient, 6, what(0));
  const rows = first.requireNumber(TAGS.Rows, what(0));
  const columns = first.requireNumber(TAGS.Columns, what(0));
  const pixelSpacing = first.requireNumbers(TAGS.PixelSpacing, 2, what(0));
  const rowDirection = iop.slice(0, 3) as Vec3;
  const columnDirection = iop.slice(3, 6) as Vec3;
  const normal = cross(rowDirection, columnDirection);

  const slices: Slice[] = parsed.map(({ index, dataset: ds, transferSyntaxUid }) => {
    const uid = ds.requireString(TAGS.SeriesInstanceUID, what(index));
    if (uid !== seriesUid) fail(`mixed series: file ${index} belongs to series ${uid}, file 0 to ${seriesUid}`);
    const o = ds.requireNumbers(TAGS.ImageOrientationPatient, 6, what(index));
    if (!close(o, iop, 1e-4)) fail(`mixed series: file ${index} has ImageOrientationPatient [${o}], file 0 [${iop}]`);
    const r = ds.requireNumber(TAGS.Rows, what(index));
    const c = ds.requireNumber(TAGS.Columns, what(index));
    if (r !== rows || c !== columns) fail(`mixed series: file ${index} is ${r}×${c} pixels, file 0 ${rows}×${columns}`);
    const ps = ds.requireNumbers(TAGS.PixelSpacing, 2, what(index));
    if (!close(ps, pixelSpacing, 1e-4)) fail(`mixed series: file ${index} has PixelSpacing [${ps}], file 0 [${pixelSpacing}]`);
    if ((ds.getNumber(TAGS.NumberOfFrames) ?? 1) !== 1) fail(`file ${index} is a multi-frame image; readCtSeries takes single-slice files`);
    const position = ds.requireNumbers(TAGS.ImagePositionPatient, 3, what(index)) as Vec3;
    return { index, ds, ts: transferSyntaxUid, position, along: dot(position, normal) };
  });
  slices.sort((a, b) => a.along - b.along);

  const [dy, dx] = pixelSpacing as [number, number];
  const origin = slices[0]!.position;
  for (const s of slices) {
    // every slice must lie on the first one's in-plane grid (no sideways shift)
    const d: Vec3 = [s.position[0] - origin[0], s.position[1] - origin[1], s.position[2] - origin[2]];
    const shift = [dot(d, rowDirection) / dx, dot(d, columnDirection) / dy];
    if (shift.some((v) => Math.abs(v) > 0.01))
      fail(`slices are not aligned: file ${s.index} is shifted by [${shift.map((v) => v.toFixed(3))}] pixels in-plane from file ${slices[0]!.index}`);
  }
  const uids = new Map<string, number>();
  for (const s of slices) {
    const uid = s.ds.requireString(TAGS.SOPInstanceUID, what(s.index));
    const other = uids.get(uid);
    if (other !== undefined) fail(`duplicated slice: files ${other} and ${s.index} have the same SOPInstanceUID ${uid}`);
    uids.set(uid, s.index);
  }
  const gaps = slices.slice(1).map((s, i) => s.along - slices[i]!.along);
  gaps.forEach((g, i) => {
    if (g < 1e-3) fail(`duplicated slice position: files ${slices[i]!.index} and ${slices[i + 1]!.index} are both at ${slices[i]!.along.toFixed(3)} mm along the slice normal`);
  });
  const dz = slices.length > 1 ? Math.min(...gaps) : (first.getNumber(TAGS.SpacingBetweenSlices) ?? first.getNumber(TAGS.SliceThickness) ?? 1);
  gaps.forEach((g, i) => {
    if (Math.abs(g - dz) <= tolerance * dz) return;
    const at = `between ${slices[i]!.along.toFixed(2)} mm (file ${slices[i]!.index}) and ${slices[i + 1]!.along.toFixed(2)} mm (file ${slices[i + 1]!.index})`;
    const missing = Math.round(g / dz) - 1;
    if (missing >= 1 && Math.abs(g - (missing + 1) * dz) <= tolerance * dz * (missing + 1))
      fail(`missing slice(s): a gap of ${g.toFixed(3)} mm ${at}, where the slice spacing is ${dz.toFixed(3)} mm (${missing} slice(s) missing)`);
    fail(`non-uniform slice spacing: a gap of ${g.toFixed(3)} mm ${at}, the smallest gap is ${dz.toFixed(3)} mm`);
  });

  const decode = (s: Slice): Int32Array => {
    try {
      return decodeFrames(s.ds, s.ts)[0]!;
    } catch (e) {
      return rethrowWith(e, `(file ${s.index})`);
    }
  };
  // the first slice decodes before the volume is allocated, so its size is justified by real pixel data
  const firstPixels = decode(slices[0]!);
  const depth = slices.length;
  const plane = rows * columns;
  const data = new Float32Array(depth * plane);
  slices.forEach((s, k) => {
    const slope = s.ds.getNumber(TAGS.RescaleSlope) ?? 1;
    const intercept = s.ds.getNumber(TAGS.RescaleIntercept) ?? 0;
    const stored = k === 0 ? firstPixels : decode(s);
    for (let i = 0; i < plane; i++) data[k * plane + i] = stored[i]! * slope + intercept;
  });
  const shape: [number, number, number] = [depth, rows, columns];
  const spacing: [number, number, number] = [dz, dy, dx];
  const geometry = makeGeometry({ origin, rowDirection, columnDirection, sliceDirection: normal, spacing, shape });
  const str = (tag: number) => first.getString(tag) ?? "";
  const reference: SeriesReference = {
    studyInstanceUid: first.requireString(TAGS.StudyInstanceUID, what(0)),
    seriesInstanceUid: seriesUid,
    frameOfReferenceUid: first.requireString(TAGS.FrameOfReferenceUID, what(0)),
    sopClassUid: first.requireString(TAGS.SOPClassUID, what(0)),
    sopInstanceUids: slices.map((s) => s.ds.getString(TAGS.SOPInstanceUID)!),
    patientName: str(TAGS.PatientName),
    patientId: str(TAGS.PatientID),
    patientBirthDate: str(TAGS.PatientBirthDate),
    patientSex: str(TAGS.PatientSex),
    studyDate: str(TAGS.StudyDate),
    studyTime: str(TAGS.StudyTime),
    studyId: str(TAGS.StudyID),
    accessionNumber: str(TAGS.AccessionNumber),
    referringPhysicianName: str(TAGS.ReferringPhysicianName),
    studyDescription: str(TAGS.StudyDescription),
    modality: str(TAGS.Modality),
  };
  return { data, shape, spacing, geometry, reference, slicePositions: slices.map((s) => s.along) };
}

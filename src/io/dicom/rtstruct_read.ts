// RTSTRUCT in: the ROIs of a structure set, and one ROI's closed planar contours filled onto a
// series' voxel grid (even-odd per slice, so holes stay holes).
import { DicomDataset } from "./dataset.ts";
import { fail } from "./errors.ts";
import { patientToVoxel, type SeriesGeometry, type Vec3 } from "./geometry.ts";
import { fillEvenOdd, type Polygon } from "./contours.ts";
import { readDicom } from "./reader.ts";
import type { SeriesReference } from "./series.ts";
import { TAGS } from "./tags.ts";
import { SOP_CLASS } from "./uids.ts";

export interface RoiInfo {
  number: number;
  name: string;
  /** ROIDisplayColor [r, g, b] 0–255, when given */
  colour?: [number, number, number];
  /** number of contours of any type */
  contourCount: number;
  /** contour types present, e.g. ["CLOSED_PLANAR"] */
  contourTypes: string[];
  frameOfReferenceUid: string;
  generationAlgorithm: string;
}

/** What rasterisation needs of a series: its grid and its identifiers. */
export type SeriesLike = { geometry: SeriesGeometry; reference: SeriesReference };

export type RtstructInput = Uint8Array | DicomDataset;

function structureSet(input: RtstructInput): DicomDataset {
  const ds = input instanceof DicomDataset ? input : readDicom(input).dataset;
  const sopClass = ds.getString(TAGS.SOPClassUID);
  const modality = ds.getString(TAGS.Modality);
  if (sopClass !== SOP_CLASS.RTStructureSetStorage && modality !== "RTSTRUCT")
    fail(`not an RT Structure Set: SOPClassUID ${sopClass ?? "(none)"}, Modality ${modality ?? "(none)"}`);
  return ds;
}

/** The ROIs of an RT Structure Set, in StructureSetROISequence order. */
export function listRois(rtstruct: RtstructInput): RoiInfo[] {
  const ds = structureSet(rtstruct);
  const contoursOf = new Map<number, DicomDataset>();
  for (const item of ds.getSequence(TAGS.ROIContourSequence)) {
    const n = item.getNumber(TAGS.ReferencedROINumber);
    if (n !== undefined) contoursOf.set(n, item);
  }
  return ds.getSequence(TAGS.StructureSetROISequence).map((item, i) => {
    const number = item.getNumber(TAGS.ROINumber) ?? fail(`StructureSetROISequence item ${i} has no ROINumber`);
    const rc = contoursOf.get(number);
    const contours = rc?.getSequence(TAGS.ContourSequence) ?? [];
    const colour = rc?.getNumbers(TAGS.ROIDisplayColor) ?? [];
    const info: RoiInfo = {
      number,
      name: item.getString(TAGS.ROIName) ?? "",
      contourCount: contours.length,
      contourTypes: [...new Set(contours.map((c) => c.getString(TAGS.ContourGeometricType) ?? ""))],
      frameOfReferenceUid: item.getString(TAGS.ReferencedFrameOfReferenceUID) ?? "",
      generationAlgorithm: item.getString(TAGS.ROIGenerationAlgorithm) ?? "",
    };
    if (colour.length === 3) info.colour = colour as [number, number, number];
    return info;
  });
}

/** The series UIDs the structure set references within one frame of reference. */
function referencedSeries(ds: DicomDataset, frameOfReferenceUid: string): string[] {
  const uids: string[] = [];
  for (const fr of ds.getSequence(TAGS.ReferencedFrameOfReferenceSequence)) {
    if (fr.getString(TAGS.FrameOfReferenceUID) !== frameOfReferenceUid) continue;
    for (const study of fr.getSequence(TAGS.RTReferencedStudySequence))
      for (const series of study.getSequence(TAGS.RTReferencedSeriesSequence)) {
        const uid = series.getString(TAGS.SeriesInstanceUID);
        if (uid) uids.push(uid);
      }
  }
  return uids;
}

/** Fills ROI `roi` (name or number) onto the series grid: a [D, H, W] mask of 0/1. */
export function rasterizeRoi(rtstruct: RtstructInput, roi: string | number, series: SeriesLike): Uint8Array {
  const ds = structureSet(rtstruct);
  const rois = listRois(ds);
  const info = rois.find((r) => (typeof roi === "number" ? r.number === roi : r.name === roi));
  if (!info) fail(`ROI ${typeof roi === "number" ? `number ${roi}` : `'${roi}'`} not found; the structure set has ${rois.map((r) => `${r.number} '${r.name}'`).join(", ") || "no ROIs"}`);
  const label = `ROI ${info!.number} '${info!.name}'`;
  const { geometry: g, reference: ref } = series;
  if (info!.frameOfReferenceUid && info!.frameOfReferenceUid !== ref.frameOfReferenceUid)
    fail(`${label} is in frame of reference ${info!.frameOfReferenceUid}, the series is in ${ref.frameOfReferenceUid}: the RTSTRUCT does not belong to this series`);
  const frames = ds.getSequence(TAGS.ReferencedFrameOfReferenceSequence).map((f) => f.getString(TAGS.FrameOfReferenceUID) ?? "");
  if (frames.length > 0 && !frames.includes(ref.frameOfReferenceUid))
    fail(`the RTSTRUCT references frame of reference ${frames.join(", ")}, the series is in ${ref.frameOfReferenceUid}`);
  const seriesUids = referencedSeries(ds, ref.frameOfReferenceUid);
  if (seriesUids.length > 0 && !seriesUids.includes(ref.seriesInstanceUid))
    fail(`the RTSTRUCT references series ${seriesUids.join(", ")}, not the given series ${ref.seriesInstanceUid}`);
  const images = new Set(ref.sopInstanceUids);

  const item = ds.getSequence(TAGS.ROIContourSequence).find((c) => c.getNumber(TAGS.ReferencedROINumber) === info!.number);
  const contours = (item?.getSequence(TAGS.ContourSequence) ?? []).filter((c) => c.getString(TAGS.ContourGeometricType) === "CLOSED_PLANAR");
  if (contours.length === 0) fail(`${label} has no CLOSED_PLANAR contours (types: ${info!.contourTypes.join(", ") || "none"})`);
  const [depth, height, width] = g.shape;
  const perSlice: Polygon[][] = Array.from({ length: depth }, () => []);
  contours.forEach((c, ci) => {
    const where = `${label} contour ${ci + 1}`;
    for (const im of c.getSequence(TAGS.ContourImageSequence)) {
      const uid = im.getString(TAGS.ReferencedSOPInstanceUID);
      if (uid && !images.has(uid)) fail(`${where} references image ${uid}, which is not in the series`);
    }
    const data = c.getNumbers(TAGS.ContourData);
    const n = c.getNumber(TAGS.NumberOfContourPoints) ?? data.length / 3;
    if (data.length !== 3 * n || n < 3) fail(`${where} has ${data.length} ContourData values for NumberOfContourPoints ${n} (need 3 per point, at least 3 points)`);
    const poly = new Float64Array(2 * n);
    let zMin = Infinity;
    let zMax = -Infinity;
    for (let i = 0; i < n; i++) {
      const [x, y, z] = patientToVoxel(g, data.slice(3 * i, 3 * i + 3) as Vec3);
      poly[2 * i] = x;
      poly[2 * i + 1] = y;
      zMin = Math.min(zMin, z);
      zMax = Math.max(zMax, z);
    }
    const k = Math.round((zMin + zMax) / 2);
    const mm = (z: number) => (z * g.spacing[0]).toFixed(2);
    if (zMax - zMin > 0.1) fail(`${where} is not planar in the slice plane: it spans ${mm(zMax - zMin)} mm along the slice normal`);
    if (k < 0 || k >= depth) fail(`${where} lies ${mm(zMin)} mm along the slice normal from the first slice, outside the series (0..${mm(depth - 1)} mm)`);
    if (Math.abs((zMin + zMax) / 2 - k) > 0.25) fail(`${where} lies between slices (at slice index ${((zMin + zMax) / 2).toFixed(2)})`);
    perSlice[k]!.push(poly);
  });
  const mask = new Uint8Array(depth * height * width);
  perSlice.forEach((polys, k) => {
    if (polys.length) fillEvenOdd(polys, height, width, mask, k * height * width);
  });
  return mask;
}

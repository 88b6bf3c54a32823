// RTSTRUCT out: masks on a series' grid → closed planar contours per slice (marching squares, in
// patient mm) in an RT Structure Set that references the series image by image.
import { marchingSquares } from "./contours.ts";
import { DicomDataset } from "./dataset.ts";
import { fail } from "./errors.ts";
import { voxelToPatient } from "./geometry.ts";
import type { SeriesLike } from "./rtstruct_read.ts";
import { TAGS } from "./tags.ts";
import { SOP_CLASS, uidGenerator } from "./uids.ts";
import { fitsExplicit, writeDicom } from "./writer.ts";

/** Detached Study Management SOP class: what RT Referenced Study items conventionally name */
const STUDY_SOP_CLASS = "1.2.840.10008.3.1.2.3.1";

export interface RoiMask {
  /** [D, H, W] on the series grid; nonzero is inside */
  mask: ArrayLike<number>;
  name: string;
  /** ROIDisplayColor [r, g, b] 0–255 (default red) */
  colour?: [number, number, number];
  /** ROIGenerationAlgorithm: AUTOMATIC (default), SEMIAUTOMATIC or MANUAL */
  algorithm?: "AUTOMATIC" | "SEMIAUTOMATIC" | "MANUAL";
  /** ROIGenerationDescription, e.g. the model name */
  description?: string;
  /** RTROIInterpretedType, e.g. GTV, CTV, ORGAN (default empty) */
  interpretedType?: string;
  /** ROINumber (default: position in the list, from 1) */
  number?: number;
}

export interface RtstructOptions {
  structureSetLabel?: string;
  seriesDescription?: string;
  seriesNumber?: number;
  manufacturer?: string;
  /** makes the new UIDs reproducible */
  seed?: string | number;
  /** StructureSetDate/Time and creation date (default: now) */
  date?: Date;
}

/** One ROI: `writeRtstruct(mask, series, { roiName, colour, algorithm, description })`. */
export function writeRtstruct(
  mask: ArrayLike<number>,
  series: SeriesLike,
  options: RtstructOptions & { roiName: string } & Omit<RoiMask, "mask" | "name">,
): Uint8Array {
  const { roiName, colour, algorithm, description, interpretedType, number, ...rest } = options;
  return writeRtstructRois([{ mask, name: roiName, colour, algorithm, description, interpretedType, number }], series, rest);
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** Several ROIs in one structure set. */
export function writeRtstructRois(rois: RoiMask[], series: SeriesLike, options: RtstructOptions = {}): Uint8Array {
  const { geometry: g, reference: ref } = series;
  const [depth, height, width] = g.shape;
  if (rois.length === 0) fail("writeRtstruct: no ROIs given");
  if (ref.sopInstanceUids.length !== depth) fail(`writeRtstruct: the series has ${ref.sopInstanceUids.length} SOPInstanceUIDs for ${depth} slices`);
  const numbers = new Set<number>();
  rois.forEach((r, i) => {
    if (!r.name) fail(`writeRtstruct: ROI ${i + 1} has no name`);
    if (r.mask.length !== depth * height * width) fail(`writeRtstruct: mask '${r.name}' has ${r.mask.length} voxels, the series grid [${g.shape}] has ${depth * height * width}`);
    const n = r.number ?? i + 1;
    if (!Number.isInteger(n) || n < 1 || numbers.has(n)) fail(`writeRtstruct: ROI number ${n} of '${r.name}' is not a new positive integer`);
    numbers.add(n);
    if (r.colour && !(r.colour.length === 3 && r.colour.every((c) => Number.isInteger(c) && c >= 0 && c <= 255))) fail(`writeRtstruct: colour [${r.colour}] of '${r.name}' must be three integers 0–255`);
  });
  const uid = uidGenerator(options.seed);
  const sopInstanceUid = uid();
  const seriesUid = uid();
  const now = options.date ?? new Date();
  const date = `${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}`;
  const time = `${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}`;
  const imageRef = (k: number) =>
    new DicomDataset().set(TAGS.ReferencedSOPClassUID, "UI", ref.sopClassUid).set(TAGS.ReferencedSOPInstanceUID, "UI", ref.sopInstanceUids[k]!);

  const refSeries = new DicomDataset()
    .set(TAGS.SeriesInstanceUID, "UI", ref.seriesInstanceUid)
    .set(TAGS.ContourImageSequence, "SQ", ref.sopInstanceUids.map((_, k) => imageRef(k)));
  const refStudy = new DicomDataset()
    .set(TAGS.ReferencedSOPClassUID, "UI", STUDY_SOP_CLASS)
    .set(TAGS.ReferencedSOPInstanceUID, "UI", ref.studyInstanceUid)
    .set(TAGS.RTReferencedSeriesSequence, "SQ", [refSeries]);
  const refFrame = new DicomDataset().set(TAGS.FrameOfReferenceUID, "UI", ref.frameOfReferenceUid).set(TAGS.RTReferencedStudySequence, "SQ", [refStudy]);

  const roiItems: DicomDataset[] = [];
  const contourItems: DicomDataset[] = [];
  const observationItems: DicomDataset[] = [];
  rois.forEach((r, i) => {
    const number = r.number ?? i + 1;
    roiItems.push(
      new DicomDataset()
        .set(TAGS.ROINumber, "IS", number)
        .set(TAGS.ReferencedFrameOfReferenceUID, "UI", ref.frameOfReferenceUid)
        .set(TAGS.ROIName, "LO", r.name)
        .set(TAGS.ROIGenerationAlgorithm, "CS", r.algorithm ?? "AUTOMATIC")
        .set(TAGS.ROIGenerationDescription, "LO", r.description),
    );
    const contours: DicomDataset[] = [];
    const plane = height * width;
    for (let k = 0; k < depth; k++) {
      const base = k * plane;
      let any = false;
      for (let i = 0; i < plane && !any; i++) any = r.mask[base + i] !== 0;
      if (!any) continue;
      for (const poly of marchingSquares(height, width, (y, x) => r.mask[base + y * width + x] !== 0)) {
        const n = poly.length / 2;
        const points: number[] = [];
        for (let p = 0; p < n; p++) for (const c of voxelToPatient(g, poly[2 * p]!, poly[2 * p + 1]!, k)) points.push(Math.round(c * 1e4) / 1e4);
        contours.push(
          new DicomDataset()
            .set(TAGS.ContourImageSequence, "SQ", [imageRef(k)])
            .set(TAGS.ContourGeometricType, "CS", "CLOSED_PLANAR")
            .set(TAGS.NumberOfContourPoints, "IS", n)
            .set(TAGS.ContourNumber, "IS", contours.length + 1)
            .set(TAGS.ContourData, "DS", points),
        );
      }
    }
    contourItems.push(
      new DicomDataset()
        .set(TAGS.ROIDisplayColor, "IS", r.colour ?? [255, 0, 0])
        .set(TAGS.ContourSequence, "SQ", contours)
        .set(TAGS.ReferencedROINumber, "IS", number),
    );
    observationItems.push(
      new DicomDataset()
        .set(TAGS.ObservationNumber, "IS", number)
        .set(TAGS.ReferencedROINumber, "IS", number)
        .set(TAGS.RTROIInterpretedType, "CS", r.interpretedType)
        .set(TAGS.ROIInterpreter, "PN", undefined),
    );
  });

  const ds = new DicomDataset()
    .set(TAGS.SpecificCharacterSet, "CS", "ISO_IR 192")
    .set(TAGS.InstanceCreationDate, "DA", date)
    .set(TAGS.InstanceCreationTime, "TM", time)
    .set(TAGS.SOPClassUID, "UI", SOP_CLASS.RTStructureSetStorage)
    .set(TAGS.SOPInstanceUID, "UI", sopInstanceUid)
    .set(TAGS.StudyDate, "DA", ref.studyDate)
    .set(TAGS.SeriesDate, "DA", date)
    .set(TAGS.StudyTime, "TM", ref.studyTime)
    .set(TAGS.SeriesTime, "TM", time)
    .set(TAGS.AccessionNumber, "SH", ref.accessionNumber)
    .set(TAGS.Modality, "CS", "RTSTRUCT")
    .set(TAGS.Manufacturer, "LO", options.manufacturer ?? "Pulmo")
    .set(TAGS.ReferringPhysicianName, "PN", ref.referringPhysicianName)
    .set(TAGS.StudyDescription, "LO", ref.studyDescription)
    .set(TAGS.SeriesDescription, "LO", options.seriesDescription ?? "Pulmo contours")
    .set(TAGS.OperatorsName, "PN", undefined)
    .set(TAGS.PatientName, "PN", ref.patientName)
    .set(TAGS.PatientID, "LO", ref.patientId)
    .set(TAGS.PatientBirthDate, "DA", ref.patientBirthDate)
    .set(TAGS.PatientSex, "CS", ref.patientSex)
    .set(TAGS.StudyInstanceUID, "UI", ref.studyInstanceUid)
    .set(TAGS.SeriesInstanceUID, "UI", seriesUid)
    .set(TAGS.StudyID, "SH", ref.studyId)
    .set(TAGS.SeriesNumber, "IS", options.seriesNumber ?? 1)
    .set(TAGS.InstanceNumber, "IS", 1)
    .set(TAGS.FrameOfReferenceUID, "UI", ref.frameOfReferenceUid)
    .set(TAGS.PositionReferenceIndicator, "LO", undefined)
    .set(TAGS.StructureSetLabel, "SH", options.structureSetLabel ?? "Pulmo")
    .set(TAGS.StructureSetDate, "DA", date)
    .set(TAGS.StructureSetTime, "TM", time)
    .set(TAGS.ReferencedFrameOfReferenceSequence, "SQ", [refFrame])
    .set(TAGS.StructureSetROISequence, "SQ", roiItems)
    .set(TAGS.ROIContourSequence, "SQ", contourItems)
    .set(TAGS.RTROIObservationsSequence, "SQ", observationItems);
  // a contour of more than ~2700 points overflows explicit VR's 16-bit DS length: write implicit VR then
  return writeDicom(ds, { implicit: !fitsExplicit(ds) });
}

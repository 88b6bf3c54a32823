// A volume in HU → one CT Image Storage file per slice (int16 stored values with RescaleSlope 1 and
// RescaleIntercept), carrying every Type 1 and Type 2 attribute of the CT Image IOD.
import { DicomDataset } from "./dataset.ts";
import { fail } from "./errors.ts";
import { makeGeometry, voxelToPatient, type SeriesGeometry, type Vec3 } from "./geometry.ts";
import { TAGS } from "./tags.ts";
import { SOP_CLASS, uidGenerator } from "./uids.ts";
import { writeDicom } from "./writer.ts";

export interface CtSeriesMeta {
  patientName?: string;
  patientId?: string;
  patientBirthDate?: string;
  patientSex?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  frameOfReferenceUid?: string;
  /** per slice; generated when absent */
  sopInstanceUids?: string[];
  studyDate?: string;
  studyTime?: string;
  studyId?: string;
  accessionNumber?: string;
  studyDescription?: string;
  seriesDescription?: string;
  seriesNumber?: number;
  manufacturer?: string;
  /** makes generated UIDs reproducible */
  seed?: string | number;
  /** stored value = round(HU) − intercept (default −1024) */
  rescaleIntercept?: number;
}

type GeometryInput = Pick<SeriesGeometry, "origin" | "rowDirection" | "columnDirection" | "spacing"> & { sliceDirection?: Vec3 };

/** Writes `hu` ([D, H, W] C-order) as a DICOM CT series; returns one Part 10 file per slice, in slice order. */
export function writeCtSeries(hu: Float32Array | ArrayLike<number>, shape: readonly [number, number, number], geometry: GeometryInput, meta: CtSeriesMeta = {}): Uint8Array[] {
  const [depth, rows, columns] = shape;
  const g = makeGeometry({ ...geometry, shape: [depth, rows, columns] });
  if (rows > 65535 || columns > 65535) fail(`slices of ${rows}×${columns} exceed the 65535 limit of Rows/Columns`);
  if (hu.length !== depth * rows * columns) fail(`writeCtSeries: ${hu.length} values for shape [${shape}]`);
  if (meta.sopInstanceUids && meta.sopInstanceUids.length !== depth) fail(`writeCtSeries: ${meta.sopInstanceUids.length} SOPInstanceUIDs for ${depth} slices`);
  const uid = uidGenerator(meta.seed);
  const study = meta.studyInstanceUid ?? uid();
  const series = meta.seriesInstanceUid ?? uid();
  const frame = meta.frameOfReferenceUid ?? uid();
  const intercept = meta.rescaleIntercept ?? -1024;
  const date = meta.studyDate ?? "20000101";
  const time = meta.studyTime ?? "120000";
  const plane = rows * columns;
  const files: Uint8Array[] = [];
  for (let k = 0; k < depth; k++) {
    const pixels = new Int16Array(plane);
    for (let i = 0; i < plane; i++) {
      const v = hu[k * plane + i]!;
      if (!Number.isFinite(v)) fail(`writeCtSeries: voxel ${k * plane + i} is ${v}`);
      const stored = Math.round(v) - intercept;
      if (stored < -32768 || stored > 32767) fail(`writeCtSeries: HU ${v} at voxel ${k * plane + i} does not fit int16 with RescaleIntercept ${intercept}`);
      pixels[i] = stored;
    }
    const position = voxelToPatient(g, 0, 0, k);
    const ds = new DicomDataset()
      .set(TAGS.SpecificCharacterSet, "CS", "ISO_IR 192")
      .set(TAGS.ImageType, "CS", ["DERIVED", "SECONDARY", "AXIAL"])
      .set(TAGS.SOPClassUID, "UI", SOP_CLASS.CTImageStorage)
      .set(TAGS.SOPInstanceUID, "UI", meta.sopInstanceUids?.[k] ?? uid())
      .set(TAGS.StudyDate, "DA", date)
      .set(TAGS.SeriesDate, "DA", date)
      .set(TAGS.ContentDate, "DA", date)
      .set(TAGS.StudyTime, "TM", time)
      .set(TAGS.SeriesTime, "TM", time)
      .set(TAGS.ContentTime, "TM", time)
      .set(TAGS.AccessionNumber, "SH", meta.accessionNumber)
      .set(TAGS.Modality, "CS", "CT")
      .set(TAGS.Manufacturer, "LO", meta.manufacturer ?? "Pulmo")
      .set(TAGS.ReferringPhysicianName, "PN", undefined)
      .set(TAGS.StudyDescription, "LO", meta.studyDescription)
      .set(TAGS.SeriesDescription, "LO", meta.seriesDescription)
      .set(TAGS.PatientName, "PN", meta.patientName ?? "Anonymous^Pulmo")
      .set(TAGS.PatientID, "LO", meta.patientId ?? "PULMO")
      .set(TAGS.PatientBirthDate, "DA", meta.patientBirthDate)
      .set(TAGS.PatientSex, "CS", meta.patientSex)
      .set(TAGS.BodyPartExamined, "CS", "CHEST")
      .set(TAGS.SliceThickness, "DS", g.spacing[0])
      .set(TAGS.KVP, "DS", undefined)
      .set(TAGS.PatientPosition, "CS", "HFS")
      .set(TAGS.StudyInstanceUID, "UI", study)
      .set(TAGS.SeriesInstanceUID, "UI", series)
      .set(TAGS.StudyID, "SH", meta.studyId ?? "1")
      .set(TAGS.SeriesNumber, "IS", meta.seriesNumber ?? 1)
      .set(TAGS.AcquisitionNumber, "IS", 1)
      .set(TAGS.InstanceNumber, "IS", k + 1)
      .set(TAGS.ImagePositionPatient, "DS", position)
      .set(TAGS.ImageOrientationPatient, "DS", [...g.rowDirection, ...g.columnDirection])
      .set(TAGS.FrameOfReferenceUID, "UI", frame)
      .set(TAGS.PositionReferenceIndicator, "LO", undefined)
      .set(TAGS.SliceLocation, "DS", position[2])
      .set(TAGS.SamplesPerPixel, "US", 1)
      .set(TAGS.PhotometricInterpretation, "CS", "MONOCHROME2")
      .set(TAGS.Rows, "US", rows)
      .set(TAGS.Columns, "US", columns)
      .set(TAGS.PixelSpacing, "DS", [g.spacing[1], g.spacing[2]])
      .set(TAGS.BitsAllocated, "US", 16)
      .set(TAGS.BitsStored, "US", 16)
      .set(TAGS.HighBit, "US", 15)
      .set(TAGS.PixelRepresentation, "US", 1)
      .set(TAGS.RescaleIntercept, "DS", intercept)
      .set(TAGS.RescaleSlope, "DS", 1)
      .set(TAGS.RescaleType, "LO", "HU")
      .set(TAGS.PixelData, "OW", pixels);
    files.push(writeDicom(ds));
  }
  return files;
}

// DICOM and RTSTRUCT I/O (pure TypeScript, no Node built-ins): Part 10 reading and writing, pixel
// decoding, CT series assembly and export, RT Structure Set read (rasterise) and write (contour).
export { DicomError } from "./errors.ts";
export { DicomDataset, type DicomElement, type WriteValue } from "./dataset.ts";
export { TAGS, tagName, type TagKeyword } from "./tags.ts";
export { TRANSFER_SYNTAX, SOP_CLASS, transferSyntaxName, uidGenerator, randomUid } from "./uids.ts";
export { readDicom, MAX_SEQUENCE_DEPTH, type DicomFile } from "./reader.ts";
export { writeDicom } from "./writer.ts";
export { decodeFrames, pixelFormat, type PixelFormat } from "./pixels.ts";
export { makeGeometry, voxelToPatient, patientToVoxel, niftiAffineOf, geometryFromNiftiAffine, type SeriesGeometry, type Vec3 } from "./geometry.ts";
export { readCtSeries, type CtSeries, type SeriesReference, type SeriesOptions } from "./series.ts";
export { writeCtSeries, type CtSeriesMeta } from "./ct_writer.ts";
export { listRois, rasterizeRoi, type RoiInfo, type SeriesLike, type RtstructInput } from "./rtstruct_read.ts";
export { writeRtstruct, writeRtstructRois, type RoiMask, type RtstructOptions } from "./rtstruct_write.ts";
export { marchingSquares, fillEvenOdd, type Polygon } from "./contours.ts";

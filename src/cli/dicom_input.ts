// DICOM series folders for `pulmo segment`: the CT slices of a folder (other objects such as an
// RTSTRUCT beside them are left out), the series as a NIfTI reference grid for the mask, and the
// RTSTRUCT written back against the series.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { PulmoError } from "../runtime/errors.ts";
import { readCtSeries, readDicom, TAGS, writeRtstruct, type CtSeries } from "../io/dicom/index.ts";
import { readNifti, writeNifti, type NiftiVolume } from "../io/nifti.ts";

/** The image slices of a DICOM folder (files with pixel data), assembled by readCtSeries. */
export function readSeriesFolder(folder: string): CtSeries {
  const images: Uint8Array[] = [];
  let other = 0;
  for (const name of readdirSync(folder).sort()) {
    if (name.startsWith(".")) continue;
    const p = join(folder, name);
    if (!statSync(p).isFile()) continue;
    const bytes = readFileSync(p);
    let hasPixels: boolean;
    try {
      hasPixels = readDicom(bytes).dataset.has(TAGS.PixelData);
    } catch (e) {
      if (/\.dcm$/i.test(name) && e instanceof PulmoError) throw new PulmoError(`DICOM file ${p}: ${e.message}`);
      other++; // not DICOM: a README, a thumbnail
      continue;
    }
    if (hasPixels) images.push(bytes);
    else other++;
  }
  if (images.length === 0) throw new PulmoError(`DICOM folder ${folder}: no image slices (${other} other file(s))`);
  try {
    return readCtSeries(images);
  } catch (e) {
    if (e instanceof PulmoError) throw new PulmoError(`DICOM folder ${folder}: ${e.message}`);
    throw e;
  }
}

/**
 * The series as a NIfTI volume: HU data, [D, H, W] and spacing as they are, and a header whose
 * sform is the series affine turned from DICOM's LPS patient axes to NIfTI's RAS (x and y negated),
 * so the mask written on it overlays the CT in NIfTI viewers.
 */
export function seriesAsNifti(s: CtSeries): NiftiVolume {
  const header = Uint8Array.from(writeNifti({ data: new Float32Array(1), shape: [1, 1, 1], spacing: s.spacing }, { datatype: "uint8" }).subarray(0, 348));
  const v = new DataView(header.buffer);
  v.setInt16(252, 0, true); // qform_code: unknown
  v.setInt16(254, 1, true); // sform_code: scanner anatomical
  const ras = s.geometry.affine.slice(0, 3).map((row, r) => row.map((x) => (r < 2 ? -x : x)));
  ras.forEach((row, r) => row.forEach((x, c) => v.setFloat32(280 + 16 * r + 4 * c, x, true)));
  const ref = readNifti(writeNifti({ data: new Float32Array(1), shape: [1, 1, 1], spacing: s.spacing, header }, { datatype: "uint8" }));
  return { ...ref, data: s.data, shape: s.shape, spacing: s.spacing };
}

/** The mask as an RTSTRUCT referencing the series (one ROI). */
export function maskRtstruct(mask: Uint8Array, s: CtSeries, roiName: string, description: string): Uint8Array {
  return writeRtstruct(mask, s, { roiName, description, algorithm: "AUTOMATIC", interpretedType: "GTV", colour: [255, 64, 0], seriesDescription: `pulmo ${description}` });
}

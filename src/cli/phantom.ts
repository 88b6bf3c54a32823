// `pulmo phantom`: a seeded synthetic chest CT with its GTV, iGTV, CTV and organ masks, as NIfTI
// (and optionally a DICOM CT series with an RTSTRUCT). Anatomy and HU: docs/demo.md.
import { join } from "node:path";
import { writeNifti } from "../io/nifti.ts";
import { makeGeometry, niftiAffineOf, type SeriesGeometry } from "../io/dicom/geometry.ts";
import { writeCtSeries } from "../io/dicom/ct_writer.ts";
import { readCtSeries } from "../io/dicom/series.ts";
import { writeRtstructRois, type RoiMask } from "../io/dicom/rtstruct_write.ts";
import { makePhantom, PHANTOM_DEFAULTS, PHANTOM_HU, PHANTOM_NOISE_HU, type Phantom, type PhantomOptions } from "../pipeline/phantom.ts";
import { UsageError, type Command, type ParsedArgs } from "./args.ts";
import { writeOutput } from "./files.ts";

/** The phantom's grid in DICOM patient coordinates (LPS, origin at the centre of the field of
 * view; slice index increasing towards the head), as src/pipeline/phantom.ts defines them. */
export function phantomGeometry(p: Pick<Phantom, "shape" | "spacing">): SeriesGeometry {
  const [D, H, W] = p.shape;
  const [dz, dy, dx] = p.spacing;
  return makeGeometry({
    origin: [dx / 2 - (W * dx) / 2, dy / 2 - (H * dy) / 2, dz / 2 - (D * dz) / 2],
    rowDirection: [1, 0, 0],
    columnDirection: [0, 1, 0],
    spacing: [dz, dy, dx],
    shape: [D, H, W],
  });
}

/** A NIfTI-1 header for the phantom's grid: sform (scanner) = the RAS affine of phantomGeometry. */
export function phantomNiftiHeader(p: Pick<Phantom, "shape" | "spacing">, description: string): Uint8Array {
  const header = writeNifti({ data: new Float32Array(1), shape: [1, 1, 1], spacing: p.spacing }).slice(0, 348);
  const v = new DataView(header.buffer);
  const affine = niftiAffineOf(phantomGeometry(p));
  affine.slice(0, 3).forEach((row, r) => row.forEach((x, c) => v.setFloat32(280 + 16 * r + 4 * c, x, true)));
  v.setInt16(254, 1, true); // sform_code: scanner anatomical
  const text = new TextEncoder().encode(description.slice(0, 79));
  header.fill(0, 148, 228);
  header.set(text, 148); // descrip
  return header;
}

export interface NiftiWriter {
  /** the CT (int16 HU) */
  ct(data: Float32Array): Uint8Array;
  /** a uint8 mask on the CT's grid */
  mask(data: ArrayLike<number>): Uint8Array;
}

/** .nii.gz encoders sharing the phantom's header (grid and affine). */
export function phantomNifti(p: Pick<Phantom, "shape" | "spacing">, description: string): NiftiWriter {
  const header = phantomNiftiHeader(p, description);
  return {
    ct: (data) => writeNifti({ data, shape: p.shape, spacing: p.spacing, header }, { datatype: "int16", gzip: true }),
    mask: (data) => writeNifti({ data: Float32Array.from(data, (m) => (m ? 1 : 0)), shape: p.shape, spacing: p.spacing, header }, { datatype: "uint8", gzip: true }),
  };
}

export interface DicomExport {
  /** one Part 10 file per slice, in slice order */
  series: Uint8Array[];
  rtstruct: Uint8Array;
}

/** The CT as a DICOM series and the masks as one RTSTRUCT referencing it (read back from the
 * written series, so the references are the files' own UIDs). UIDs are derived from `seed`. */
export function phantomDicom(p: Phantom, rois: RoiMask[], seed: string, description: string): DicomExport {
  const g = phantomGeometry(p);
  const series = writeCtSeries(p.ct, p.shape, g, { seed, patientName: "PULMO^PHANTOM", patientId: seed, seriesDescription: description, manufacturer: "Pulmo" });
  const rtstruct = writeRtstructRois(rois, readCtSeries(series), { seed: `${seed}-rtstruct`, structureSetLabel: "PULMO", manufacturer: "Pulmo", date: new Date(Date.UTC(2000, 0, 1)) });
  return { series, rtstruct };
}

/** Writes the series into `folder` as CT0001.dcm … and returns the paths. */
export function writeSeriesFolder(folder: string, series: Uint8Array[]): string[] {
  const width = Math.max(4, String(series.length).length);
  return series.map((bytes, k) => {
    const path = join(folder, `CT${String(k + 1).padStart(width, "0")}.dcm`);
    writeOutput(path, bytes);
    return path;
  });
}

function triple(a: ParsedArgs, name: string, integer: boolean): [number, number, number] | undefined {
  const raw = a.str(name);
  if (raw === undefined) return undefined;
  const parts = raw.split(/[,x×]/).map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))))
    throw new UsageError(`--${name} must be three ${integer ? "positive integers" : "positive numbers"} separated by commas, got ${JSON.stringify(raw)}`);
  return [parts[0]!, parts[1]!, parts[2]!];
}

const MASKS = ["gtv", "igtv", "ctv", "body", "lungs", "heart", "oesophagus", "bone"] as const;

/** Makes the phantom and writes its files into `out`; returns the phantom and the paths written. */
export function writePhantom(options: PhantomOptions, out: string, dicom: boolean): { phantom: Phantom; files: string[] } {
  const p = makePhantom(options);
  const seed = options.seed ?? PHANTOM_DEFAULTS.seed;
  const description = `Pulmo phantom seed ${seed}`;
  const nifti = phantomNifti(p, description);
  const files: string[] = [];
  const put = (name: string, bytes: Uint8Array) => {
    const path = join(out, name);
    writeOutput(path, bytes);
    files.push(path);
  };
  put("ct.nii.gz", nifti.ct(p.ct));
  for (const m of MASKS) put(`${m}.nii.gz`, nifti.mask(p.masks[m]));
  if (dicom) {
    const d = phantomDicom(
      p,
      [
        { mask: p.masks.gtv, name: "GTV", colour: [255, 0, 0], interpretedType: "GTV", algorithm: "MANUAL", description: "phantom reference" },
        { mask: p.masks.igtv, name: "iGTV", colour: [255, 128, 0], algorithm: "MANUAL", description: "union of the GTV over breathing phases" },
        { mask: p.masks.ctv, name: "CTV", colour: [0, 128, 255], interpretedType: "CTV", algorithm: "MANUAL", description: `GTV + ${p.ctvMarginMm} mm cropped by heart, oesophagus, bone` },
      ],
      `pulmo-phantom-${seed}`,
      description,
    );
    files.push(...writeSeriesFolder(join(out, "ct"), d.series));
    put("rtstruct.dcm", d.rtstruct);
  }
  const voxelCc = (p.spacing[0] * p.spacing[1] * p.spacing[2]) / 1000;
  const volumesCc = Object.fromEntries(MASKS.map((m) => [m, +(p.masks[m].reduce((a, b) => a + b, 0) * voxelCc).toFixed(4)]));
  const info = {
    seed,
    shape: p.shape,
    spacing: p.spacing,
    coordinates: "voxel [z, y, x]; patient LPS mm with the origin at the centre of the field of view, slice index increasing towards the head",
    tumours: p.tumours.map((t) => ({ ...t, volumeCc: +t.volumeCc.toFixed(4) })),
    ctvMarginMm: p.ctvMarginMm,
    breathingPhases: options.breathingPhases ?? PHANTOM_DEFAULTS.breathingPhases,
    volumesCc,
    huNominal: PHANTOM_HU,
    noiseHu: PHANTOM_NOISE_HU,
  };
  put("phantom.json", new TextEncoder().encode(JSON.stringify(info, null, 2) + "\n"));
  return { phantom: p, files };
}

export const phantomCommand: Command = {
  name: "phantom",
  summary: "write a seeded synthetic chest CT with GTV, iGTV, CTV and organ masks",
  usage: "pulmo phantom [--seed N] [--shape D,H,W] [--spacing dz,dy,dx] [--tumours K] [--out DIR] [--dicom]",
  description:
    "Deterministic: the same options give the same files. Anatomy is in mm, so any grid samples the same body.\n" +
    "Writes ct.nii.gz (int16 HU), gtv/igtv/ctv/body/lungs/heart/oesophagus/bone.nii.gz (uint8 on the CT's grid)\n" +
    "and phantom.json (tumour sites, centres and volumes); with --dicom also ct/CT*.dcm and rtstruct.dcm.",
  flags: {
    seed: { type: "int", value: "N", help: `phantom seed (default ${PHANTOM_DEFAULTS.seed}, the demo's)` },
    shape: { type: "string", value: "D,H,W", help: `grid in voxels (default ${PHANTOM_DEFAULTS.shape.join(",")})` },
    spacing: { type: "string", value: "dz,dy,dx", help: `voxel size in mm (default ${PHANTOM_DEFAULTS.spacing.join(",")})` },
    tumours: { type: "int", value: "K", min: 1, max: 3, help: "number of tumours (default: drawn from the seed)" },
    "breathing-phases": { type: "int", value: "N", min: 1, max: 100, help: `4DCT phases of the iGTV (default ${PHANTOM_DEFAULTS.breathingPhases})` },
    out: { type: "string", value: "DIR", alias: "-o", default: "pulmo-phantom", help: "output folder" },
    dicom: { type: "boolean", help: "also write a DICOM CT series (ct/) and rtstruct.dcm with GTV, iGTV and CTV" },
  },
  examples: ["pulmo phantom --seed 7 --out case7", "pulmo phantom --shape 58,384,384 --spacing 2.5,0.9,0.9 --tumours 2 --dicom"],
  run: async (a) => {
    const out = a.str("out") ?? "pulmo-phantom";
    const options: PhantomOptions = {
      seed: a.num("seed"),
      shape: triple(a, "shape", true),
      spacing: triple(a, "spacing", false),
      tumours: a.num("tumours"),
      breathingPhases: a.num("breathing-phases"),
    };
    const t0 = performance.now();
    const { phantom: p, files } = writePhantom(options, out, a.bool("dicom"));
    console.log(`phantom ${p.shape.join("×")} at ${p.spacing.join("×")} mm, ${p.tumours.length} tumour(s), CTV margin ${p.ctvMarginMm} mm:`);
    for (const t of p.tumours) console.log(`  ${t.volumeCc.toFixed(2).padStart(8)} cc  ${t.site.padEnd(11)}  centre [z, y, x] = [${t.centre.join(", ")}]`);
    console.log(`wrote ${files.length} files to ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  },
};

/** `pulmo phantom ARGS`; returns the exit code. */
export async function phantom(args: string[]): Promise<number> {
  // main.ts imports this module: import it lazily so neither sees the other half-initialised
  const { runCommand } = await import("./main.ts");
  return runCommand(phantomCommand, args);
}

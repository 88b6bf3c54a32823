// `pulmo expand`: the CTV paper's baseline, an isotropic margin around the (i)GTV cropped by
// avoidance structures.
import { writeMaskLike } from "../io/nifti.ts";
import { expandMargin } from "../pipeline/masks/morphology.ts";
import { checkSameGrid } from "../pipeline/evaluate.ts";
import type { Command } from "./args.ts";
import { readVolume, writeOutput } from "./files.ts";

export interface ExpandResult {
  voxels: number;
  cc: number;
}

/** Expands `gtvPath` by `marginMm` (Euclidean, with the voxel spacing), removes every voxel of the
 * `avoid` masks (same grid), and writes the uint8 mask to `outPath` on the GTV's grid, atomically. */
export function expandFile(gtvPath: string, marginMm: number, avoidPaths: readonly string[], outPath: string): ExpandResult {
  const gtv = readVolume(gtvPath, "GTV");
  const n = gtv.data.length;
  let avoid: Uint8Array | null = null;
  for (const p of avoidPaths) {
    const a = readVolume(p, "avoidance mask");
    checkSameGrid(gtv, a, `avoidance mask ${p}`, `the GTV ${gtvPath}`);
    avoid ??= new Uint8Array(n);
    for (let i = 0; i < n; i++) if (a.data[i] !== 0) avoid[i] = 1;
  }
  const m = expandMargin(gtv, avoid ? { data: avoid, shape: gtv.shape } : null, gtv.spacing, marginMm);
  writeOutput(outPath, writeMaskLike(gtv, m.data, { gzip: /\.gz$/i.test(outPath) }));
  let voxels = 0;
  for (let i = 0; i < n; i++) voxels += m.data[i]!;
  return { voxels, cc: (voxels * gtv.spacing[0] * gtv.spacing[1] * gtv.spacing[2]) / 1000 };
}

export const expandCommand: Command = {
  name: "expand",
  summary: "CTV baseline: expand a GTV/iGTV by a margin in mm, cropped by avoidance structures",
  usage: "pulmo expand --gtv FILE --margin-mm M [--avoid FILE ...] --out FILE",
  description:
    "Keeps every voxel whose exact Euclidean distance (with the voxel spacing) to the GTV is at most M mm,\nminus the voxels of the avoidance masks (e.g. heart, oesophagus, vertebrae), as the cropped 5 mm / 8 mm\nexpansions of the CTV paper. The mask is written as uint8 NIfTI on the GTV's grid.",
  flags: {
    gtv: { type: "string", value: "FILE", help: "GTV or iGTV mask (NIfTI)" },
    "margin-mm": { type: "number", value: "M", min: 0, help: "isotropic margin in mm" },
    avoid: { type: "list", value: "FILE", help: "avoidance structure on the same grid, cropped out" },
    out: { type: "string", value: "FILE", alias: "-o", help: "output mask (.nii or .nii.gz)" },
  },
  examples: ["pulmo expand --gtv igtv.nii.gz --margin-mm 5 --avoid heart.nii.gz --avoid esophagus.nii.gz --out ctv5.nii.gz"],
  run: async (a) => {
    const gtv = a.need("gtv"), out = a.need("out");
    const r = expandFile(gtv, a.needNum("margin-mm"), a.list("avoid"), out);
    console.log(`wrote ${out}: ${r.voxels} voxels, ${r.cc.toFixed(2)} cm³`);
    return 0;
  },
};

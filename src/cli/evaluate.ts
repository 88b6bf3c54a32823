// `pulmo evaluate`: a predicted mask against a reference (or two folders of cases), as a table on
// stdout and optionally JSON / CSV files.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { PulmoError } from "../runtime/errors.ts";
import {
  EMPTY_MASK_CONVENTIONS, evaluateCase, evaluationJson, evaluationRows, formatCsv, formatTable, type GriddedMask, type NamedEvaluation,
} from "../pipeline/evaluate.ts";
import type { NiftiVolume } from "../io/nifti.ts";
import { UsageError, type Command } from "./args.ts";
import { listCases, readVolume, writeOutput } from "./files.ts";
import { progressBar } from "./progress.ts";

const gridded = (v: NiftiVolume): GriddedMask => ({ data: v.data, shape: v.shape, spacing: v.spacing, affine: v.affine });

/** `--oar NAME=FILE` entries → [name, file]; a bad entry is a usage error. */
export function parseOars(entries: readonly string[]): [string, string][] {
  const seen = new Set<string>();
  return entries.map((e) => {
    const m = /^([^=]+)=(.+)$/.exec(e);
    if (!m) throw new UsageError(`evaluate: --oar takes NAME=FILE, got ${JSON.stringify(e)}`);
    if (seen.has(m[1]!)) throw new UsageError(`evaluate: --oar ${m[1]} given twice`);
    seen.add(m[1]!);
    return [m[1]!, m[2]!];
  });
}

export interface EvaluateRun {
  cases: NamedEvaluation[];
  /** cases that could not be evaluated: name and message */
  failed: { name: string; message: string }[];
}

/** Evaluates one pair of files; OAR files are paths. */
export function evaluateFiles(predPath: string, refPath: string, oars: readonly [string, string][]): NamedEvaluation["evaluation"] {
  const ref = readVolume(refPath, "reference");
  const pred = readVolume(predPath, "prediction");
  const oarMasks = Object.fromEntries(oars.map(([n, f]) => [n, gridded(readVolume(f, `OAR '${n}'`))]));
  try {
    return evaluateCase(gridded(pred), gridded(ref), { oars: oarMasks });
  } catch (e) {
    if (e instanceof PulmoError) throw new PulmoError(`${predPath} vs ${refPath}: ${e.message}`);
    throw e;
  }
}

/** Folder mode: cases matched by name; OAR files are looked up inside each reference case folder
 * (or as NAME.nii[.gz] beside it when the references are files). */
export function evaluateFolders(predDir: string, refDir: string, oars: readonly [string, string][], opts: { predFile?: string; refFile?: string } = {}): EvaluateRun {
  const refs = listCases(refDir, opts.refFile);
  const preds = new Map(listCases(predDir, opts.predFile).map((c) => [c.name, c]));
  if (refs.length === 0) throw new PulmoError(`no reference cases in ${refDir} (NAME.nii[.gz] files or one folder per case)`);
  const run: EvaluateRun = { cases: [], failed: [] };
  const bar = progressBar("evaluate", refs.length);
  refs.forEach((r, k) => {
    bar.update(k, r.name);
    const p = preds.get(r.name);
    if (!p) {
      run.failed.push({ name: r.name, message: `no prediction for this case in ${predDir}` });
      return;
    }
    try {
      const caseDir = statSync(join(refDir, r.name), { throwIfNoEntry: false })?.isDirectory() ? join(refDir, r.name) : refDir;
      run.cases.push({ name: r.name, evaluation: evaluateFiles(p.path, r.path, oars.map(([n, f]) => [n, join(caseDir, f)])) });
    } catch (e) {
      if (!(e instanceof PulmoError)) throw e;
      run.failed.push({ name: r.name, message: e.message });
    }
  });
  bar.finish(`${run.cases.length} evaluated, ${run.failed.length} failed`);
  const refNames = new Set(refs.map((r) => r.name));
  for (const name of preds.keys()) if (!refNames.has(name)) run.failed.push({ name, message: `prediction without a reference in ${refDir}` });
  return run;
}

/** Prints the table, writes --json / --csv; exit 1 when a case failed. */
export function report(run: EvaluateRun, out: { json?: string; csv?: string; digits?: number }): number {
  const rows = evaluationRows(run.cases, out.digits ?? 4);
  if (run.cases.length) console.log(formatTable(rows));
  console.log(`\nnote: ${EMPTY_MASK_CONVENTIONS}; volumes cm³ (ΔV = prediction − reference); distances mm${run.cases.length > 1 ? "; mean, median and sample SD (n − 1) over the cases with a finite value" : ""}`);
  for (const f of run.failed) console.error(`FAILED ${f.name}: ${f.message}`);
  if (out.json) writeOutput(out.json, new TextEncoder().encode(evaluationJson(run.cases)));
  if (out.csv) writeOutput(out.csv, new TextEncoder().encode(formatCsv(rows)));
  return run.failed.length ? 1 : 0;
}

export const evaluateCommand: Command = {
  name: "evaluate",
  summary: "compare predicted masks with reference contours (Dice, HD95, surface distances, volumes, OAR overlap)",
  usage: "pulmo evaluate --pred P --ref R [--oar NAME=FILE ...] [--json F] [--csv F]\n       pulmo evaluate --pred-dir D --ref-dir D [--oar NAME=FILE ...] [--json F] [--csv F]",
  description: [
    "Every metric of the golden set with the voxel spacing (Dice, Jaccard, precision, recall, FPR, Hausdorff,",
    "HD95, mean and median surface distance), the volumes and their difference, the prediction's overlap with",
    "each OAR in cm³, and per-tumour rows when the reference has several connected components. Prediction and",
    "reference must share the grid (shape, spacing, affine).",
    `${EMPTY_MASK_CONVENTIONS}.`,
    "Folder mode matches cases by name (NAME.nii[.gz], or a folder NAME per case) and adds mean, median and",
    "sample-SD rows; with case folders, --oar FILE is a file inside each reference case folder.",
  ].join("\n"),
  flags: {
    pred: { type: "string", value: "FILE", help: "predicted mask (NIfTI)" },
    ref: { type: "string", value: "FILE", help: "reference mask (NIfTI)" },
    "pred-dir": { type: "string", value: "DIR", help: "folder of predicted cases" },
    "ref-dir": { type: "string", value: "DIR", help: "folder of reference cases" },
    "pred-file": { type: "string", value: "NAME", help: "in folder mode, the mask file inside each prediction case folder" },
    "ref-file": { type: "string", value: "NAME", help: "in folder mode, the mask file inside each reference case folder (e.g. gtv.nii.gz)" },
    oar: { type: "list", value: "NAME=FILE", help: "an organ at risk on the same grid" },
    json: { type: "string", value: "FILE", help: "write the results as JSON" },
    csv: { type: "string", value: "FILE", help: "write the table as CSV" },
    digits: { type: "int", min: 0, max: 12, default: 4, help: "decimals in the table and CSV" },
  },
  examples: [
    "pulmo evaluate --pred out/case1.nii.gz --ref data/case1/gtv.nii.gz --oar heart=data/case1/heart.nii.gz",
    "pulmo evaluate --pred-dir out --ref-dir data --ref-file gtv.nii.gz --csv table.csv",
  ],
  run: async (a) => {
    const oars = parseOars(a.list("oar"));
    const single = a.has("pred") || a.has("ref");
    const folder = a.has("pred-dir") || a.has("ref-dir");
    if (single && folder) throw new UsageError("evaluate: give --pred/--ref or --pred-dir/--ref-dir, not both");
    if (!single && !folder) throw new UsageError("evaluate: give --pred and --ref, or --pred-dir and --ref-dir");
    const out = { json: a.str("json"), csv: a.str("csv"), digits: a.num("digits") };
    if (single) {
      const pred = a.need("pred"), ref = a.need("ref");
      return report({ cases: [{ name: pred.replace(/^.*\//, "").replace(/\.nii(\.gz)?$/, ""), evaluation: evaluateFiles(pred, ref, oars) }], failed: [] }, out);
    }
    const predDir = a.need("pred-dir"), refDir = a.need("ref-dir");
    for (const d of [predDir, refDir]) if (!existsSync(d)) throw new PulmoError(`${d}: no such folder`);
    return report(evaluateFolders(predDir, refDir, oars, { predFile: a.str("pred-file"), refFile: a.str("ref-file") }), out);
  },
};

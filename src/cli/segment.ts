// `pulmo segment`: a NIfTI CT, a DICOM series folder or a folder of cases in, uint8 NIfTI masks on
// each CT's grid out. Folder runs are resumable (existing outputs are complete, being written
// atomically) and carry on past a failed case.
import { interruptOnSigint } from "./interrupt.ts";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PulmoError } from "../runtime/errors.ts";
import type { Device } from "../runtime/device.ts";
import { commandDevice } from "./device.ts";
import { writeMaskLike, type NiftiVolume } from "../io/nifti.ts";
import { InferenceCancelledError, segment, type SegmentOptions } from "../pipeline/inference.ts";
import { presetFor, presetOptions } from "../pipeline/presets.ts";
import { checkSameGrid } from "../pipeline/evaluate.ts";
import type { SegmentationNet } from "../models/index.ts";
import { UsageError, type Command, type ParsedArgs } from "./args.ts";
import { caseName, isDicomFolder, isNiftiPath, listCases, readInput, readVolume, writeOutput, type CaseEntry } from "./files.ts";
import { bundleSegmentOptions, readModelBundle } from "../pipeline/bundle.ts";
import { checkModelName, loadStateDictModel, parseConfig } from "./model_source.ts";
import { maskRtstruct, readSeriesFolder, seriesAsNifti } from "./dicom_input.ts";
import type { CtSeries } from "../io/dicom/index.ts";
import { progressBar, type ProgressBar } from "./progress.ts";

/** The CLI's overrides of a preset, each only when given. */
export interface SegmentOverrides {
  /** window-minmax normalisation with this HU window instead of the preset's / bundle's */
  huWindow?: [number, number];
  patch?: [number, number, number];
  overlap?: number;
  batch?: number;
  mirror?: boolean;
  gaussian?: boolean;
  threshold?: number;
  keepLargest?: boolean;
  minVolumeMm3?: number;
  fillHoles?: boolean;
}

/** A loaded network and how to build its `segment` options for a CT. */
export interface SegmentModel {
  net: SegmentationNet;
  /** e.g. "unet3d (state dict w.safetensors)" */
  label: string;
  options(ct: NiftiVolume, extras: { igtv?: NiftiVolume }): SegmentOptions;
  /** extra inputs the model needs besides the CT */
  needs: readonly "igtv"[];
}

export function applyOverrides(o: SegmentOptions, v: SegmentOverrides): SegmentOptions {
  const window = { ...o.window };
  if (v.patch) window.patch = v.patch;
  if (v.overlap !== undefined) window.overlap = v.overlap;
  if (v.batch !== undefined) window.batch = v.batch;
  if (v.mirror !== undefined) window.mirror = v.mirror;
  if (v.gaussian !== undefined) window.gaussian = v.gaussian;
  const post = { ...o.postprocess };
  // An explicit threshold thresholds the foreground channel even for a softmax model.
  if (v.threshold !== undefined) Object.assign(post, { threshold: v.threshold, mode: "threshold" as const });
  if (v.keepLargest !== undefined) post.keepLargest = v.keepLargest;
  if (v.minVolumeMm3 !== undefined) post.minVolumeMm3 = v.minVolumeMm3;
  if (v.fillHoles !== undefined) post.fillHoles = v.fillHoles;
  const pre = v.huWindow ? { ...o.preprocess, normalization: { kind: "window-minmax" as const, window: v.huWindow } } : o.preprocess;
  return { ...o, preprocess: pre, window, postprocess: post };
}

/** `--hu-window LO,HI` → [lo, hi] with lo < hi. */
export function parseHuWindow(raw: string | undefined, cmd: string): [number, number] | undefined {
  if (raw === undefined) return undefined;
  const v = raw.split(",").map((x) => (x.trim() === "" ? NaN : Number(x)));
  if (v.length !== 2 || !v.every(Number.isFinite) || !(v[1]! > v[0]!)) throw new UsageError(`${cmd}: --hu-window takes LO,HI in HU with LO < HI, got ${JSON.stringify(raw)}`);
  return [v[0]!, v[1]!];
}

/** A plain state dict: the model's preset (src/pipeline/presets.ts) with the overrides. */
export function stateDictModel(device: Device, model: string, config: Record<string, unknown>, weights: string | undefined, overrides: SegmentOverrides, population?: { mean: number; sd: number }): SegmentModel {
  const preset = presetFor(model);
  const net = loadStateDictModel(device, model, config, weights);
  net.eval();
  return {
    net,
    label: `${model} (${weights ? `state dict ${weights}` : "untrained: no --weights"})`,
    needs: preset.inputs.filter((i): i is "igtv" => i === "igtv"),
    options: (ct, extras) =>
      applyOverrides(presetOptions(preset, { shape: ct.shape, config, population, inputs: extras.igtv ? { igtv: extras.igtv } : {} }), overrides),
  };
}

/** The demo model bundle shipped in the repository (H2's training script makes it). */
export const DEFAULT_BUNDLE = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "assets", "weights", "demo-unet3d.safetensors");

/** A model bundle: its own preprocessing, window and post-processing, with the overrides. */
export function bundleModel(device: Device, path: string, overrides: SegmentOverrides): SegmentModel {
  const bytes = readInput(path, "model bundle");
  let loaded: ReturnType<typeof readModelBundle>;
  try {
    loaded = readModelBundle(device, bytes);
  } catch (e) {
    if (e instanceof PulmoError) throw new PulmoError(`${path}: ${e.message}${/not a model bundle/.test(e.message) ? " (a plain state dict needs --model NAME and --config)" : ""}`);
    throw e;
  }
  const { net, spec } = loaded;
  const needsIgtv = spec.model === "ctv_unet";
  return {
    net,
    label: `${spec.model} bundle ${path}${spec.description ? ` (${spec.description})` : ""}`,
    needs: needsIgtv ? ["igtv"] : [],
    options: (_ct, extras) => {
      const o = bundleSegmentOptions(spec);
      if (extras.igtv) o.preprocess = { ...o.preprocess, extraChannels: [extras.igtv] };
      return applyOverrides(o, overrides);
    },
  };
}

export interface CaseResult {
  name: string;
  status: "done" | "skipped" | "failed";
  out: string;
  seconds?: number;
  cc?: number;
  message?: string;
}

/** Where the RTSTRUCT of a DICOM case goes: beside the mask, `NAME_rtstruct.dcm`. */
export const rtstructPath = (maskPath: string) => `${maskPath.replace(/\.nii(\.gz)?$/i, "")}_rtstruct.dcm`;

/** Reads one case's CT (and iGTV when the model needs it). */
function loadCase(entry: CaseEntry, igtvPath: string | undefined, needs: readonly "igtv"[]): { ct: NiftiVolume; series?: CtSeries; igtv?: NiftiVolume } {
  let ct: NiftiVolume, series: CtSeries | undefined;
  if (entry.kind === "dicom") {
    series = readSeriesFolder(entry.path);
    ct = seriesAsNifti(series);
  } else ct = readVolume(entry.path, "CT");
  if (ct.data.length === 0) throw new PulmoError(`CT ${entry.path}: the volume is empty`);
  if (!needs.includes("igtv")) return { ct, series };
  if (!igtvPath) throw new PulmoError(`this model takes the iGTV mask as its second input: give --igtv FILE (in a folder run, a file name inside each case folder)`);
  const igtv = readVolume(igtvPath, "iGTV");
  checkSameGrid(ct, igtv, `the iGTV ${igtvPath}`, `the CT ${entry.path}`);
  return { ct, series, igtv };
}

/** Segments one case and writes its mask atomically; returns seconds and the mask's cm³. */
export async function segmentCase(model: SegmentModel, entry: CaseEntry, out: string, igtvPath?: string, quiet = false, signal?: AbortSignal): Promise<{ seconds: number; cc: number }> {
  const t0 = performance.now();
  const { ct, series, igtv } = loadCase(entry, igtvPath, model.needs);
  const options = model.options(ct, { igtv });
  // The bar starts with the first batch, when the window count is known.
  let bar: ProgressBar | null = null;
  let total = 0;
  const r = await segment(model.net, { data: ct.data, shape: ct.shape, spacing: ct.spacing }, {
    ...options,
    signal,
    onProgress: ({ done, total: t }) => {
      total = t;
      if (!quiet) (bar ??= progressBar(entry.name, t)).update(done, `windows of ${options.window.patch.join("×")}`);
    },
  });
  let voxels = 0;
  for (let i = 0; i < r.mask.length; i++) if (r.mask[i]) voxels++;
  // The RTSTRUCT first: an existing mask then means the case is complete (resuming skips it).
  if (series) writeOutput(rtstructPath(out), maskRtstruct(r.mask, series, "GTV", model.label));
  writeOutput(out, writeMaskLike(ct, r.mask, { gzip: /\.gz$/i.test(out) }));
  const seconds = (performance.now() - t0) / 1000;
  (bar as ProgressBar | null)?.finish(`${total} windows, ${seconds.toFixed(1)} s`);
  return { seconds, cc: (voxels * ct.spacing[0] * ct.spacing[1] * ct.spacing[2]) / 1000 };
}

export interface SegmentRunOptions {
  input: string;
  out?: string;
  force?: boolean;
  /** the NIfTI inside each case folder (default: its only one) */
  caseFile?: string;
  /** iGTV mask: a file (single case) or a file name inside each case folder */
  igtv?: string;
  quiet?: boolean;
  /** cancels the run: the case in progress stops within one window (InferenceCancelledError) and no later case starts */
  signal?: AbortSignal;
}

/** The cases `input` stands for and where each mask goes. */
export function planCases(o: SegmentRunOptions): { cases: CaseEntry[]; outputs: string[]; folder: boolean } {
  const { input } = o;
  if (!existsSync(input)) throw new PulmoError(`input ${input}: no such file or folder`);
  const isDir = statSync(input).isDirectory();
  if (!isDir || isDicomFolder(input)) {
    if (!isDir && !isNiftiPath(input)) throw new PulmoError(`input ${input}: not a NIfTI file (.nii or .nii.gz), a DICOM folder or a folder of cases`);
    const entry: CaseEntry = { name: caseName(input), path: input, kind: isDir ? "dicom" : "nifti" };
    let out = o.out ?? `${entry.name}_mask.nii.gz`;
    if (o.out && ((existsSync(o.out) && statSync(o.out).isDirectory()) || o.out.endsWith("/"))) out = join(o.out, `${entry.name}.nii.gz`);
    else if (!isNiftiPath(out)) throw new UsageError(`segment: --out ${out} must end in .nii or .nii.gz (or be a folder)`);
    return { cases: [entry], outputs: [out], folder: false };
  }
  if (!o.out) throw new UsageError(`segment: a folder of cases needs --out DIR`);
  if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new UsageError(`segment: --out ${o.out} must be a folder for a folder of cases`);
  const cases = listCases(input, o.caseFile);
  if (cases.length === 0) throw new PulmoError(`no cases in ${input} (NAME.nii[.gz] files, or one folder per case)`);
  return { cases, outputs: cases.map((c) => join(o.out!, `${c.name}.nii.gz`)), folder: true };
}

/** Runs every case; a failed case is reported and the rest go on. */
export async function runSegment(model: SegmentModel, o: SegmentRunOptions): Promise<CaseResult[]> {
  const plan = planCases(o);
  const results: CaseResult[] = [];
  for (let k = 0; k < plan.cases.length; k++) {
    if (o.signal?.aborted) throw new PulmoError(`segmentation cancelled before case ${k + 1} of ${plan.cases.length}`);
    const entry = plan.cases[k]!, out = plan.outputs[k]!;
    const tag = plan.folder ? `[${k + 1}/${plan.cases.length}] ${entry.name}` : entry.name;
    if (plan.folder && !o.force && existsSync(out)) {
      results.push({ name: entry.name, status: "skipped", out });
      console.log(`${tag}: skipped, ${out} exists (--force to redo)`);
      continue;
    }
    let igtv = o.igtv;
    if (igtv !== undefined && plan.folder) igtv = entry.folder ? join(entry.folder, igtv) : undefined;
    try {
      const r = await segmentCase(model, entry, out, igtv, o.quiet, o.signal);
      results.push({ name: entry.name, status: "done", out, ...r });
      console.log(`${tag}: ${r.seconds.toFixed(1)} s, ${r.cc.toFixed(2)} cm³ → ${out}${entry.kind === "dicom" ? ` and ${rtstructPath(out)}` : ""}`);
    } catch (e) {
      if (e instanceof InferenceCancelledError) throw e; // cancelling stops the run, not just this case
      // Every failure stays with its case; one that is not ours is a bug, so its stack is shown too.
      const message = e instanceof PulmoError ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`;
      results.push({ name: entry.name, status: "failed", out, message });
      console.error(`${tag}: FAILED: ${message}`);
      if (!(e instanceof PulmoError)) console.error(e);
    }
  }
  if (plan.folder) {
    const n = (s: CaseResult["status"]) => results.filter((r) => r.status === s).length;
    const secs = results.reduce((a, r) => a + (r.seconds ?? 0), 0);
    console.log(`${results.length} cases: ${n("done")} segmented, ${n("skipped")} skipped, ${n("failed")} failed; ${secs.toFixed(1)} s segmenting`);
    for (const r of results.filter((r) => r.status === "failed")) console.error(`  failed ${r.name}: ${r.message}`);
  }
  return results;
}

function parsePatch(raw: string | undefined): [number, number, number] | undefined {
  if (raw === undefined) return undefined;
  const v = raw.split(/[,x×]/).map((s) => Number(s.trim()));
  if (v.length !== 3 || v.some((x) => !Number.isSafeInteger(x) || x < 1)) throw new UsageError(`segment: --patch takes D,H,W (three positive whole numbers), got ${JSON.stringify(raw)}`);
  return v as [number, number, number];
}

function parsePopulation(raw: string | undefined): { mean: number; sd: number } | undefined {
  if (raw === undefined) return undefined;
  const v = raw.split(",").map(Number);
  if (v.length !== 2 || !v.every(Number.isFinite) || !(v[1]! > 0)) throw new UsageError(`segment: --population takes MEAN,SD (grey levels, SD > 0), got ${JSON.stringify(raw)}`);
  return { mean: v[0]!, sd: v[1]! };
}

export function overridesFrom(a: ParsedArgs): SegmentOverrides {
  if (a.bool("gaussian") && a.bool("constant")) throw new UsageError("segment: --gaussian and --constant exclude each other");
  const o: SegmentOverrides = {};
  const hu = parseHuWindow(a.str("hu-window"), "segment");
  if (hu) o.huWindow = hu;
  const patch = parsePatch(a.str("patch"));
  if (patch) o.patch = patch;
  if (a.has("overlap")) o.overlap = a.num("overlap");
  if (a.has("batch")) o.batch = a.num("batch");
  if (a.has("mirror")) o.mirror = a.bool("mirror");
  if (a.bool("gaussian")) o.gaussian = true;
  if (a.bool("constant")) o.gaussian = false;
  if (a.has("threshold")) o.threshold = a.num("threshold");
  if (a.has("keep-largest")) o.keepLargest = a.bool("keep-largest");
  if (a.has("min-volume-mm3")) o.minVolumeMm3 = a.num("min-volume-mm3");
  if (a.has("fill-holes")) o.fillHoles = a.bool("fill-holes");
  return o;
}

export const segmentCommand: Command = {
  name: "segment",
  summary: "segment a CT (NIfTI file, DICOM series folder, or a folder of cases) into uint8 NIfTI masks",
  usage: "pulmo segment INPUT [--weights BUNDLE | --model NAME [--config JSON] --weights STATE_DICT] [--out FILE|DIR] [options]",
  description: [
    "INPUT is a .nii/.nii.gz CT, a DICOM series folder, or a folder of cases (NAME.nii[.gz] files, or one",
    "folder per case holding its CT). Each mask is written atomically as uint8 NIfTI on the CT's grid (same",
    "header and affine); for a DICOM series also an RTSTRUCT (NAME_rtstruct.dcm) referencing the series.",
    "In a folder run, cases whose output exists are skipped (outputs are only ever complete), a failed case",
    "is reported and the others go on, and the exit code is 1 if any case failed.",
    "The model: a model bundle (--weights FILE; default the bundled demo model assets/weights/demo-unet3d.safetensors)",
    "carries its own preprocessing, window and post-processing; a plain PyTorch state dict needs --model and",
    "--config and uses the model's preset (docs/inference.md). The options below override either.",
  ].join("\n"),
  flags: {
    model: { type: "string", value: "NAME", help: "registry name (unet3d, coretr, rdu, resnet34_fpn, ctv_unet, ...): --weights is then a plain state dict" },
    config: { type: "string", value: "JSON|FILE", help: "model config as JSON or a JSON file (missing keys: paper values)" },
    weights: { type: "string", value: "FILE", help: "model bundle (default: the bundled demo model), or with --model a PyTorch state dict (safetensors)" },
    out: { type: "string", value: "FILE|DIR", alias: "-o", help: "output mask, or folder for a folder of cases (default NAME_mask.nii.gz)" },
    force: { type: "boolean", help: "redo cases whose output already exists" },
    "case-file": { type: "string", value: "NAME", help: "the CT file inside each case folder (default: its only NIfTI)" },
    igtv: { type: "string", value: "FILE", help: "iGTV mask, second input of ctv_unet (in a folder run: a file name inside each case folder)" },
    "hu-window": { type: "string", value: "LO,HI", help: "normalise by clipping to this HU window and min-max (instead of the model's)" },
    patch: { type: "string", value: "D,H,W", help: "sliding-window size" },
    overlap: { type: "number", min: 0, below: 1, help: "window overlap in [0, 1)" },
    batch: { type: "int", min: 1, help: "windows per forward" },
    mirror: { type: "boolean", help: "test-time augmentation over all axis flips" },
    gaussian: { type: "boolean", help: "Gaussian importance weights (σ = window/8)" },
    constant: { type: "boolean", help: "constant importance weights" },
    threshold: { type: "number", min: 0, max: 1, help: "foreground probability threshold (default from the preset: 0.5, DenseUNet 0.7)" },
    "keep-largest": { type: "boolean", help: "keep only the largest connected component" },
    "min-volume-mm3": { type: "number", min: 0, help: "remove components smaller than this" },
    "fill-holes": { type: "boolean", help: "fill holes in each axial slice" },
    population: { type: "string", value: "MEAN,SD", help: "grey-level population statistics (resnet34_fpn, unet2d presets)" },
    quiet: { type: "boolean", help: "no progress bars" },
  },
  positionals: { name: "INPUT", help: "CT file, DICOM folder, or folder of cases", min: 1, max: 1 },
  examples: [
    "pulmo segment ct.nii.gz --out gtv.nii.gz",
    "pulmo segment dicom/series1/ --weights my-bundle.safetensors --out gtv.nii.gz",
    "pulmo segment ct.nii.gz --model unet3d --config unet3d.json --weights unet3d.safetensors --out gtv.nii.gz",
    "pulmo segment cases/ --model coretr --weights coretr.safetensors --out masks/ --mirror --keep-largest",
  ],
  run: async (a) => {
    const model = a.str("model");
    if (model) checkModelName(model);
    else if (a.has("config") || a.has("population")) throw new UsageError("segment: --config and --population go with --model (a bundle carries its own)");
    const config = parseConfig(a.str("config"));
    const overrides = overridesFrom(a);
    const population = parsePopulation(a.str("population"));
    const weights = a.str("weights") ?? (model ? undefined : DEFAULT_BUNDLE);
    if (!model && !existsSync(weights!)) throw new PulmoError(`no --weights given and the bundled demo model ${weights} is missing (npm run setup, or train it: see README)`);
    const run: SegmentRunOptions = { input: a.positionals[0]!, out: a.str("out"), force: a.bool("force"), caseFile: a.str("case-file"), igtv: a.str("igtv"), quiet: a.bool("quiet") };
    planCases(run); // usage mistakes before the GPU starts
    const interrupt = interruptOnSigint();
    run.signal = interrupt.signal;
    const device = await commandDevice();
    try {
      const m = model ? stateDictModel(device, model, config, weights, overrides, population) : bundleModel(device, weights!, overrides);
      try {
        console.error(`model: ${m.label}`);
        const results = await runSegment(m, run);
        return results.some((r) => r.status === "failed") ? 1 : 0;
      } finally {
        m.net.dispose();
      }
    } finally {
      interrupt.release();
      device.destroy();
    }
  },
};

// Per-model inference presets as data: the preprocessing, sliding window and post-processing each
// paper states (ASSUMED where the paper is silent, and said so), and the one function that turns a
// preset and a CT into `segment` options. Conventions: docs/inference.md ("Presets").
import { PulmoError, shapeStr } from "../runtime/errors.ts";
import type { Shape3, Volume } from "./masks/volume.ts";
import { CORETR_HU_WINDOW, type Normalization, type PreprocessOptions } from "./preprocess.ts";
import type { SlidingWindowOptions } from "./sliding_window.ts";
import type { PostprocessOptions } from "./postprocess.ts";
import type { SegmentOptions } from "./inference.ts";

/** Model inputs in channel order: the CT, and for the CTV U-Net the physician's iGTV mask. */
export type PresetInput = "ct" | "igtv";

export interface InferencePreset {
  /** registry name (src/models) */
  model: string;
  /** where the numbers come from */
  source: string;
  /** intensity normalisation; "population" = the ResNet paper's (stats supplied by the caller) */
  normalization: Normalization | "population";
  /** in-plane resize to [H, W] before inference and back after (the DenseUNet's 512→256) */
  inPlane?: readonly [number, number];
  /** resample to this spacing (mm, D/H/W; null keeps an axis) before inference */
  targetSpacing?: readonly (number | null)[];
  inputs: readonly PresetInput[];
  /** sliding window; `patch` "config" = the model config's `img_size` (UNETR's fixed grid) */
  window: Omit<SlidingWindowOptions, "patch" | "signal" | "onProgress"> & { patch: readonly number[] | "config" };
  postprocess: PostprocessOptions;
  /** what the preset cannot take from the paper */
  assumed?: string;
}

/** The ResNet34 paper's grey levels: 4096 CT levels (HU −1024..3071) mapped to 255. */
export const RESNET_GREY_WINDOW: readonly [number, number] = [-1024, 3071];

const MINMAX: Normalization = { kind: "window-minmax", window: CORETR_HU_WINDOW };
const GENERIC_3D = {
  normalization: MINMAX,
  inputs: ["ct"] as const,
  window: { patch: [96, 96, 96], overlap: 0.5, gaussian: true },
  postprocess: { threshold: 0.5 },
  assumed: "not from a paper of ours: Co-ReTr's HU window and min-max, a 96³ window with overlap 0.5 and Gaussian weights (nnU-Net), threshold 0.5 / argmax",
};

export const PRESETS: Readonly<Record<string, InferencePreset>> = {
  coretr: {
    model: "coretr",
    source: "Co-ReTr paper: HU truncated to [−1024, 3068] then min-max; 96³ crops; 2-class softmax. The ×2 trilinear copy for the shallow encoder is made inside the network (docs/models/coretr.md), so the preset feeds the CT once.",
    normalization: MINMAX,
    inputs: ["ct"],
    window: { patch: [96, 96, 96], overlap: 0.5, gaussian: true },
    postprocess: { threshold: 0.5 },
    assumed: "sliding window (overlap 0.5, Gaussian) as nnU-Net, whose trainer the code uses; the paper's uniform slice thickness is not stated, so no resampling unless asked",
  },
  rdu: {
    model: "rdu",
    source: "Recurrent 3D-DenseUNet paper: slices resized 512→256, 8-slice windows at stride 1 with overlapping predictions averaged, threshold 0.7, then per-slice dilation with a 7×7 circular kernel.",
    normalization: MINMAX,
    inPlane: [256, 256],
    inputs: ["ct"],
    window: { patch: [8, 256, 256], overlap: 7 / 8, gaussian: false },
    postprocess: { threshold: 0.7, dilateDiameter: 7 },
    assumed: "the paper's DICOM-to-grey conversion is not stated; Co-ReTr's HU window and min-max is used",
  },
  resnet34_fpn: {
    model: "resnet34_fpn",
    source: "Modified ResNet34 paper: single-channel 512×512 slices, 4096 grey levels converted to 255, normalised with population statistics; sigmoid, threshold 0.5; 2D slice by slice.",
    normalization: "population",
    inputs: ["ct"],
    window: { patch: [1, 512, 512], overlap: 0, gaussian: false, dims: 2 },
    postprocess: { threshold: 0.5 },
    assumed: "the population mean and SD are not printed; the caller gives them (grey levels 0..255); grey levels are not rounded to integers",
  },
  unet2d: {
    model: "unet2d",
    source: "The ResNet34 paper's U-Net benchmark, with the same inputs: 512×512 slices, population normalisation, threshold 0.5, 2D slice by slice.",
    normalization: "population",
    inputs: ["ct"],
    window: { patch: [1, 512, 512], overlap: 0, gaussian: false, dims: 2 },
    postprocess: { threshold: 0.5 },
    assumed: "as resnet34_fpn",
  },
  ctv_unet: {
    model: "ctv_unet",
    source: "CTV 3D U-Net paper: inputs the planning CT and the physician's iGTV mask (channel 1, 0/1), cropped to 416×288×128 (W×H×D) around the image centre; sigmoid; no post-processing.",
    normalization: MINMAX,
    inputs: ["ct", "igtv"],
    window: { patch: [128, 288, 416], overlap: 0.5, gaussian: true },
    postprocess: { threshold: 0.5 },
    assumed: "the CT normalisation and the common voxel size are lost in our copy: Co-ReTr's window and min-max, no resampling unless asked; volumes larger than the crop get a sliding window instead of a centre crop",
  },
  unet3d: { model: "unet3d", source: "3D U-Net (Çiçek): no lung paper of ours", ...GENERIC_3D },
  resunet: { model: "resunet", source: "MONAI residual U-Net: no lung paper of ours", ...GENERIC_3D },
  attention_unet: { model: "attention_unet", source: "MONAI Attention U-Net: no lung paper of ours", ...GENERIC_3D },
  cotr: {
    model: "cotr",
    source: "CoTr: the BCV patch 48×192×192 of its trainer",
    ...GENERIC_3D,
    window: { patch: [48, 192, 192], overlap: 0.5, gaussian: true },
  },
  unetr: {
    model: "unetr",
    source: "UNETR (MONAI): the window is the config's img_size (the position embeddings fix the grid)",
    ...GENERIC_3D,
    window: { patch: "config", overlap: 0.5, gaussian: true },
  },
};

export function presetFor(model: string): InferencePreset {
  const p = PRESETS[model];
  if (!p) throw new PulmoError(`no inference preset for model '${model}' (presets: ${Object.keys(PRESETS).join(", ")})`);
  return p;
}

/**
 * The ResNet paper's population normalisation as a z-score in HU: grey = (HU + 1024) · 255 / 4096
 * on the clipped 4096-level window, then (grey − mean) / sd with the training population's grey-level
 * statistics, which is (HU − μ) / σ with μ = mean · 4096/255 − 1024 and σ = sd · 4096/255.
 */
export function populationNormalization(greyMean: number, greySd: number): Normalization {
  if (!Number.isFinite(greyMean) || !(Number.isFinite(greySd) && greySd > 0))
    throw new PulmoError(`population normalisation needs a finite grey-level mean and a positive SD, got ${greyMean}, ${greySd}`);
  const k = 4096 / 255;
  return { kind: "zscore", mean: greyMean * k + RESNET_GREY_WINDOW[0], std: greySd * k, clip: RESNET_GREY_WINDOW };
}

export interface PresetContext {
  /** the CT's grid */
  shape: Shape3;
  /** the model's config (for UNETR's img_size) */
  config?: Record<string, unknown>;
  /** extra inputs by name, on the CT's grid (the CTV U-Net's iGTV) */
  inputs?: Partial<Record<Exclude<PresetInput, "ct">, Volume>>;
  /** grey-level population statistics for the "population" normalisation */
  population?: { mean: number; sd: number };
}

/** `segment` options for a preset on a CT of `ctx.shape` (without signal and progress). */
export function presetOptions(preset: InferencePreset, ctx: PresetContext): SegmentOptions {
  let normalization: Normalization;
  if (preset.normalization === "population") {
    if (!ctx.population)
      throw new PulmoError(`the ${preset.model} preset normalises with the training population's grey-level mean and SD, which its paper does not print: give them (CLI: --population MEAN,SD)`);
    normalization = populationNormalization(ctx.population.mean, ctx.population.sd);
  } else normalization = preset.normalization;
  const extraChannels = preset.inputs.filter((i) => i !== "ct").map((name) => {
    const v = ctx.inputs?.[name as Exclude<PresetInput, "ct">];
    if (!v) throw new PulmoError(`the ${preset.model} preset needs the ${name} mask as input channel ${preset.inputs.indexOf(name)} (CLI: --${name} FILE)`);
    return v;
  });
  const pre: PreprocessOptions = { normalization, ...(extraChannels.length ? { extraChannels } : {}) };
  if (preset.inPlane) pre.targetShape = [ctx.shape[0], preset.inPlane[0], preset.inPlane[1]];
  if (preset.targetSpacing) pre.targetSpacing = preset.targetSpacing;
  let patch: readonly number[];
  if (preset.window.patch === "config") {
    const s = ctx.config?.img_size;
    if (!Array.isArray(s) || s.length !== 3) throw new PulmoError(`the ${preset.model} preset takes its window from the config's img_size, got ${JSON.stringify(s)}`);
    patch = s as number[];
  } else patch = preset.window.patch;
  if (patch.length !== 3) throw new PulmoError(`preset ${preset.model}: window ${shapeStr(patch)} is not [d, h, w]`);
  return { preprocess: pre, window: { ...preset.window, patch }, postprocess: { ...preset.postprocess } };
}

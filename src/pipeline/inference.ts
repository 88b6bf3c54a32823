// Whole-volume inference: preprocess on the host, sliding-window GPU forwards, resample back to the
// CT's grid, post-process. Conventions: docs/inference.md.
import { PulmoError, checkFinite } from "../runtime/errors.ts";
import { checkSpacing, checkVolume, type Shape3, type Volume } from "./masks/volume.ts";
import { preprocess, resampleChannels, type PreprocessOptions } from "./preprocess.ts";
import { slidingWindow, type Predictor, type SlidingWindowOptions } from "./sliding_window.ts";
import { postprocess, type PostprocessOptions } from "./postprocess.ts";

export * from "./preprocess.ts";
export * from "./sliding_window.ts";
export * from "./postprocess.ts";

export interface SegmentOptions {
  /** normalisation, resampling, extra channels; `spacing` defaults to the CT's */
  preprocess?: PreprocessOptions;
  /** sliding window (patch required); `signal` and `onProgress` may also be given at the top level */
  window: SlidingWindowOptions;
  /** threshold/argmax and clean-up; `spacing` defaults to the CT's */
  postprocess?: PostprocessOptions;
  /** also return the blended probabilities on the CT's grid (default false) */
  returnProbabilities?: boolean;
  signal?: AbortSignal;
  onProgress?: SlidingWindowOptions["onProgress"];
}

export interface SegmentResult {
  /** [D, H, W] on the CT's grid: 0/1 (or labels with argmax over > 2 classes) */
  mask: Uint8Array;
  shape: Shape3;
  /** [C_out, D, H, W] on the CT's grid, when asked for */
  probabilities?: Float32Array;
  channels: number;
  windows: number;
  timings: { preprocessMs: number; inferenceMs: number; postprocessMs: number };
}

/** A CT as [D, H, W] values in HU with an optional voxel spacing in mm (D, H, W). */
export interface CtVolume extends Volume {
  spacing?: readonly number[];
}

/**
 * Segments a CT: `preprocess` (normalisation, resampling to the working grid, extra channels),
 * `slidingWindow` over the working grid, trilinear resampling of the probabilities back to the CT's
 * grid (as nnU-Net, probabilities are resampled, then thresholded), `postprocess`. Every GPU buffer it
 * allocates is released before it returns or throws.
 */
export async function segment(model: Predictor, ct: CtVolume, options: SegmentOptions): Promise<SegmentResult> {
  if (!options || !options.window) throw new PulmoError(`segment: options.window (with a patch size) is required`);
  const t0 = performance.now();
  const shape = checkVolume(ct, "segment ct");
  checkFinite(ct.data, "segment ct");
  const spacing = ct.spacing ? checkSpacing(ct.spacing, "segment ct") : undefined;
  const pre = preprocess(ct, { spacing, ...options.preprocess });
  const t1 = performance.now();
  const sw = await slidingWindow(model, pre.data, pre.channels, pre.shape, {
    ...options.window,
    signal: options.signal ?? options.window.signal,
    onProgress: options.onProgress ?? options.window.onProgress,
  });
  const t2 = performance.now();
  const same = sw.shape[0] === shape[0] && sw.shape[1] === shape[1] && sw.shape[2] === shape[2];
  const probs = same ? sw.data : resampleChannels(sw.data, sw.channels, sw.shape, shape, "linear");
  const mask = postprocess(probs, sw.channels, shape, { spacing, ...options.postprocess });
  const t3 = performance.now();
  return {
    mask: mask.data,
    shape,
    ...(options.returnProbabilities ? { probabilities: probs } : {}),
    channels: sw.channels,
    windows: sw.windows,
    timings: { preprocessMs: t1 - t0, inferenceMs: t2 - t1, postprocessMs: t3 - t2 },
  };
}

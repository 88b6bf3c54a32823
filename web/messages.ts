// Turns what can go wrong in the page into one message a person can act on.
import { ModelBundleError, NiftiError, NO_ADAPTER_MESSAGE } from "../src/index.ts";

export const NO_WEBGPU =
  "WebGPU is not available in this browser, so the model cannot run here. Use a recent Chrome, Edge " +
  "or Firefox with WebGPU enabled (Chromium without a GPU: start it with --enable-unsafe-webgpu), " +
  "served from https:// or localhost.";

/** WebGPU out-of-memory errors (Dawn and browsers word them differently), the engine's refusal of a
 * buffer over the device's limits, and a failed host allocation. */
const OUT_OF_MEMORY = /out[- ]of[- ]memory|OutOfMemory|not enough memory|allocation failed|failed to allocate|over the device's maxBufferSize|storage binding limit/i;

/** `doing`: what the page was doing ("segmenting"); `file`: the file being read, if any. */
export function explain(error: unknown, doing: string, file?: string): string {
  const msg = error instanceof Error ? error.message : String(error);
  if (error instanceof NiftiError)
    return `${file ?? "The file"} is not a readable NIfTI-1 file (.nii or .nii.gz): ${msg.replace(/^nifti: /, "")}`;
  if (error instanceof ModelBundleError) return `The model bundle cannot be used: ${msg}`;
  if (msg.startsWith(NO_ADAPTER_MESSAGE.slice(0, 30))) return `${NO_WEBGPU}\n(${msg})`;
  if (OUT_OF_MEMORY.test(msg))
    return `The GPU ran out of memory while ${doing}. Try a smaller volume, a model with a smaller window, or close other GPU-heavy tabs.\n(${msg})`;
  if (/device lost/i.test(msg)) return `The GPU device was lost while ${doing}; it is recreated on the next run.\n(${msg})`;
  return `Error while ${doing}${file ? ` ${file}` : ""}: ${msg}`;
}

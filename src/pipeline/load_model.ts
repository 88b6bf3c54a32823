// loadModel: a model bundle (src/pipeline/bundle.ts) from wherever the user has it, built on a device.
import type { Device } from "../runtime/device.ts";
import { readBytes, type ByteSource } from "../io/source.ts";
import { bundleSegmentOptions, readModelBundle, type ModelBundleSpec } from "./bundle.ts";
import type { SegmentationNet } from "../models/index.ts";
import type { SegmentOptions } from "./inference.ts";

export interface LoadedModel {
  net: SegmentationNet;
  spec: ModelBundleSpec;
  /** segment() options the bundle prescribes (add onProgress / signal as needed) */
  options: SegmentOptions;
}

/** Reads a model bundle from a File/Blob, ArrayBuffer, Uint8Array or URL (fetched) and builds its
 * network on `device` in eval mode; `net.dispose()` frees it. In Node, pass the file's bytes. */
export async function loadModel(device: Device, source: ByteSource): Promise<LoadedModel> {
  const { net, spec } = readModelBundle(device, await readBytes(source, "model bundle"));
  return { net, spec, options: bundleSegmentOptions(spec) };
}

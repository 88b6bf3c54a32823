// A model bundle: one safetensors file holding a network's weights and, in its `__metadata__`
// under "pulmo", everything needed to run it on a CT (model name and config, preprocessing,
// sliding window, post-processing) and how it was trained. Browser-safe.
import { PulmoError, type Device } from "../runtime/index.ts";
import { readSafetensors } from "../../weights/safetensors.ts";
import { buildModel, type SegmentationNet } from "../models/index.ts";
import type { PreprocessOptions } from "./preprocess.ts";
import type { SlidingWindowOptions } from "./sliding_window.ts";
import type { PostprocessOptions } from "./postprocess.ts";
import type { SegmentOptions } from "./inference.ts";

/** Format tag written into every bundle; a reader refuses other tags. */
export const BUNDLE_FORMAT = "pulmo-model-bundle/1";

/** How the bundled weights were made. */
export interface BundleTraining {
  /** the command that reproduces them */
  script: string;
  /** wall-clock seconds of the training run */
  seconds: number;
  /** training samples (crops) per epoch */
  samples: number;
  epochs: number;
  /** validation Dice of the kept (best) checkpoint */
  validationDice: number;
  [extra: string]: unknown;
}

export interface ModelBundleSpec {
  /** registry name (src/models MODELS) */
  model: string;
  config: Record<string, any>;
  /** JSON-able preprocessing: no input spacing (the CT's is used) and no extra-channel volumes */
  preprocess: Omit<PreprocessOptions, "spacing" | "extraChannels">;
  window: Omit<SlidingWindowOptions, "signal" | "onProgress">;
  /** post-processing; the CT's spacing is used */
  postprocess: Omit<PostprocessOptions, "spacing">;
  description: string;
  training?: BundleTraining;
}

/** A file that is not a model bundle, or one whose weights do not fit its model. */
export class ModelBundleError extends PulmoError {
  constructor(message: string) {
    super(message);
    this.name = "ModelBundleError";
  }
}

function bad(m: string): never {
  throw new ModelBundleError(m);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks the parts of a spec every reader relies on; returns it typed. */
export function checkBundleSpec(spec: unknown, what = "model bundle"): ModelBundleSpec {
  if (!isObject(spec)) bad(`${what}: the spec must be an object, got ${JSON.stringify(spec)}`);
  if (typeof spec.model !== "string" || !spec.model) bad(`${what}: 'model' must be a registry name, got ${JSON.stringify(spec.model)}`);
  if (!isObject(spec.config)) bad(`${what}: 'config' must be an object`);
  if (!isObject(spec.preprocess)) bad(`${what}: 'preprocess' must be an object`);
  if ("extraChannels" in spec.preprocess || "spacing" in spec.preprocess) bad(`${what}: 'preprocess' must not hold volumes or an input spacing`);
  if (!isObject(spec.window)) bad(`${what}: 'window' must be an object`);
  const patch = spec.window.patch;
  if (!Array.isArray(patch) || patch.length !== 3 || patch.some((p) => !Number.isSafeInteger(p) || p < 1))
    bad(`${what}: 'window.patch' must be three positive integers, got ${JSON.stringify(patch)}`);
  if (!isObject(spec.postprocess)) bad(`${what}: 'postprocess' must be an object`);
  if (typeof spec.description !== "string") bad(`${what}: 'description' must be a string`);
  if (spec.training !== undefined) {
    const t = spec.training;
    if (!isObject(t) || typeof t.script !== "string" || !["seconds", "samples", "epochs", "validationDice"].every((k) => typeof t[k] === "number" && Number.isFinite(t[k])))
      bad(`${what}: 'training' must hold script, seconds, samples, epochs and validationDice`);
  }
  return spec as unknown as ModelBundleSpec;
}

/** The network's weights (its state dict, PyTorch names) and the spec as safetensors bytes. The
 * spec must name the network's registry model and match its config. */
export async function writeModelBundle(net: SegmentationNet, spec: ModelBundleSpec): Promise<Uint8Array> {
  const s = checkBundleSpec(JSON.parse(JSON.stringify(spec)), "writeModelBundle");
  if (JSON.stringify(s.config) !== JSON.stringify(net.config)) bad(`writeModelBundle: the spec's config ${JSON.stringify(s.config)} is not the network's ${JSON.stringify(net.config)}`);
  return net.toSafetensors({ pulmo: JSON.stringify({ format: BUNDLE_FORMAT, ...s }) });
}

/** The spec of a bundle without building its network (no GPU needed). */
export function readBundleSpec(bytes: Uint8Array): ModelBundleSpec {
  let metadata: Record<string, string>;
  try {
    metadata = readSafetensors(bytes).metadata;
  } catch (e) {
    bad(`not a model bundle: not a safetensors file (${(e as Error).message})`);
  }
  const raw = metadata.pulmo;
  if (raw === undefined) bad(`not a model bundle: the safetensors metadata has no 'pulmo' entry (plain weights? load them with Module.loadSafetensors)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    bad(`not a model bundle: its 'pulmo' metadata is not JSON (${(e as Error).message})`);
  }
  if (!isObject(parsed) || parsed.format !== BUNDLE_FORMAT)
    bad(`not a model bundle: format ${JSON.stringify(isObject(parsed) ? parsed.format : parsed)}, expected ${JSON.stringify(BUNDLE_FORMAT)}`);
  const { format: _format, ...spec } = parsed;
  return checkBundleSpec(spec);
}

/** Builds the bundle's network on `device` and loads its weights (strict: every tensor present,
 * none extra, all shapes right), in eval mode. */
export function readModelBundle(device: Device, bytes: Uint8Array): { net: SegmentationNet; spec: ModelBundleSpec } {
  const spec = readBundleSpec(bytes);
  let net: SegmentationNet;
  try {
    net = buildModel(device, spec.model, spec.config);
  } catch (e) {
    bad(`model bundle: cannot build model '${spec.model}' from its config: ${(e as Error).message}`);
  }
  try {
    net.loadSafetensors(bytes, { strict: true });
  } catch (e) {
    net.dispose();
    bad(`model bundle: its tensors do not match model '${spec.model}' with config ${JSON.stringify(spec.config)}: ${(e as Error).message}`);
  }
  net.eval();
  return { net, spec };
}

/** segment() options from a bundle spec (the CT's spacing fills in the rest). */
export function bundleSegmentOptions(spec: ModelBundleSpec): SegmentOptions {
  return { preprocess: { ...spec.preprocess }, window: { ...spec.window }, postprocess: { ...spec.postprocess } };
}

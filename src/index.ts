export * from "./runtime/index.ts";
export * from "./graph/index.ts";
export * from "./models/index.ts";
export { readSafetensors, writeSafetensors, SafetensorsError, type SafetensorsFile } from "../weights/safetensors.ts";
export { readNifti, writeNifti, writeMaskLike, NiftiError, type NiftiVolume, type NiftiDtype } from "./io/nifti.ts";
export * from "./pipeline/inference.ts";
export * from "./pipeline/masks/index.ts";
export * from "./pipeline/evaluate.ts";
export { readBytes, type ByteSource } from "./io/source.ts";

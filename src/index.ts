export * from "./runtime/index.ts";
export * from "./graph/index.ts";
export * from "./models/index.ts";
export { readSafetensors, writeSafetensors, SafetensorsError, type SafetensorsFile } from "../weights/safetensors.ts";

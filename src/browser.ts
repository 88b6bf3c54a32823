// Package entry for browsers: WGSL inlined by the bundler, WebGPU from navigator.gpu.
import { KERNELS } from "pulmo:kernels";
import { setKernelSourceLoader, PulmoError } from "./runtime/index.ts";

setKernelSourceLoader((name) => {
  const code = KERNELS[name];
  if (code === undefined) throw new PulmoError(`kernel ${name} is not in this bundle`);
  return code;
});

export * from "./index.ts";

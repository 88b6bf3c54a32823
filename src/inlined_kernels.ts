// Side-effect module for bundles: kernel sources come from the WGSL that scripts/esbuild_kernels.mjs
// inlines, so a bundle reads no files. Only esbuild resolves `pulmo:kernels`.
import { KERNELS } from "pulmo:kernels";
import { setKernelSourceLoader, PulmoError } from "./runtime/index.ts";

setKernelSourceLoader((name) => {
  const code = KERNELS[name];
  if (code === undefined) throw new PulmoError(`kernel ${name} is not in this bundle`);
  return code;
});

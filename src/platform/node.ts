// Node platform: Dawn through the `webgpu` package, kernels read from kernels/ on disk.
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { create, globals } from "webgpu";
import { setGpuProvider, setKernelSourceLoader, PulmoError } from "../runtime/index.ts";

const kernelDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "kernels");

setKernelSourceLoader((name) => {
  try {
    return readFileSync(join(kernelDir, `${name}.wgsl`), "utf8");
  } catch {
    throw new PulmoError(`kernel source kernels/${name}.wgsl not found`);
  }
});

// Dawn wants a writable runtime dir for its Vulkan loader; a service rarely sets one.
if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = tmpdir();

Object.assign(globalThis, globals);
let gpu: GPU | undefined;
setGpuProvider(() => (gpu ??= create([]) as GPU));

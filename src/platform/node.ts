// Node platform: Dawn through the `webgpu` package, kernels read from kernels/ on disk.
import { existsSync, readFileSync, readdirSync } from "node:fs";
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
setGpuProvider(() => {
  // Without a Vulkan driver Dawn prints its own native warnings and traces before failing;
  // looking for an ICD first lets us fail with one clear message instead.
  if (process.platform === "linux" && !vulkanDriverPresent()) return undefined;
  return (gpu ??= create([]) as GPU);
});

/** True if the Vulkan loader can find at least one driver manifest (ICD). */
function vulkanDriverPresent(): boolean {
  const explicit = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (explicit) return explicit.split(":").some((f) => f && existsSync(f));
  const dataDirs = (process.env.XDG_DATA_DIRS || "/usr/local/share:/usr/share").split(":");
  const dirs = ["/etc/vulkan/icd.d", ...dataDirs.map((d) => join(d, "vulkan", "icd.d"))];
  return dirs.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith(".json")));
}

// Node platform: Dawn through the `webgpu` package, kernels read from kernels/ on disk.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { setPriority, tmpdir } from "node:os";
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

/** Dawn's Node bindings wait for GPU work by re-queueing a setImmediate callback on the main
 * thread for as long as any GPU promise is pending: a busy loop. On a CPU adapter (lavapipe) that
 * loop takes a core from the driver's worker threads: on 2 cores conv3d k3 ran 1.75× slower and the
 * FMA probe read 30–36 instead of 62 GFLOP/s (bench/NOTES.md, fifth pass). On Linux, where the
 * scheduling priority is per thread, this gives the calling (main) thread the lowest priority, so
 * the driver's threads, created with the device, run first and the loop only takes idle time.
 * Returns false (and changes nothing) on other systems, where it would lower the whole process.
 * Call it once after createDevice, from a program's entry point (the CLI and the benches do):
 * threads started later inherit the priority, and raising it back needs privileges. */
export function deprioritizeMainThread(): boolean {
  if (process.platform !== "linux") return false;
  try {
    setPriority(19);
    return true;
  } catch {
    return false;
  }
}

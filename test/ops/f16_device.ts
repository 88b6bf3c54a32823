// Devices for the f16 tests, created here rather than by createDevice() so that a test controls
// whether 'shader-f16' is requested: one with it (where the adapter offers it) and one without.
import { create } from "webgpu";
import { afterAll, beforeAll } from "vitest";
import { Device } from "../../src/node.ts";

let gpu: GPU | undefined;

/** A Device on the default adapter, created with 'shader-f16' iff `f16` (null if the adapter
 * lacks the feature and `f16` asks for it). */
export async function deviceWithF16(f16: boolean): Promise<Device | null> {
  gpu ??= create([]) as GPU;
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error("no WebGPU adapter");
  if (f16 && !adapter.features.has("shader-f16")) return null;
  const a = adapter.limits;
  const gpuDevice = await adapter.requestDevice({
    requiredFeatures: f16 ? ["shader-f16"] : [],
    requiredLimits: { maxBufferSize: a.maxBufferSize, maxStorageBufferBindingSize: a.maxStorageBufferBindingSize },
    label: f16 ? "pulmo f16 test" : "pulmo test without f16",
  });
  return new Device(gpuDevice, f16 ? "test device with shader-f16" : "test device without shader-f16");
}

/** One such device per test file (null: the adapter has no shader-f16; tests skip). */
export function useF16Device(f16: boolean): () => Device | null {
  let device: Device | null = null;
  beforeAll(async () => {
    device = await deviceWithF16(f16);
  });
  afterAll(() => device?.destroy());
  return () => device;
}

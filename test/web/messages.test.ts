// The demo page's error messages, from errors the engine really raises.
import { describe, expect, it } from "vitest";
import { createDevice, readNifti, readModelBundle, Tensor, PulmoError } from "../../src/node.ts";
import { explain, NO_WEBGPU } from "../../web/messages.ts";

const caught = async (fn: () => unknown): Promise<unknown> => {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
};

describe("page messages", () => {
  it("a file that is not NIfTI names the file", async () => {
    const e = await caught(() => readNifti(new TextEncoder().encode("hello, this is a text file ".repeat(20))));
    expect(explain(e, "reading", "notes.txt")).toMatch(/^notes\.txt is not a readable NIfTI-1 file \(\.nii or \.nii\.gz\): sizeof_hdr/);
  });

  it("a safetensors file that is not a bundle", async () => {
    const e = await caught(() => readModelBundle(null as any, new Uint8Array(16)));
    expect(explain(e, "segmenting")).toMatch(/^The model bundle cannot be used: not a model bundle/);
  });

  it("a buffer over the device's limits reads as running out of GPU memory", async () => {
    const device = await createDevice({ limits: { maxBufferSize: 1 << 20 } });
    try {
      const e = await caught(() => Tensor.zeros(device, [1, 8, 64, 64, 64]));
      expect(e).toBeInstanceOf(PulmoError);
      expect(explain(e, "segmenting")).toMatch(/^The GPU ran out of memory while segmenting\. .*\n\(.*maxBufferSize/s);
    } finally {
      device.destroy();
    }
  });

  it("no adapter reads as WebGPU unavailable; anything else keeps its message", async () => {
    const { NO_ADAPTER_MESSAGE } = await import("../../src/runtime/device.ts");
    expect(explain(new PulmoError(NO_ADAPTER_MESSAGE), "segmenting")).toMatch(new RegExp(`^${NO_WEBGPU.slice(0, 40)}`));
    expect(explain(new PulmoError("GPU device lost (destroyed: x); create a new device"), "segmenting")).toMatch(/^The GPU device was lost while segmenting/);
    expect(explain(new PulmoError("boom"), "segmenting")).toBe("Error while segmenting: boom");
  });
});

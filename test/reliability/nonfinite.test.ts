// Non-finite values are refused where they enter, naming the tensor and the first bad index: CT
// voxels given to segment(), sliding-window inputs, weights (loadStateDict, loadSafetensors) and
// checkpoint tensors (model and optimizer state). NaN/Inf gradients during training are fit()'s
// GPU guard (test/graph/fit.test.ts).
import { describe, expect, it } from "vitest";
import { Adam, PulmoError, buildModel, checkpointBytes, loadCheckpoint, nn, readNifti, readSafetensors, segment, slidingWindow, writeNifti, writeSafetensors } from "../../src/node.ts";
import { useDevice } from "../helpers.ts";
import { TINY_UNET3D } from "./soak.ts";

describe("non-finite inputs and weights", () => {
  const dev = useDevice();

  it("segment: a CT voxel of NaN or ±Infinity is refused with its index", async () => {
    nn.setInitSeed(1);
    const model = buildModel(dev(), "unet3d", TINY_UNET3D);
    const run = (data: Float32Array) => segment(model, { data, shape: [8, 8, 8] }, { window: { patch: [8, 8, 8] } }).catch((e: unknown) => e);
    for (const [bad, at] of [[Infinity, 5], [-Infinity, 511], [NaN, 0]] as const) {
      const data = new Float32Array(512).fill(-500);
      data[at] = bad;
      const err = await run(data);
      expect(err).toBeInstanceOf(PulmoError);
      expect((err as Error).message).toBe(`segment ct: non-finite value ${bad} at index ${at}`);
    }
    // the first of several is named
    const two = new Float32Array(512);
    two[300] = NaN;
    two[40] = Infinity;
    expect(((await run(two)) as Error).message).toBe("segment ct: non-finite value Infinity at index 40");
    const input = new Float32Array(512);
    input[77] = -Infinity;
    await expect(slidingWindow(model, input, 1, [8, 8, 8], { patch: [8, 8, 8] })).rejects.toThrow("slidingWindow: input: non-finite value -Infinity at index 77");
    model.dispose();
  });

  it("NIfTI: an infinite voxel, stored or from float64 beyond float32, is refused with its index", () => {
    const file = writeNifti({ data: new Float32Array(8).fill(3), shape: [2, 2, 2], spacing: [1, 1, 1] }, { datatype: "float64" });
    const dv = new DataView(file.buffer);
    dv.setFloat64(352 + 8 * 5, 1e300, true);
    expect(() => readNifti(file)).toThrow("nifti: voxel 5 is Infinity (non-finite after scaling to float32)");
    dv.setFloat64(352 + 8 * 2, -Infinity, true);
    expect(() => readNifti(file)).toThrow("nifti: voxel 2 is -Infinity");
  });

  it("weights: loadStateDict and loadSafetensors name the tensor and index", async () => {
    nn.setInitSeed(2);
    const model = buildModel(dev(), "unet3d", TINY_UNET3D);
    const file = readSafetensors(await model.toSafetensors());
    const name = file.names[3]!;
    const tensors = Object.fromEntries(file.names.map((n) => [n, { shape: file.tensors.get(n)!.shape, data: Float32Array.from(file.float32(n)) }]));
    tensors[name]!.data[2] = Infinity;
    expect(() => model.loadSafetensors(writeSafetensors(tensors))).toThrow(`loadStateDict: ${name} has a non-finite value at index 2`);
    const map = new Map(Object.entries(tensors));
    tensors[name]!.data[2] = 0;
    tensors[name]!.data[0] = NaN;
    expect(() => model.loadStateDict(map)).toThrow(`loadStateDict: ${name} has a non-finite value at index 0`);
    model.dispose();
  });

  it("checkpoints: a non-finite optimizer moment is refused with its name before anything is loaded", async () => {
    nn.setInitSeed(3);
    const d = dev();
    const model = buildModel(d, "unet3d", TINY_UNET3D);
    const optimizer = new Adam(model.parameters());
    const file = readSafetensors(await checkpointBytes({ model, optimizer }));
    const moment = file.names.find((n) => n.startsWith("optimizer."))!;
    const tensors = Object.fromEntries(file.names.map((n) => [n, { shape: file.tensors.get(n)!.shape, data: Float32Array.from(file.float32(n)) }]));
    tensors[moment]!.data[4] = NaN;
    const bytes = writeSafetensors(tensors, file.metadata);
    const before = await model.parameters()[0]!.readFloat();
    expect(() => loadCheckpoint(bytes, { model, optimizer })).toThrow(`checkpoint tensor '${moment}': non-finite value NaN at index 4`);
    expect(await model.parameters()[0]!.readFloat()).toEqual(before);
    optimizer.dispose();
    model.dispose();
  });
});

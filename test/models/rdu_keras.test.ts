// Keras HDF5 → RDU state dict (src/models/rdu_keras.ts, weights/keras_h5.ts). The fixtures are the
// golden tiny-preset parameters written in the Keras 2.2.4 layout by scripts/make_keras_fixture.py
// (inverse transforms of MODELS.md §7); converting them back must give the golden param.* exactly.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GOLDEN_MODELS_DIR, useDevice } from "../helpers.ts";
import { goldenParams, loadGolden, paperKeys, relL2 } from "./common.ts";
import { PulmoError, Tensor, tidy, type HostArray } from "../../src/node.ts";
import { noGrad } from "../../src/graph/index.ts";
import { KerasH5Error, checkHdf5Bytes, readKerasH5, weightKind, type KerasWeight } from "../../weights/keras_h5.ts";
import { RDU } from "../../src/models/rdu.ts";
import { fromKerasH5, fromKerasWeights, rduStateShapes } from "../../src/models/rdu_keras.ts";

const FIXTURES = join(import.meta.dirname, "..", "fixtures");
const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));
const { file: golden, meta } = loadGolden("rdu");
const CFG = meta.config;

function expectExactlyGolden(sd: Map<string, HostArray>) {
  const ref = goldenParams(golden);
  expect([...sd.keys()]).toEqual([...ref.keys()]); // same keys, registration order
  for (const [k, r] of ref) {
    const t = sd.get(k)!;
    expect(t.shape, k).toEqual([...r.shape]);
    expect(t.data.length, k).toBe(r.data.length);
    let diff = 0;
    for (let i = 0; i < r.data.length; i++) if (!Object.is(t.data[i], r.data[i])) diff++;
    expect(diff, `${k}: elements differing from the golden param`).toBe(0);
  }
}

describe("rdu Keras HDF5 converter", () => {
  const dev = useDevice();

  it("reads the Keras model.save() layout: 76 layers in layer_names order, 94 weights, Keras shapes", async () => {
    const w = await readKerasH5(fixture("rdu_tiny_keras.h5"));
    expect(w.length).toBe(94); // 92 params/buffers, each ConvLSTM conv split into kernel + recurrent_kernel
    expect(w[0]).toMatchObject({ layer: "conv1_1", name: "conv1_1/kernel:0", shape: [3, 3, 3, 1, 4] });
    expect(new Set(w.map((x) => x.layer)).size).toBe(12 + 1 + 14 + 2 + 3); // convs, final, BNs, LSTMs, ups
    const lstm = w.filter((x) => x.layer === "conv_lst_m2d_1").map((x) => [weightKind(x.name), x.shape]);
    expect(lstm).toEqual([["kernel", [3, 3, 19, 32]], ["recurrent_kernel", [3, 3, 8, 32]], ["bias", [32]]]);
    expect(w.find((x) => x.layer === "time_distributed_1")!.shape).toEqual([2, 2, 8, 8]); // up1 (kH, kW, O, I)
    expect(weightKind("time_distributed_1/up1/kernel:0")).toBe("kernel");
    expect(weightKind("bias")).toBe("bias");
  });

  it("model.save() file → state dict equal to the golden param.* exactly (keys, order, shapes, bits)", async () => {
    expectExactlyGolden(await fromKerasH5(fixture("rdu_tiny_keras.h5"), CFG));
  });

  it("model.save_weights() file (layer groups at the root) converts identically; ArrayBuffer input accepted", async () => {
    const b = fixture("rdu_tiny_keras_weights.h5");
    expectExactlyGolden(await fromKerasH5(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength), CFG));
  });

  it("the converted weights reproduce the golden eval output", async () => {
    const m = new RDU(dev(), CFG);
    try {
      m.loadStateDict(await fromKerasH5(fixture("rdu_tiny_keras.h5"), CFG), { strict: true });
      m.eval();
      const x = Tensor.from(dev(), golden.float32("input"), golden.tensors.get("input")!.shape);
      const y = tidy(dev(), () => noGrad(() => m.forward(x)));
      const out = (await y.read()) as Float32Array;
      const ref = golden.float32("eval.output");
      expect(out.length).toBe(ref.length);
      expect(relL2(out, ref)).toBeLessThan(meta.tol["eval.output"].rel_l2);
      y.dispose();
      x.dispose();
    } finally {
      m.dispose();
    }
  });

  it("rduStateShapes lists the model's own keys and shapes (paper preset: shared/reference/keys/rdu.txt)", () => {
    const keys = paperKeys("rdu");
    expect(rduStateShapes({}).map(([k, s]) => `${k} [${s.join(", ")}]`)).toEqual(keys);
    expect(rduStateShapes(CFG).map(([k]) => k)).toEqual(golden.names.filter((n) => n.startsWith("param.")).map((n) => n.slice(6)));
  });

  describe("reader errors (KerasH5Error, a PulmoError)", () => {
    const rejects = async (bytes: Uint8Array, re: RegExp) => {
      const p = readKerasH5(bytes);
      await expect(p).rejects.toThrow(KerasH5Error);
      await expect(p).rejects.toThrow(re);
    };
    it("not an HDF5 file: empty, text, a safetensors file", async () => {
      await rejects(new Uint8Array(0), /not an HDF5 file.*0 bytes/);
      await rejects(new TextEncoder().encode("hello, this is not HDF5"), /not an HDF5 file/);
      await rejects(new Uint8Array(readFileSync(join(GOLDEN_MODELS_DIR, "rdu.safetensors"))), /not an HDF5 file/);
      expect(() => checkHdf5Bytes(new Uint8Array(3))).toThrow(PulmoError);
    });
    it("truncated files: inside the superblock and after it", async () => {
      const b = fixture("rdu_tiny_keras.h5");
      await rejects(b.subarray(0, 20), /truncated HDF5 file: 20 bytes end inside the superblock/);
      await rejects(b.subarray(0, 4096), new RegExp(`truncated HDF5 file: the superblock says ${b.length} bytes, got 4096`));
      await rejects(b.subarray(0, b.length - 1), /truncated/);
    });
    it("HDF5 without Keras weights, a listed layer without a group, a listed weight without a dataset, float16", async () => {
      await rejects(fixture("keras_bad/not_keras.h5"), /no Keras weights.*layer_names/);
      await rejects(fixture("keras_bad/missing_layer.h5"), /layer 'batch_normalization_1' is listed in layer_names of \/model_weights but has no group/);
      await rejects(fixture("keras_bad/missing_weight.h5"), /weight 'conv1_1\/bias:0' is listed in weight_names of layer 'conv1_1' but is not in the file/);
      await rejects(fixture("keras_bad/float16.h5"), /'conv1_1\/kernel:0' of layer 'conv1_1' has dtype float16; only float32 and float64/);
    });
  });

  describe("converter errors (PulmoError)", () => {
    let weights: KerasWeight[] | undefined;
    const all = async () => (weights ??= await readKerasH5(fixture("rdu_tiny_keras.h5")));
    const without = async (layer: string) => (await all()).filter((w) => w.layer !== layer);

    it("a missing layer", async () => {
      expect(() => fromKerasWeights([], CFG)).toThrow(/missing Keras Conv3D layer\(s\) conv1_1, conv1_2/);
      await expect(async () => fromKerasWeights(await without("conv3_2"), CFG)).rejects.toThrow(/missing Keras Conv3D layer\(s\) conv3_2$/);
      await expect(async () => fromKerasWeights(await without("batch_normalization_9"), CFG)).rejects.toThrow(/expected 14 BatchNormalization \(n_lstm=2\) layers, found 13/);
      await expect(async () => fromKerasWeights(await without("conv_lst_m2d_2"), CFG)).rejects.toThrow(/expected 2 ConvLSTM2D \(n_lstm=2\) layers, found 1/);
      await expect(async () => fromKerasWeights(await without("up2"), CFG)).rejects.toThrow(/expected 3 Conv2DTranspose \(up1..up3\) layers, found 2 \(time_distributed_1, time_distributed_2\)/);
      const noBias = (await all()).filter((w) => w.name !== "final/bias:0");
      expect(() => fromKerasWeights(noBias, CFG)).toThrow(/Keras layer 'final' has no 'bias' weight/);
    });
    it("a config that does not fit the file, and a bad config", async () => {
      const w = await all();
      expect(() => fromKerasWeights(w, { ...CFG, widths: [4, 6, 8, 9] })).toThrow(/'batch_normalization_7\/gamma' gives bn_lstm1.weight shape \[8\], the config needs \[9\]/);
      expect(() => fromKerasWeights(w, { ...CFG, in_channels: 2, input_shape: undefined })).toThrow(/'conv1_1\/kernel' \[3, 3, 3, 1, 4\] gives conv1_1.weight shape \[4, 1, 3, 3, 3\], the config needs \[4, 2, 3, 3, 3\]/);
      expect(() => fromKerasWeights(w, { ...CFG, n_lstm: 3 })).toThrow(/expected 15 BatchNormalization \(n_lstm=3\) layers/);
      expect(() => fromKerasWeights(w, { ...CFG, num_classes: 2 })).toThrow(/final.weight shape \[1, 12, 1, 1, 1\], the config needs \[2, 12, 1, 1, 1\]/);
      await expect(fromKerasH5(fixture("rdu_tiny_keras.h5"), { ...CFG, widths: [4, 6] })).rejects.toThrow(/rdu config: widths/);
    });
    it("an unexpected layer or weight", async () => {
      const w = await all();
      const extraLayer = [...w, { layer: "dense_1", name: "dense_1/kernel:0", shape: [2, 2], data: new Float32Array(4) }];
      expect(() => fromKerasWeights(extraLayer, CFG)).toThrow(/unexpected Keras layer 'dense_1'/);
      const extraWeight = w.flatMap((x) => (x.name === "final/bias:0" ? [x, { ...x, name: "final/scale:0" }] : [x]));
      expect(() => fromKerasWeights(extraWeight, CFG)).toThrow(/Keras layer 'final' has unexpected weight\(s\) scale/);
    });
  });
});

import { describe, expect, it } from "vitest";
import { modelGoldenTest, useDevice } from "../helpers.ts";
import { rng } from "../random.ts";
import { PulmoError, Tensor, tidy } from "../../src/node.ts";
import { backward, conv2d, noGrad, sum } from "../../src/graph/index.ts";
import { badConfig, expectForwardRejects, expectGoldenCounts, keysOf, loadGolden, paperKeys, withModel, zerosForwardShape } from "./common.ts";
import {
  RESNET34_FPN_PAPER, ResNet34Fpn, factory, forwardMacs, fromTorchvisionResnet34, parameterCount, resolveConfig,
} from "../../src/models/resnet34_fpn.ts";

const NAME = "resnet34_fpn";
const { meta } = loadGolden(NAME);
/** shared/reference/models.py PRESETS.resnet34_fpn.tiny2 (batch 2) */
const TINY2 = {
  ...RESNET34_FPN_PAPER,
  widths: [6, 6, 10, 14, 20], blocks: [1, 2, 1, 1], lat_channels: 5, fuse_channels: 8, out_channels: 4, input_shape: [2, 1, 64, 96],
};

/** A torchvision-style resnet state dict (keys and order of torchvision.models.resnet, 3-channel
 * conv1, fc head) at small widths, filled with seeded random values. */
function torchvisionStateDict(widths: number[], blocks: number[], classes = 5): Map<string, { data: Float32Array; shape: number[] }> {
  const r = rng(1234);
  const sd = new Map<string, { data: Float32Array; shape: number[] }>();
  const put = (k: string, shape: number[]) =>
    sd.set(k, { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1), shape });
  const bn = (p: string, c: number) => {
    for (const s of ["weight", "bias", "running_mean", "running_var"]) put(`${p}.${s}`, [c]);
    sd.set(`${p}.num_batches_tracked`, { data: new Float32Array([0]), shape: [] });
  };
  put("conv1.weight", [widths[0]!, 3, 7, 7]);
  bn("bn1", widths[0]!);
  let cin = widths[0]!;
  for (let i = 0; i < 4; i++) {
    const c = widths[i + 1]!;
    for (let b = 0; b < blocks[i]!; b++) {
      const p = `layer${i + 1}.${b}`;
      put(`${p}.conv1.weight`, [c, b === 0 ? cin : c, 3, 3]);
      bn(`${p}.bn1`, c);
      put(`${p}.conv2.weight`, [c, c, 3, 3]);
      bn(`${p}.bn2`, c);
      if (b === 0 && (i > 0 || cin !== c)) {
        put(`${p}.downsample.0.weight`, [c, cin, 1, 1]);
        bn(`${p}.downsample.1`, c);
      }
    }
    cin = c;
  }
  put("fc.weight", [classes, cin]);
  put("fc.bias", [classes]);
  return sd;
}

describe(NAME, () => {
  modelGoldenTest(NAME);

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset (encoder 21,278,400 + decoder 830,305)", () => {
    expect(parameterCount(meta.config)).toBe(meta.param_count);
    expect(parameterCount(RESNET34_FPN_PAPER)).toBe(22_108_705);
    expect(parameterCount({})).toBe(22_108_705); // keys left out take the paper values
  });

  it("forwardMacs matches the golden metadata and MODELS.md (36.9 GMAC at 512²)", () => {
    expectGoldenCounts(meta, parameterCount, forwardMacs);
    expect(Math.round(forwardMacs(RESNET34_FPN_PAPER) / 1e8) / 10).toBe(36.9);
    expect(forwardMacs(RESNET34_FPN_PAPER, [2, 1, 512, 512])).toBe(2 * forwardMacs(RESNET34_FPN_PAPER, [1, 1, 512, 512]));
  });

  it("state-dict keys, order and shapes equal the paper key list (built at the paper preset)", () => {
    const expected = paperKeys(NAME, [254, 212]); // 42 BatchNorms
    // 22 M parameters (88 MB), built in about a second on the software driver.
    withModel(factory(dev(), RESNET34_FPN_PAPER), (m) => {
      expect(keysOf(m)).toEqual(expected);
      expect(m.parameterCount()).toBe(22_108_705);
      const enc = [...m.namedParameters()].filter(([k]) => k.startsWith("encoder.")).reduce((a, [, t]) => a + t.size, 0);
      expect(enc).toBe(21_278_400);
    });
  });

  it("tiny2 (batch 2): counts and output shape", async () => {
    await withModel(factory(dev(), TINY2), async (m) => {
      expect(m.parameterCount()).toBe(parameterCount(TINY2));
      expect(await zerosForwardShape(dev(), m, TINY2.input_shape)).toEqual([2, 1, 64, 96]);
    });
  });

  it("training with Dropout2d active: gradients reach the encoder; cls weight gradient is 0 or 2× per channel", async () => {
    const cfg = { ...TINY2, dropout: 0.5, input_shape: [1, 1, 64, 64] };
    const m = new ResNet34Fpn(dev(), cfg);
    try {
      m.train();
      const r = rng(7);
      const x = Tensor.from(dev(), Float32Array.from({ length: 64 * 64 }, () => r()), [1, 1, 64, 64]);
      // loss = sum(logits): d loss / d cls.weight[c] = sum over pixels of the (dropped, scaled) channel c
      const clsGrad = async (enabled: boolean) => {
        m.drop.enabled = enabled;
        for (const p of m.parameters()) {
          p.grad?.dispose();
          p.grad = null as any;
        }
        tidy(dev(), () => {
          backward(sum(m.forward(x)));
          return [];
        });
        expect(m.encoder.conv1.weight.grad).toBeTruthy();
        return (await m.cls.weight.grad!.read()) as Float32Array;
      };
      const g0 = await clsGrad(false);
      const g = await clsGrad(true);
      expect(g.length).toBe(4);
      let dropped = 0;
      for (let c = 0; c < 4; c++) {
        expect(g0[c]).not.toBe(0);
        if (g[c] === 0) dropped++;
        else expect(g[c]! / g0[c]!).toBeCloseTo(2, 4);
      }
      expect(dropped).toBeGreaterThan(0); // seeded generator: this draw drops at least one channel
      expect(dropped).toBeLessThan(4);
      x.dispose();
    } finally {
      m.dispose();
    }
  });

  it("fromTorchvisionResnet34: torchvision keys → encoder.*, fc dropped, conv1 summed over RGB", async () => {
    const widths = [4, 4, 6, 8, 10], blocks = [2, 1, 2, 1];
    const tv = torchvisionStateDict(widths, blocks);
    const conv = fromTorchvisionResnet34(tv);
    expect([...conv.keys()].some((k) => k.includes("fc"))).toBe(false);
    expect(conv.size).toBe(tv.size - 2);
    for (const [k, v] of tv) if (!k.startsWith("fc.") && k !== "conv1.weight") expect(conv.get(`encoder.${k}`)).toEqual(v);
    const w1 = conv.get("encoder.conv1.weight")!;
    expect(w1.shape).toEqual([4, 1, 7, 7]);
    const w3 = tv.get("conv1.weight")!.data;
    for (const i of [0, 48, 49, 100, 195]) {
      const o = Math.floor(i / 49), j = i % 49;
      expect(w1.data[i]).toBeCloseTo(w3[o * 147 + j]! + w3[o * 147 + 49 + j]! + w3[o * 147 + 98 + j]!, 6);
    }

    // loads into the model: only the decoder is left missing; key order matches the module's
    const cfg = { ...RESNET34_FPN_PAPER, widths, blocks, lat_channels: 3, fuse_channels: 4, out_channels: 2 };
    const m = factory(dev(), cfg);
    try {
      const rep = m.loadStateDict(conv, { strict: false });
      expect(rep.unexpected).toEqual([]);
      expect(rep.missing.every((k) => /^(lat[345]|fuse[12]|out_conv|cls)\./.test(k))).toBe(true);
      expect(rep.missing.length).toBe(3 * 5 + 2 * 5 + 5 + 2);
      const encKeys = [...m.stateDict().keys()].filter((k) => k.startsWith("encoder."));
      expect([...conv.keys()].filter((k) => !k.endsWith("num_batches_tracked"))).toEqual(encKeys);
      expect(await m.stateDict().get("encoder.conv1.weight")!.read()).toEqual(w1.data);
    } finally {
      m.dispose();
    }

    // a grey image through the summed conv1 equals the RGB conv1 on that image copied to 3 channels
    const r = rng(3);
    const grey = Float32Array.from({ length: 16 * 16 }, () => r());
    const rgb = new Float32Array(3 * grey.length);
    for (let c = 0; c < 3; c++) rgb.set(grey, c * grey.length);
    const [a, b] = tidy(dev(), () =>
      noGrad(() => [
        conv2d(Tensor.from(dev(), grey, [1, 1, 16, 16]), Tensor.from(dev(), w1.data, [4, 1, 7, 7]), null, { stride: 2, padding: 3 }),
        conv2d(Tensor.from(dev(), rgb, [1, 3, 16, 16]), Tensor.from(dev(), w3, [4, 3, 7, 7]), null, { stride: 2, padding: 3 }),
      ]),
    );
    const av = await a!.read(), bv = await b!.read();
    for (let i = 0; i < av.length; i++) expect(av[i]).toBeCloseTo(bv[i]!, 4);
    a!.dispose();
    b!.dispose();

    expect(() => fromTorchvisionResnet34(new Map([...tv, ["layer5.0.conv1.weight", { data: new Float32Array(1), shape: [1] }]]))).toThrow(/unexpected key/);
    const one = new Map(tv);
    one.set("conv1.weight", { data: new Float32Array(4 * 49), shape: [4, 1, 7, 7] });
    expect(() => fromTorchvisionResnet34(one)).toThrow(/\[O, 3, kH, kW\]/);
    const none = new Map(tv);
    none.delete("conv1.weight");
    expect(() => fromTorchvisionResnet34(none)).toThrow(PulmoError);
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const bad = badConfig((c) => factory(dev(), c), meta.config);
    expect(bad({ widths: [8, 8, 12, 16] })).toThrow(/widths/);
    expect(bad({ blocks: [2, 1, 0, 1] })).toThrow(/blocks/);
    expect(bad({ dropout: 1 })).toThrow(/dropout/);
    expect(bad({ lat_channels: 0 })).toThrow(/lat_channels/);
    expect(bad({ in_channels: 1.5 })).toThrow(PulmoError);
    expect(bad({ input_shape: [1, 3, 128, 96] })).toThrow(/channels/);
    expect(bad({ input_shape: [1, 1, 128, 100] })).toThrow(/multiples of 32/);
    expect(bad({ typo_key: 1 })).toThrow(/unknown key/);
    expect(() => factory(dev(), null as any)).toThrow(PulmoError);
    expect(() => forwardMacs(RESNET34_FPN_PAPER, [1, 1, 512, 500])).toThrow(/multiples of 32/);
    const { input_shape: _, ...paperNoShape } = RESNET34_FPN_PAPER;
    expect(resolveConfig({ num_classes: 2 })).toEqual({ ...paperNoShape, num_classes: 2 });
    expect(resolveConfig(meta.config)).toEqual(meta.config);
    withModel(factory(dev(), meta.config), (m) => expectForwardRejects(dev(), m, [[1, 1, 128, 80], [1, 2, 128, 96], [1, 128, 96], [1, 1, 1, 128, 96]]));
  });
});

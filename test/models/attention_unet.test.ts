import { describe, expect, it } from "vitest";
import { modelGoldenTest, useDevice } from "../helpers.ts";
import { PulmoError, Tensor } from "../../src/node.ts";
import { Dropout } from "../../src/graph/nn.ts";
import { badConfig, expectForwardAndGrads, expectForwardRejects, expectGoldenCounts, keysOf, loadGolden, paperKeys, withModel } from "./common.ts";
import { AttentionUnet, factory, forwardMacs, parameterCount } from "../../src/models/attention_unet.ts";

const { meta } = loadGolden("attention_unet");
// shared/reference/models.py PRESETS.attention_unet
const PAPER = { in_channels: 1, num_classes: 2, channels: [16, 32, 64, 128, 256], strides: [2, 2, 2, 2], kernel_size: 3, up_kernel_size: 3, dropout: 0.0 };
const TINY2 = { ...PAPER, channels: [6, 8, 12], strides: [2, 2], input_shape: [2, 1, 8, 20, 12] };

describe("attention_unet", () => {
  modelGoldenTest("attention_unet");

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset", () => {
    expectGoldenCounts(meta, parameterCount, forwardMacs);
    expect(parameterCount(PAPER)).toBe(5_909_130);
  });

  it("forwardMacs matches the golden metadata and the README (82.7 GFLOP at 96³)", () => {
    expect(Math.round((2 * forwardMacs(PAPER, [1, 1, 96, 96, 96])) / 1e8) / 10).toBe(82.7);
    expect(forwardMacs(PAPER, [2, 1, 96, 96, 96])).toBe(2 * forwardMacs(PAPER, [1, 1, 96, 96, 96]));
  });

  it("state-dict keys, order and shapes at the paper preset equal the reference key list", () => {
    // 5.9 M parameters: cheap enough to build for real
    withModel(factory(dev(), PAPER), (m) => {
      const expected = paperKeys("attention_unet");
      expect(expected.length).toBe(170);
      expect(keysOf(m)).toEqual(expected);
      expect(m.parameterCount()).toBe(5_909_130);
    });
  });

  it("a second config (3 levels, odd spatial extents, batch 2) builds, counts and trains", async () => {
    const m = new AttentionUnet(dev(), TINY2);
    try {
      expect(m.parameterCount()).toBe(parameterCount(TINY2));
      expect([...m.stateDict().keys()]).toContain("model.1.submodule.1.submodule.conv.1.adn.N.running_var"); // bottom ConvBlock
      expect(m.stateDict().get("model.1.attention.W_g.0.conv.weight")!.shape).toEqual([3, 6, 1, 1, 1]); // F_int = 6 / 2
      const x = Tensor.from(dev(), Float32Array.from({ length: 2 * 8 * 20 * 12 }, (_, i) => Math.cos(i * 0.29)), TINY2.input_shape);
      await expectForwardAndGrads(dev(), m, x, [2, 2, 8, 20, 12]);
      x.dispose();
    } finally {
      m.dispose();
    }
  });

  it("dropout adds element-wise Dropout layers (conv blocks and merges, not the up-convs) without new keys", () => {
    const a = factory(dev(), meta.config);
    const b = factory(dev(), { ...meta.config, dropout: 0.2 });
    try {
      expect([...b.stateDict().keys()]).toEqual([...a.stateDict().keys()]);
      const drops = [...b.namedChildren()].filter(([, c]) => c instanceof Dropout).map(([k]) => k);
      expect(drops).toContain("model.0.conv.0.adn.D");
      expect(drops).toContain("model.1.merge.adn.D");
      expect(drops.some((k) => k.includes("upconv"))).toBe(false);
      expect([...a.namedChildren()].some(([, c]) => c instanceof Dropout)).toBe(false);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const bad = badConfig((c) => factory(dev(), c), meta.config);
    expect(bad({ strides: [2, 2, 2, 2] })).toThrow(/strides/);
    expect(bad({ channels: [4] })).toThrow(PulmoError);
    expect(bad({ up_kernel_size: 2 })).toThrow(/odd/);
    expect(bad({ dropout: -0.1 })).toThrow(PulmoError);
    expect(bad({ num_classes: 1.5 })).toThrow(PulmoError);
    expect(bad({ num_res_units: 2 })).toThrow(/unknown key/);
    expect(() => parameterCount({ ...PAPER, strides: [2, 0, 2, 2] })).toThrow(PulmoError);
    expect(() => forwardMacs(PAPER, [1, 1, 96, 96])).toThrow(PulmoError);
    withModel(factory(dev(), meta.config), (m) => expectForwardRejects(dev(), m, [[1, 1, 16, 24, 36], [1, 3, 16, 24, 32], [1, 16, 24, 32]]));
  });
});

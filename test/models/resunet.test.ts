import { describe, expect, it } from "vitest";
import { modelGoldenTest, useDevice } from "../helpers.ts";
import { PulmoError, Tensor } from "../../src/node.ts";
import { Dropout } from "../../src/graph/nn.ts";
import { badConfig, expectForwardAndGrads, expectForwardRejects, expectGoldenCounts, keysOf, loadGolden, paperKeys, withModel } from "./common.ts";
import { ResUNet, factory, forwardMacs, parameterCount } from "../../src/models/resunet.ts";

const { meta } = loadGolden("resunet");
// shared/reference/models.py PRESETS.resunet
const PAPER = { in_channels: 1, num_classes: 2, channels: [16, 32, 64, 128, 256], strides: [2, 2, 2, 2], kernel_size: 3, up_kernel_size: 3, num_res_units: 2, dropout: 0.0 };
const TINY2 = { ...PAPER, channels: [5, 7, 9], strides: [2, 2], num_res_units: 3, input_shape: [2, 1, 12, 16, 20] };

describe("resunet", () => {
  modelGoldenTest("resunet");

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset", () => {
    expectGoldenCounts(meta, parameterCount, forwardMacs);
    expect(parameterCount(PAPER)).toBe(4_808_917);
  });

  it("forwardMacs matches the golden metadata and the README (10.2 GFLOP at 96³)", () => {
    expect(Math.round((2 * forwardMacs(PAPER, [1, 1, 96, 96, 96])) / 1e8) / 10).toBe(10.2);
    expect(forwardMacs(PAPER, [2, 1, 96, 96, 96])).toBe(2 * forwardMacs(PAPER, [1, 1, 96, 96, 96]));
  });

  it("state-dict keys, order and shapes at the paper preset equal the reference key list", () => {
    // 4.8 M parameters: cheap enough to build for real
    withModel(factory(dev(), PAPER), (m) => {
      const expected = paperKeys("resunet");
      expect(expected.length).toBe(131);
      expect(keysOf(m)).toEqual(expected);
      expect(m.parameterCount()).toBe(4_808_917);
    });
  });

  it("a second config (3 levels, 3 residual subunits, batch 2) builds, counts and trains", async () => {
    const m = new ResUNet(dev(), TINY2);
    try {
      expect(m.parameterCount()).toBe(parameterCount(TINY2));
      expect([...m.stateDict().keys()]).toContain("model.0.conv.unit2.adn.A.weight");
      expect([...m.stateDict().keys()]).toContain("model.1.submodule.1.submodule.residual.weight"); // bottom 7 → 9: 1³ conv
      const x = Tensor.from(dev(), Float32Array.from({ length: 2 * 12 * 16 * 20 }, (_, i) => Math.sin(i * 0.37)), TINY2.input_shape);
      await expectForwardAndGrads(dev(), m, x, [2, 2, 12, 16, 20]);
      x.dispose();
    } finally {
      m.dispose();
    }
  });

  it("dropout adds element-wise Dropout layers without new state-dict keys", () => {
    const a = factory(dev(), meta.config);
    const b = factory(dev(), { ...meta.config, dropout: 0.2 });
    try {
      expect([...b.stateDict().keys()]).toEqual([...a.stateDict().keys()]);
      const drops = [...b.namedChildren()].filter(([, c]) => c instanceof Dropout);
      expect(drops.length).toBeGreaterThan(0);
      expect(drops.every(([k]) => k.endsWith(".adn.D"))).toBe(true);
      expect([...a.namedChildren()].some(([, c]) => c instanceof Dropout)).toBe(false);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const bad = badConfig((c) => factory(dev(), c), meta.config);
    expect(bad({ num_res_units: 0 })).toThrow(/num_res_units/);
    expect(bad({ strides: [2, 2] })).toThrow(/strides/);
    expect(bad({ channels: [4] })).toThrow(PulmoError);
    expect(bad({ kernel_size: 4 })).toThrow(/odd/);
    expect(bad({ dropout: 1 })).toThrow(PulmoError);
    expect(bad({ in_channels: 0 })).toThrow(PulmoError);
    expect(bad({ typo_key: 1 })).toThrow(/unknown key/);
    expect(() => parameterCount({ ...PAPER, channels: [16, -1] })).toThrow(PulmoError);
    expect(() => forwardMacs(PAPER, [1, 1, 96, 96, 100])).toThrow(PulmoError);
    withModel(factory(dev(), meta.config), (m) => expectForwardRejects(dev(), m, [[1, 1, 16, 24, 30], [1, 2, 16, 24, 32], [16, 24, 32]]));
  });
});

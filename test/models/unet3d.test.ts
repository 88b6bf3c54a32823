import { describe, expect, it } from "vitest";
import { modelGoldenTest, useDevice } from "../helpers.ts";
import { PulmoError } from "../../src/node.ts";
import {
  badConfig, expectForwardRejects, expectGoldenCounts, expectGoldenSecondOfTwo, keysOf, loadGolden, paperKeys, perturbed, specLines, withModel,
  zerosForwardShape,
} from "./common.ts";
import { UNet3d, factory, forwardMacs, parameterCount, resolveConfig, stateDictKeys } from "../../src/models/unet3d.ts";

const NAME = "unet3d";
const { file, meta } = loadGolden(NAME);
/** shared/reference/models.py PRESETS.unet3d */
const PAPER = {
  dims: 3, in_channels: 1, num_classes: 2, enc: [[32, 64], [64, 128], [128, 256], [256, 512]],
  dec: [[256, 256], [128, 128], [64, 64]], up_kernel: 2, up_keep_channels: true, up_bias: false, input_shape: [1, 1, 96, 96, 96],
};
const TINY2 = { ...PAPER, enc: [[3, 6], [6, 10], [10, 14], [14, 20]], dec: [[12, 10], [8, 8], [6, 5]], input_shape: [1, 1, 16, 24, 16] };

describe(NAME, () => {
  modelGoldenTest(NAME);

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset", () => {
    expect(parameterCount(meta.config)).toBe(meta.param_count);
    expect(parameterCount(PAPER)).toBe(19_070_498);
    expect(parameterCount({})).toBe(19_070_498); // keys left out take the paper values
  });

  it("forwardMacs matches the golden metadata and MODELS.md (824.3 GMAC at 96³)", () => {
    expectGoldenCounts(meta, parameterCount, forwardMacs);
    expect(Math.round(forwardMacs(PAPER) / 1e8) / 10).toBe(824.3);
    expect(forwardMacs(PAPER, [2, 1, 96, 96, 96])).toBe(2 * forwardMacs(PAPER, [1, 1, 96, 96, 96]));
  });

  it("state-dict keys, order and shapes equal the paper key list (built at the paper preset)", () => {
    const expected = paperKeys(NAME, [89, 75]); // 14 BatchNorms
    expect(specLines(stateDictKeys(PAPER))).toEqual(expected);
    // 19 M parameters (76 MB): cheap enough to build once.
    withModel(factory(dev(), PAPER), (m) => {
      expect(keysOf(m)).toEqual(expected);
      expect(m.parameterCount()).toBe(19_070_498);
    });
  });

  it("the module matches the config-only key list and counts at other configs (tiny, tiny2)", () => {
    for (const cfg of [meta.config, TINY2]) {
      withModel(factory(dev(), cfg), (m) => {
        expect(keysOf(m)).toEqual(specLines(stateDictKeys(cfg)));
        expect(m.parameterCount()).toBe(parameterCount(cfg));
      });
    }
    const withBias = { ...meta.config, up_bias: true, up_keep_channels: false, up_kernel: 3 };
    withModel(factory(dev(), withBias), (m) => {
      expect(m.stateDict().get("up.0.weight")!.shape).toEqual([16, 10, 3, 3, 3]);
      expect(m.stateDict().get("up.0.bias")!.shape).toEqual([10]);
      expect(m.parameterCount()).toBe(parameterCount(withBias));
    });
  });

  it("batch of 2 in eval mode: the golden sample's output is unchanged; tiny2 output shape", async () => {
    await withModel(new UNet3d(dev(), meta.config), (m) => expectGoldenSecondOfTwo(dev(), file, m, meta.config.num_classes, perturbed));
    await withModel(factory(dev(), TINY2), async (m) => expect(await zerosForwardShape(dev(), m, TINY2.input_shape)).toEqual([1, 2, 16, 24, 16]));
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const bad = badConfig((c) => factory(dev(), c), meta.config);
    expect(bad({ dims: 2 })).toThrow(PulmoError);
    expect(bad({ dec: [[10, 8]] })).toThrow(/dec needs/);
    expect(bad({ enc: [[4, 6], [6, 0], [10, 16]] })).toThrow(PulmoError);
    expect(bad({ enc: [] })).toThrow(PulmoError);
    expect(bad({ up_kernel: 4 })).toThrow(/up_kernel/);
    expect(bad({ up_bias: 1 })).toThrow(/up_bias/);
    expect(bad({ in_channels: 1.5 })).toThrow(PulmoError);
    expect(bad({ input_shape: [1, 2, 16, 24, 32] })).toThrow(/channels/);
    expect(bad({ typo_key: 1 })).toThrow(/unknown key/);
    expect(() => factory(dev(), null as any)).toThrow(PulmoError);
    expect(() => parameterCount({ enc: [[4, 6]], dec: [[1, 1]] })).toThrow(PulmoError);
    expect(() => forwardMacs(PAPER, [1, 1, 96, 96, 100])).toThrow(/multiples of 8/);
    expect(() => forwardMacs(PAPER, [1, 2, 96, 96, 96])).toThrow(PulmoError);
    const { input_shape: _, ...paperNoShape } = PAPER;
    expect(resolveConfig({ num_classes: 3 })).toEqual({ ...paperNoShape, num_classes: 3 });
    expect(resolveConfig(meta.config)).toEqual(meta.config);
    withModel(factory(dev(), meta.config), (m) => expectForwardRejects(dev(), m, [[1, 1, 16, 24, 30], [1, 2, 16, 24, 32], [1, 16, 24, 32], [1, 1, 1, 16, 24, 32]]));
  });
});

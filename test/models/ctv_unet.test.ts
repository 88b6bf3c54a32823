import { describe, expect, it } from "vitest";
import { modelGoldenTest, useDevice } from "../helpers.ts";
import { PulmoError } from "../../src/node.ts";
import {
  badConfig, expectForwardRejects, expectGoldenCounts, expectGoldenSecondOfTwo, keysOf, loadGolden, paperKeys, specLines, withModel,
  zerosForwardShape,
} from "./common.ts";
import { CtvUNet, factory, forwardMacs, parameterCount, resolveConfig, stateDictKeys } from "../../src/models/ctv_unet.ts";

const NAME = "ctv_unet";
const { file, meta } = loadGolden(NAME);
/** shared/reference/models.py PRESETS.ctv_unet */
const PAPER = {
  dims: 3, in_channels: 2, num_classes: 1, enc: [[32, 32], [64, 64], [128, 128], [256, 256], [512, 512]],
  dec: [[256, 256], [128, 128], [64, 64], [32, 32]], up_kernel: 3, up_keep_channels: false, up_bias: false,
  input_shape: [1, 2, 128, 288, 416],
};
const TINY2 = { ...PAPER, enc: [[3, 3], [5, 5], [7, 7], [9, 9]], dec: [[7, 7], [5, 5], [3, 3]], input_shape: [1, 2, 24, 16, 32] };

describe(NAME, () => {
  modelGoldenTest(NAME);

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset", () => {
    expect(parameterCount(meta.config)).toBe(meta.param_count);
    expect(parameterCount(PAPER)).toBe(25_886_177);
    expect(parameterCount({})).toBe(25_886_177); // keys left out take the paper values
  });

  it("forwardMacs matches the golden metadata and MODELS.md (3630.9 GMAC at 128×288×416, 209.5 at 96³)", () => {
    expectGoldenCounts(meta, parameterCount, forwardMacs);
    expect(Math.round(forwardMacs(PAPER) / 1e8) / 10).toBe(3630.9);
    expect(Math.round(forwardMacs({}) / 1e8) / 10).toBe(3630.9);
    expect(Math.round(forwardMacs(PAPER, [1, 2, 96, 96, 96]) / 1e8) / 10).toBe(209.5);
    expect(forwardMacs(PAPER, [2, 2, 96, 96, 96])).toBe(2 * forwardMacs(PAPER, [1, 2, 96, 96, 96]));
  });

  it("state-dict keys, order and shapes equal the paper key list (built at the paper preset)", () => {
    const expected = paperKeys(NAME, [114, 96]); // 18 BatchNorms
    expect(specLines(stateDictKeys(PAPER))).toEqual(expected);
    // 26 M parameters (104 MB): cheap enough to build once.
    withModel(factory(dev(), PAPER), (m) => {
      expect(keysOf(m)).toEqual(expected);
      expect(m.parameterCount()).toBe(25_886_177);
    });
  });

  it("the module matches the config-only key list and counts at other configs (tiny, tiny2)", () => {
    for (const cfg of [meta.config, TINY2]) {
      withModel(factory(dev(), cfg), (m) => {
        expect(keysOf(m)).toEqual(specLines(stateDictKeys(cfg)));
        expect(m.parameterCount()).toBe(parameterCount(cfg));
      });
    }
    const withBias = { ...meta.config, up_bias: true, up_keep_channels: true, up_kernel: 2 };
    withModel(factory(dev(), withBias), (m) => {
      expect(m.stateDict().get("up.0.weight")!.shape).toEqual([16, 16, 2, 2, 2]);
      expect(m.stateDict().get("up.0.bias")!.shape).toEqual([16]);
      expect(m.stateDict().get("dec.0.conv1.weight")!.shape).toEqual([8, 24, 3, 3, 3]);
      expect(m.parameterCount()).toBe(parameterCount(withBias));
    });
  });

  it("batch of 2 in eval mode: the golden sample's output is unchanged; tiny2 output shape", async () => {
    const inverted = (x: Float32Array) => x.map((v) => 1 - v); // another sample first: CT and mask inverted
    await withModel(new CtvUNet(dev(), meta.config), (m) => expectGoldenSecondOfTwo(dev(), file, m, meta.config.num_classes, inverted));
    await withModel(factory(dev(), TINY2), async (m) => expect(await zerosForwardShape(dev(), m, TINY2.input_shape)).toEqual([1, 1, 24, 16, 32]));
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const bad = badConfig((c) => factory(dev(), c), meta.config);
    expect(bad({ dims: 2 })).toThrow(PulmoError);
    expect(bad({ dec: [[8, 8]] })).toThrow(/dec needs/);
    expect(bad({ enc: [[4, 4], [8, 0], [16, 16]] })).toThrow(PulmoError);
    expect(bad({ enc: [] })).toThrow(PulmoError);
    expect(bad({ up_kernel: 4 })).toThrow(/up_kernel/);
    expect(bad({ up_bias: 1 })).toThrow(/up_bias/);
    expect(bad({ in_channels: 1.5 })).toThrow(PulmoError);
    expect(bad({ input_shape: [1, 1, 16, 24, 32] })).toThrow(/channels/);
    expect(bad({ typo_key: 1 })).toThrow(/unknown key/);
    expect(() => factory(dev(), null as any)).toThrow(PulmoError);
    expect(() => parameterCount({ enc: [[4, 6]], dec: [[1, 1]] })).toThrow(PulmoError);
    expect(() => forwardMacs(PAPER, [1, 2, 96, 96, 88])).toThrow(/multiples of 16/);
    expect(() => forwardMacs(PAPER, [1, 1, 96, 96, 96])).toThrow(PulmoError);
    const { input_shape: _, ...paperNoShape } = PAPER;
    expect(resolveConfig({ num_classes: 3 })).toEqual({ ...paperNoShape, num_classes: 3 });
    expect(resolveConfig(meta.config)).toEqual(meta.config);
    withModel(factory(dev(), meta.config), (m) => expectForwardRejects(dev(), m, [[1, 2, 16, 24, 30], [1, 1, 16, 24, 32], [2, 16, 24, 32], [1, 1, 2, 16, 24, 32]]));
  });
});

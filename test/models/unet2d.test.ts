import { describe, expect, it } from "vitest";
import { modelGoldenTest, useDevice } from "../helpers.ts";
import { PulmoError } from "../../src/node.ts";
import { badConfig, expectForwardRejects, expectGoldenCounts, expectGoldenSecondOfTwo, keysOf, loadGolden, paperKeys, perturbed, withModel, zerosForwardShape } from "./common.ts";
import { UNET2D_PAPER, UNet2d, factory, forwardMacs, parameterCount, resolveConfig } from "../../src/models/unet2d.ts";

const NAME = "unet2d";
const { file, meta } = loadGolden(NAME);
/** shared/reference/models.py PRESETS.unet2d.tiny2 (5 levels, mid != out, batch 2) */
const TINY2 = {
  ...UNET2D_PAPER,
  enc: [[3, 5], [6, 7], [9, 11], [12, 14], [16, 18]],
  dec: [[10, 12], [8, 9], [6, 6], [4, 4]],
  input_shape: [2, 1, 64, 48],
};


describe(NAME, () => {
  modelGoldenTest(NAME);

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset", () => {
    expect(parameterCount(meta.config)).toBe(meta.param_count);
    expect(parameterCount(UNET2D_PAPER)).toBe(31_036_481);
    expect(parameterCount({})).toBe(31_036_481); // keys left out take the paper values
  });

  it("forwardMacs matches the golden metadata and MODELS.md (192.4 GMAC at 512²)", () => {
    expectGoldenCounts(meta, parameterCount, forwardMacs);
    expect(Math.round(forwardMacs(UNET2D_PAPER) / 1e8) / 10).toBe(192.4);
    expect(forwardMacs(UNET2D_PAPER, [2, 1, 512, 512])).toBe(2 * forwardMacs(UNET2D_PAPER, [1, 1, 512, 512]));
  });

  it("state-dict keys, order and shapes equal the paper key list (built at the paper preset)", () => {
    const expected = paperKeys(NAME, [118, 100]); // 18 BatchNorms
    // 31 M parameters (124 MB), built in about a second on the software driver.
    withModel(factory(dev(), UNET2D_PAPER), (m) => {
      expect(keysOf(m)).toEqual(expected);
      expect(m.parameterCount()).toBe(31_036_481);
    });
  });

  it("builds other configs (tiny2, up_kernel 3, up_keep_channels) with matching counts; tiny2 forward shape", async () => {
    for (const cfg of [TINY2, { ...meta.config, up_kernel: 3, up_keep_channels: true, up_bias: false }]) {
      withModel(factory(dev(), cfg), (m) => {
        expect(m.parameterCount()).toBe(parameterCount(cfg));
        if (cfg.up_kernel === 3) {
          expect(m.stateDict().get("up.0.weight")!.shape).toEqual([32, 32, 3, 3]);
          expect(m.stateDict().has("up.0.bias")).toBe(false);
          expect(m.stateDict().get("dec.0.conv1.weight")!.shape).toEqual([16, 48, 3, 3]);
        }
      });
    }
    await withModel(factory(dev(), TINY2), async (m) => expect(await zerosForwardShape(dev(), m, TINY2.input_shape)).toEqual([2, 1, 64, 48]));
  });

  it("batch of 2 in eval mode: the golden sample's output is unchanged", async () => {
    await withModel(new UNet2d(dev(), meta.config), (m) => expectGoldenSecondOfTwo(dev(), file, m, 1, perturbed));
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const bad = badConfig((c) => factory(dev(), c), meta.config);
    expect(bad({ dims: 3 })).toThrow(/dims must be 2/);
    expect(bad({ dec: [[16, 16]] })).toThrow(/dec needs/);
    expect(bad({ enc: [[4, 4], [8, 0], [16, 16], [32, 32]] })).toThrow(PulmoError);
    expect(bad({ enc: [] })).toThrow(PulmoError);
    expect(bad({ up_kernel: 4 })).toThrow(/up_kernel/);
    expect(bad({ up_bias: 1 })).toThrow(/up_bias/);
    expect(bad({ in_channels: 1.5 })).toThrow(PulmoError);
    expect(bad({ input_shape: [1, 2, 64, 96] })).toThrow(/channels/);
    expect(bad({ input_shape: [1, 1, 64, 100] })).toThrow(/multiples of 8/);
    expect(bad({ typo_key: 1 })).toThrow(/unknown key/);
    expect(() => factory(dev(), null as any)).toThrow(PulmoError);
    expect(() => forwardMacs(UNET2D_PAPER, [1, 1, 512, 500])).toThrow(/multiples of 16/);
    expect(() => forwardMacs(UNET2D_PAPER, [1, 2, 512, 512])).toThrow(PulmoError);
    const { input_shape: _, ...paperNoShape } = UNET2D_PAPER;
    expect(resolveConfig({ num_classes: 3 })).toEqual({ ...paperNoShape, num_classes: 3 });
    expect(resolveConfig(meta.config)).toEqual(meta.config);
    withModel(factory(dev(), meta.config), (m) => expectForwardRejects(dev(), m, [[1, 1, 64, 90], [1, 2, 64, 96], [1, 64, 96], [1, 1, 1, 64, 96]]));
  });
});

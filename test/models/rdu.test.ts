import { describe, expect, it } from "vitest";
import { modelGoldenTest, useDevice } from "../helpers.ts";
import { PulmoError, Tensor, tidy } from "../../src/node.ts";
import { backward, noGrad } from "../../src/graph/index.ts";
import { softDiceSigmoidLoss } from "../../src/graph/ops/loss.ts";
import {
  badConfig, expectForwardRejects, expectGoldenCounts, expectGoldenSecondOfTwo, goldenParams, keysOf, loadGolden, paperKeys, perturbed, withModel,
  zerosForwardShape,
} from "./common.ts";
import { PAPER_CONFIG, RDU, factory, forwardMacs, parameterCount, resolveConfig } from "../../src/models/rdu.ts";

const NAME = "rdu";
const { file, meta } = loadGolden(NAME);
/** shared/reference/models.py PRESETS.rdu */
const PAPER = { in_channels: 1, num_classes: 1, widths: [32, 64, 128, 256], n_lstm: 3, recurrent_activation: "hard_sigmoid", dropout: 0.1, input_shape: [1, 1, 8, 256, 256] };
const TINY2 = { ...PAPER, widths: [3, 5, 6, 7], n_lstm: 3, input_shape: [1, 1, 6, 32, 48] };

describe(NAME, () => {
  modelGoldenTest(NAME);

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset (19,096,833)", () => {
    expect(parameterCount(meta.config)).toBe(meta.param_count);
    expect(parameterCount(PAPER)).toBe(19_096_833);
    expect(parameterCount({})).toBe(19_096_833); // keys left out take the paper values
    // MODELS.md §7: ConvLSTM params per layer 4,433,920 (Cin 225) and 4,719,616 (Cin 256), BN included
    const oneLstm = (n: number) => parameterCount({ n_lstm: n });
    expect(oneLstm(2) - oneLstm(1)).toBe(4_719_616 + 2 * 256);
  });

  it("forwardMacs matches the golden metadata and the paper figure (885.4 GFLOP = 442.7 GMAC)", () => {
    expectGoldenCounts(meta, parameterCount, forwardMacs);
    expect(Math.round(forwardMacs(PAPER) / 1e8) / 10).toBe(442.7);
    expect(forwardMacs(PAPER, [2, 1, 8, 256, 256])).toBe(2 * forwardMacs(PAPER));
  });

  it("state-dict keys, order and shapes equal the paper key list (built at the paper preset)", () => {
    const expected = paperKeys(NAME, [113, 98]); // 15 BatchNorms (12 conv + 3 ConvLSTM)
    // 19.1 M parameters (76 MB): cheap enough to build once.
    withModel(factory(dev(), PAPER), (m) => {
      expect(keysOf(m)).toEqual(expected);
      expect(m.parameterCount()).toBe(19_096_833);
    });
  });

  it("tiny and tiny2 configs: module parameter counts equal parameterCount; tiny2 output shape", async () => {
    for (const cfg of [meta.config, TINY2, { ...meta.config, recurrent_activation: "sigmoid" }]) {
      withModel(factory(dev(), cfg), (m) => {
        expect(m.parameterCount()).toBe(parameterCount(cfg));
        expect([...m.stateDict().keys()].filter((k) => k.startsWith("lstm")).length).toBe(2 * cfg.n_lstm);
      });
    }
    await withModel(factory(dev(), TINY2), async (m) => expect(await zerosForwardShape(dev(), m, TINY2.input_shape, true)).toEqual([1, 1, 6, 32, 48]));
  });

  it("batch of 2 in eval mode: the golden sample's output is unchanged", async () => {
    await withModel(new RDU(dev(), meta.config), (m) => expectGoldenSecondOfTwo(dev(), file, m, 1, perturbed));
  });

  it("train mode with SpatialDropout active: runs, and gradients reach the first encoder conv", async () => {
    const m = new RDU(dev(), meta.config);
    try {
      m.loadStateDict(goldenParams(file), { strict: true });
      m.train();
      const loss = tidy(dev(), () => {
        const l = softDiceSigmoidLoss(m.forward(Tensor.from(dev(), file.float32("input"), file.tensors.get("input")!.shape)),
          Tensor.from(dev(), file.float32("target"), file.tensors.get("target")!.shape), { smooth: 1 });
        backward(l);
        return l;
      });
      const v = (await loss.read())[0]!;
      expect(Number.isFinite(v)).toBe(true);
      loss.dispose();
      // dropout changes the output, so the loss differs from the dropout-free golden loss
      expect(v).not.toBe(file.float32("train.loss")[0]);
      const g = (await m.stateDict().get("conv1_1.weight")!.grad!.read()) as Float32Array;
      expect(g.some((x) => x !== 0)).toBe(true);
    } finally {
      m.dispose();
    }
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const bad = badConfig((c) => factory(dev(), c), meta.config);
    expect(bad({ widths: [4, 6, 8] })).toThrow(/widths/);
    expect(bad({ widths: [4, 6, 0, 8] })).toThrow(PulmoError);
    expect(bad({ n_lstm: 0 })).toThrow(/n_lstm/);
    expect(bad({ recurrent_activation: "tanh" })).toThrow(/recurrent_activation/);
    expect(bad({ dropout: 1 })).toThrow(/dropout/);
    expect(bad({ in_channels: 1.5 })).toThrow(PulmoError);
    expect(bad({ num_classes: 0 })).toThrow(PulmoError);
    expect(bad({ input_shape: [1, 2, 8, 32, 32] })).toThrow(/channels/);
    expect(bad({ input_shape: [1, 1, 8, 36, 32] })).toThrow(/multiples of 8/);
    expect(bad({ typo_key: 1 })).toThrow(/unknown key/);
    expect(() => factory(dev(), null as any)).toThrow(PulmoError);
    expect(() => forwardMacs(PAPER, [1, 1, 8, 256, 260])).toThrow(/multiples of 8/);
    expect(() => forwardMacs(PAPER, [1, 2, 8, 256, 256])).toThrow(PulmoError);
    expect(forwardMacs({})).toBe(forwardMacs(PAPER)); // default input: the paper's 1×1×8×256×256
    const { input_shape: _, ...paperNoShape } = PAPER;
    expect(resolveConfig({})).toEqual(paperNoShape);
    expect(resolveConfig({})).toEqual(PAPER_CONFIG);
    expect(resolveConfig(meta.config)).toEqual(meta.config);
    withModel(factory(dev(), meta.config), (m) => expectForwardRejects(dev(), m, [[1, 1, 8, 32, 36], [1, 2, 8, 32, 32], [1, 8, 32, 32], [1, 1, 1, 8, 32, 32]]));
  });
});

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GOLDEN_MODELS_DIR, modelGoldenTest, useDevice, referenceKeyLines, stateDictLines } from "../helpers.ts";
import { PulmoError, Tensor, tidy, type HostArray } from "../../src/node.ts";
import { backward, noGrad } from "../../src/graph/index.ts";
import { softDiceSigmoidLoss } from "../../src/graph/ops/loss.ts";
import { readSafetensors } from "../../weights/safetensors.ts";
import { PAPER_CONFIG, RDU, factory, forwardMacs, parameterCount, resolveConfig } from "../../src/models/rdu.ts";

const NAME = "rdu";
const file = readSafetensors(readFileSync(join(GOLDEN_MODELS_DIR, `${NAME}.safetensors`)));
const meta = JSON.parse(file.metadata.case!);
/** shared/reference/models.py PRESETS.rdu */
const PAPER = { in_channels: 1, num_classes: 1, widths: [32, 64, 128, 256], n_lstm: 3, recurrent_activation: "hard_sigmoid", dropout: 0.1, input_shape: [1, 1, 8, 256, 256] };
const TINY2 = { ...PAPER, widths: [3, 5, 6, 7], n_lstm: 3, input_shape: [1, 1, 6, 32, 48] };

/** "key [shape]" lines of shared/reference/keys/rdu.txt (paper preset), in file order, without
 * num_batches_tracked (PyTorch's BN step counter: the engine does not keep it, loadStateDict skips it). */
function paperKeys(): string[] {
  const { lines, kept } = referenceKeyLines(NAME);
  expect([lines.length, kept.length]).toEqual([113, 98]); // 15 BatchNorms (12 conv + 3 ConvLSTM)
  return kept;
}

const keysOf = stateDictLines;

const goldenParams = () => {
  const params = new Map<string, HostArray>();
  for (const n of file.names) if (n.startsWith("param.")) params.set(n.slice(6), { data: file.float32(n), shape: file.tensors.get(n)!.shape });
  return params;
};

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
    expect(forwardMacs(meta.config)).toBe(meta.forward_macs);
    expect(forwardMacs(meta.config, meta.config.input_shape)).toBe(meta.forward_macs);
    expect(Math.round(forwardMacs(PAPER) / 1e8) / 10).toBe(442.7);
    expect(forwardMacs(PAPER, [2, 1, 8, 256, 256])).toBe(2 * forwardMacs(PAPER));
  });

  it("state-dict keys, order and shapes equal the paper key list (built at the paper preset)", () => {
    const expected = paperKeys();
    // 19.1 M parameters (76 MB): cheap enough to build once.
    const m = factory(dev(), PAPER);
    try {
      expect(keysOf(m)).toEqual(expected);
      expect(m.parameterCount()).toBe(19_096_833);
    } finally {
      m.dispose();
    }
  });

  it("tiny and tiny2 configs: module parameter counts equal parameterCount; tiny2 output shape", async () => {
    for (const cfg of [meta.config, TINY2, { ...meta.config, recurrent_activation: "sigmoid" }]) {
      const m = factory(dev(), cfg);
      try {
        expect(m.parameterCount()).toBe(parameterCount(cfg));
        expect([...m.stateDict().keys()].filter((k) => k.startsWith("lstm")).length).toBe(2 * cfg.n_lstm);
      } finally {
        m.dispose();
      }
    }
    const m2 = factory(dev(), TINY2);
    try {
      m2.eval();
      const x = Tensor.zeros(dev(), TINY2.input_shape);
      const y = tidy(dev(), () => noGrad(() => m2.forward(x)));
      expect(y.shape).toEqual([1, 1, 6, 32, 48]);
      expect([...(await y.read())].every(Number.isFinite)).toBe(true);
      y.dispose();
      x.dispose();
    } finally {
      m2.dispose();
    }
  });

  it("batch of 2 in eval mode: the golden sample's output is unchanged", async () => {
    const m = new RDU(dev(), meta.config);
    try {
      m.loadStateDict(goldenParams(), { strict: true });
      m.eval();
      const x1 = file.float32("input");
      const [, c, d, h, w] = file.tensors.get("input")!.shape as number[];
      const x2 = new Float32Array(2 * x1.length);
      x2.set(x1.map((v, i) => 1 - v + 0.01 * (i % 7)), 0);
      x2.set(x1, x1.length);
      const xt = Tensor.from(dev(), x2, [2, c!, d!, h!, w!]);
      const y = tidy(dev(), () => noGrad(() => m.forward(xt)));
      expect(y.shape).toEqual([2, 1, d, h, w]);
      const out = (await y.read()) as Float32Array;
      const ref = file.float32("eval.output");
      const second = out.subarray(ref.length);
      let e = 0, n = 0;
      for (let i = 0; i < ref.length; i++) {
        e += (second[i]! - ref[i]!) ** 2;
        n += ref[i]! ** 2;
      }
      expect(Math.sqrt(e / n)).toBeLessThan(1e-4);
      y.dispose();
      xt.dispose();
    } finally {
      m.dispose();
    }
  });

  it("train mode with SpatialDropout active: runs, and gradients reach the first encoder conv", async () => {
    const m = new RDU(dev(), meta.config);
    try {
      m.loadStateDict(goldenParams(), { strict: true });
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
    const bad = (over: Record<string, any>) => () => factory(dev(), { ...meta.config, ...over });
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
    const m = factory(dev(), meta.config);
    try {
      m.eval();
      for (const shape of [[1, 1, 8, 32, 36], [1, 2, 8, 32, 32], [1, 8, 32, 32], [1, 1, 1, 8, 32, 32]]) {
        const x = Tensor.zeros(dev(), shape);
        expect(() => noGrad(() => m.forward(x))).toThrow(PulmoError);
        x.dispose();
      }
    } finally {
      m.dispose();
    }
  });
});

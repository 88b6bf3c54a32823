import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GOLDEN_MODELS_DIR, modelGoldenTest, useDevice, referenceKeyLines, stateDictLines } from "../helpers.ts";
import { PulmoError, Tensor, tidy, type HostArray } from "../../src/node.ts";
import { noGrad } from "../../src/graph/index.ts";
import { readSafetensors } from "../../weights/safetensors.ts";
import { CtvUNet, factory, forwardMacs, parameterCount, resolveConfig, stateDictKeys } from "../../src/models/ctv_unet.ts";

const NAME = "ctv_unet";
const file = readSafetensors(readFileSync(join(GOLDEN_MODELS_DIR, `${NAME}.safetensors`)));
const meta = JSON.parse(file.metadata.case!);
/** shared/reference/models.py PRESETS.ctv_unet */
const PAPER = {
  dims: 3, in_channels: 2, num_classes: 1, enc: [[32, 32], [64, 64], [128, 128], [256, 256], [512, 512]],
  dec: [[256, 256], [128, 128], [64, 64], [32, 32]], up_kernel: 3, up_keep_channels: false, up_bias: false,
  input_shape: [1, 2, 128, 288, 416],
};
const TINY2 = { ...PAPER, enc: [[3, 3], [5, 5], [7, 7], [9, 9]], dec: [[7, 7], [5, 5], [3, 3]], input_shape: [1, 2, 24, 16, 32] };

/** "key [shape]" lines of shared/reference/keys/ctv_unet.txt (paper preset), in file order, without
 * num_batches_tracked (PyTorch's BN step counter: the engine does not keep it, loadStateDict skips it). */
function paperKeys(): string[] {
  const { lines, kept } = referenceKeyLines(NAME);
  expect([lines.length, kept.length]).toEqual([114, 96]); // 18 BatchNorms
  return kept;
}

const keysOf = stateDictLines;

describe(NAME, () => {
  modelGoldenTest(NAME);

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset", () => {
    expect(parameterCount(meta.config)).toBe(meta.param_count);
    expect(parameterCount(PAPER)).toBe(25_886_177);
    expect(parameterCount({})).toBe(25_886_177); // keys left out take the paper values
  });

  it("forwardMacs matches the golden metadata and MODELS.md (3630.9 GMAC at 128×288×416, 209.5 at 96³)", () => {
    expect(forwardMacs(meta.config)).toBe(meta.forward_macs);
    expect(forwardMacs(meta.config, meta.config.input_shape)).toBe(meta.forward_macs);
    expect(Math.round(forwardMacs(PAPER) / 1e8) / 10).toBe(3630.9);
    expect(Math.round(forwardMacs({}) / 1e8) / 10).toBe(3630.9);
    expect(Math.round(forwardMacs(PAPER, [1, 2, 96, 96, 96]) / 1e8) / 10).toBe(209.5);
    expect(forwardMacs(PAPER, [2, 2, 96, 96, 96])).toBe(2 * forwardMacs(PAPER, [1, 2, 96, 96, 96]));
  });

  it("state-dict keys, order and shapes equal the paper key list (built at the paper preset)", () => {
    const expected = paperKeys();
    expect(stateDictKeys(PAPER).map((s) => `${s.key} [${s.shape.join(", ")}]`)).toEqual(expected);
    // 26 M parameters (104 MB): cheap enough to build once.
    const m = factory(dev(), PAPER);
    try {
      expect(keysOf(m)).toEqual(expected);
      expect(m.parameterCount()).toBe(25_886_177);
    } finally {
      m.dispose();
    }
  });

  it("the module matches the config-only key list and counts at other configs (tiny, tiny2)", () => {
    for (const cfg of [meta.config, TINY2]) {
      const m = factory(dev(), cfg);
      try {
        expect(keysOf(m)).toEqual(stateDictKeys(cfg).map((s) => `${s.key} [${s.shape.join(", ")}]`));
        expect(m.parameterCount()).toBe(parameterCount(cfg));
      } finally {
        m.dispose();
      }
    }
    const withBias = { ...meta.config, up_bias: true, up_keep_channels: true, up_kernel: 2 };
    const m = factory(dev(), withBias);
    try {
      expect(m.stateDict().get("up.0.weight")!.shape).toEqual([16, 16, 2, 2, 2]);
      expect(m.stateDict().get("up.0.bias")!.shape).toEqual([16]);
      expect(m.stateDict().get("dec.0.conv1.weight")!.shape).toEqual([8, 24, 3, 3, 3]);
      expect(m.parameterCount()).toBe(parameterCount(withBias));
    } finally {
      m.dispose();
    }
  });

  it("batch of 2 in eval mode: the golden sample's output is unchanged; tiny2 output shape", async () => {
    const params = new Map<string, HostArray>();
    for (const n of file.names) if (n.startsWith("param.")) params.set(n.slice(6), { data: file.float32(n), shape: file.tensors.get(n)!.shape });
    const m = new CtvUNet(dev(), meta.config);
    try {
      m.loadStateDict(params, { strict: true });
      m.eval();
      const x1 = file.float32("input");
      const [, c, d, h, w] = file.tensors.get("input")!.shape as number[];
      const x2 = new Float32Array(2 * x1.length);
      x2.set(x1.map((v) => 1 - v), 0); // another sample first: CT and mask inverted
      x2.set(x1, x1.length);
      const xt = Tensor.from(dev(), x2, [2, c!, d!, h!, w!]);
      const y = tidy(dev(), () => noGrad(() => m.forward(xt)));
      expect(y.shape).toEqual([2, meta.config.num_classes, d, h, w]);
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
    const m2 = factory(dev(), TINY2);
    try {
      m2.eval();
      const x = Tensor.zeros(dev(), TINY2.input_shape);
      const y = tidy(dev(), () => noGrad(() => m2.forward(x)));
      expect(y.shape).toEqual([1, 1, 24, 16, 32]);
      y.dispose();
      x.dispose();
    } finally {
      m2.dispose();
    }
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const bad = (over: Record<string, any>) => () => factory(dev(), { ...meta.config, ...over });
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
    const m = factory(dev(), meta.config);
    try {
      m.eval();
      for (const shape of [[1, 2, 16, 24, 30], [1, 1, 16, 24, 32], [2, 16, 24, 32], [1, 1, 2, 16, 24, 32]]) {
        const x = Tensor.zeros(dev(), shape);
        expect(() => noGrad(() => m.forward(x))).toThrow(PulmoError);
        x.dispose();
      }
    } finally {
      m.dispose();
    }
  });
});

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GOLDEN_MODELS_DIR, modelGoldenTest, useDevice, referenceKeyLines, stateDictLines } from "../helpers.ts";
import { PulmoError, Tensor, tidy, type HostArray } from "../../src/node.ts";
import { noGrad } from "../../src/graph/index.ts";
import { readSafetensors } from "../../weights/safetensors.ts";
import { UNET2D_PAPER, UNet2d, factory, forwardMacs, parameterCount, resolveConfig } from "../../src/models/unet2d.ts";

const NAME = "unet2d";
const file = readSafetensors(readFileSync(join(GOLDEN_MODELS_DIR, `${NAME}.safetensors`)));
const meta = JSON.parse(file.metadata.case!);
/** shared/reference/models.py PRESETS.unet2d.tiny2 (5 levels, mid != out, batch 2) */
const TINY2 = {
  ...UNET2D_PAPER,
  enc: [[3, 5], [6, 7], [9, 11], [12, 14], [16, 18]],
  dec: [[10, 12], [8, 9], [6, 6], [4, 4]],
  input_shape: [2, 1, 64, 48],
};

/** "key [shape]" lines of shared/reference/keys/unet2d.txt (paper preset), in file order, without
 * num_batches_tracked (PyTorch's BN step counter: the engine does not keep it, loadStateDict skips it). */
function paperKeys(): string[] {
  const { lines, kept } = referenceKeyLines(NAME);
  expect([lines.length, kept.length]).toEqual([118, 100]); // 18 BatchNorms
  return kept;
}

const keysOf = stateDictLines;

describe(NAME, () => {
  modelGoldenTest(NAME);

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset", () => {
    expect(parameterCount(meta.config)).toBe(meta.param_count);
    expect(parameterCount(UNET2D_PAPER)).toBe(31_036_481);
    expect(parameterCount({})).toBe(31_036_481); // keys left out take the paper values
  });

  it("forwardMacs matches the golden metadata and MODELS.md (192.4 GMAC at 512²)", () => {
    expect(forwardMacs(meta.config)).toBe(meta.forward_macs);
    expect(forwardMacs(meta.config, meta.config.input_shape)).toBe(meta.forward_macs);
    expect(Math.round(forwardMacs(UNET2D_PAPER) / 1e8) / 10).toBe(192.4);
    expect(forwardMacs(UNET2D_PAPER, [2, 1, 512, 512])).toBe(2 * forwardMacs(UNET2D_PAPER, [1, 1, 512, 512]));
  });

  it("state-dict keys, order and shapes equal the paper key list (built at the paper preset)", () => {
    const expected = paperKeys();
    // 31 M parameters (124 MB), built in about a second on the software driver.
    const m = factory(dev(), UNET2D_PAPER);
    try {
      expect(keysOf(m)).toEqual(expected);
      expect(m.parameterCount()).toBe(31_036_481);
    } finally {
      m.dispose();
    }
  });

  it("builds other configs (tiny2, up_kernel 3, up_keep_channels) with matching counts; tiny2 forward shape", () => {
    for (const cfg of [TINY2, { ...meta.config, up_kernel: 3, up_keep_channels: true, up_bias: false }]) {
      const m = factory(dev(), cfg);
      try {
        expect(m.parameterCount()).toBe(parameterCount(cfg));
        if (cfg.up_kernel === 3) {
          expect(m.stateDict().get("up.0.weight")!.shape).toEqual([32, 32, 3, 3]);
          expect(m.stateDict().has("up.0.bias")).toBe(false);
          expect(m.stateDict().get("dec.0.conv1.weight")!.shape).toEqual([16, 48, 3, 3]);
        }
      } finally {
        m.dispose();
      }
    }
    const m = factory(dev(), TINY2);
    try {
      m.eval();
      const x = Tensor.zeros(dev(), TINY2.input_shape);
      const y = tidy(dev(), () => noGrad(() => m.forward(x)));
      expect(y.shape).toEqual([2, 1, 64, 48]);
      y.dispose();
      x.dispose();
    } finally {
      m.dispose();
    }
  });

  it("batch of 2 in eval mode: the golden sample's output is unchanged", async () => {
    const params = new Map<string, HostArray>();
    for (const n of file.names) if (n.startsWith("param.")) params.set(n.slice(6), { data: file.float32(n), shape: file.tensors.get(n)!.shape });
    const m = new UNet2d(dev(), meta.config);
    try {
      m.loadStateDict(params, { strict: true });
      m.eval();
      const x1 = file.float32("input");
      const [, c, h, w] = file.tensors.get("input")!.shape as number[];
      const x2 = new Float32Array(2 * x1.length);
      x2.set(x1.map((v, i) => 1 - v + 0.01 * (i % 7)), 0);
      x2.set(x1, x1.length);
      const xt = Tensor.from(dev(), x2, [2, c!, h!, w!]);
      const y = tidy(dev(), () => noGrad(() => m.forward(xt)));
      expect(y.shape).toEqual([2, 1, h, w]);
      const second = ((await y.read()) as Float32Array).subarray(x1.length);
      const ref = file.float32("eval.output");
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

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const bad = (over: Record<string, any>) => () => factory(dev(), { ...meta.config, ...over });
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
    const m = factory(dev(), meta.config);
    try {
      m.eval();
      for (const shape of [[1, 1, 64, 90], [1, 2, 64, 96], [1, 64, 96], [1, 1, 1, 64, 96]]) {
        const x = Tensor.zeros(dev(), shape);
        expect(() => noGrad(() => m.forward(x))).toThrow(PulmoError);
        x.dispose();
      }
    } finally {
      m.dispose();
    }
  });
});

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GOLDEN_MODELS_DIR, modelGoldenTest, useDevice } from "../helpers.ts";
import { PulmoError, Tensor, tidy } from "../../src/node.ts";
import { backward, noGrad } from "../../src/graph/index.ts";
import { Dropout } from "../../src/graph/nn.ts";
import { sum } from "../../src/graph/ops/index.ts";
import { readSafetensors } from "../../weights/safetensors.ts";
import { ResUNet, factory, forwardMacs, parameterCount } from "../../src/models/resunet.ts";

const KEYS_FILE = join(import.meta.dirname, "..", "golden", "models", "keys", "resunet.txt");
const meta = JSON.parse(readSafetensors(readFileSync(join(GOLDEN_MODELS_DIR, "resunet.safetensors"))).metadata.case!);
// shared/reference/models.py PRESETS.resunet
const PAPER = { in_channels: 1, num_classes: 2, channels: [16, 32, 64, 128, 256], strides: [2, 2, 2, 2], kernel_size: 3, up_kernel_size: 3, num_res_units: 2, dropout: 0.0 };
const TINY2 = { ...PAPER, channels: [5, 7, 9], strides: [2, 2], num_res_units: 3, input_shape: [2, 1, 12, 16, 20] };

/** "key [shape]" lines of shared/reference/keys/resunet.txt (paper preset) without the BN step
 * counters (num_batches_tracked: not stored by the engine, ignored on load). */
function paperKeys(): string[] {
  return readFileSync(KEYS_FILE, "utf8")
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("#") && !l.includes(".num_batches_tracked "))
    .map((l) => l.trim());
}

describe("resunet", () => {
  modelGoldenTest("resunet");

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset", () => {
    expect(parameterCount(meta.config)).toBe(meta.param_count);
    expect(parameterCount(PAPER)).toBe(4_808_917);
  });

  it("forwardMacs matches the golden metadata and the README (10.2 GFLOP at 96³)", () => {
    expect(forwardMacs(meta.config, meta.config.input_shape)).toBe(meta.forward_macs);
    expect(forwardMacs(meta.config)).toBe(meta.forward_macs);
    expect(Math.round((2 * forwardMacs(PAPER, [1, 1, 96, 96, 96])) / 1e8) / 10).toBe(10.2);
    expect(forwardMacs(PAPER, [2, 1, 96, 96, 96])).toBe(2 * forwardMacs(PAPER, [1, 1, 96, 96, 96]));
  });

  it("state-dict keys, order and shapes at the paper preset equal the reference key list", () => {
    // 4.8 M parameters: cheap enough to build for real
    const m = factory(dev(), PAPER);
    try {
      const mine = [...m.stateDict()].map(([k, t]) => `${k} [${t.shape.join(", ")}]`);
      const expected = paperKeys();
      expect(expected.length).toBe(131);
      expect(mine).toEqual(expected);
      expect(m.parameterCount()).toBe(4_808_917);
    } finally {
      m.dispose();
    }
  });

  it("a second config (3 levels, 3 residual subunits, batch 2) builds, counts and trains", async () => {
    const m = new ResUNet(dev(), TINY2);
    try {
      expect(m.parameterCount()).toBe(parameterCount(TINY2));
      expect([...m.stateDict().keys()]).toContain("model.0.conv.unit2.adn.A.weight");
      expect([...m.stateDict().keys()]).toContain("model.1.submodule.1.submodule.residual.weight"); // bottom 7 → 9: 1³ conv
      const x = Tensor.from(dev(), Float32Array.from({ length: 2 * 12 * 16 * 20 }, (_, i) => Math.sin(i * 0.37)), TINY2.input_shape);
      m.eval();
      const y = tidy(dev(), () => noGrad(() => m.forward(x)));
      expect(y.shape).toEqual([2, 2, 12, 16, 20]);
      expect(Array.from(await y.read()).every(Number.isFinite)).toBe(true);
      y.dispose();
      m.train();
      const loss = tidy(dev(), () => {
        const l = sum(m.forward(x));
        backward(l);
        return l;
      });
      loss.dispose();
      for (const [k, p] of m.namedParameters()) expect(p.grad, k).toBeTruthy();
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
    const bad = (over: Record<string, any>) => () => factory(dev(), { ...meta.config, ...over });
    expect(bad({ num_res_units: 0 })).toThrow(/num_res_units/);
    expect(bad({ strides: [2, 2] })).toThrow(/strides/);
    expect(bad({ channels: [4] })).toThrow(PulmoError);
    expect(bad({ kernel_size: 4 })).toThrow(/odd/);
    expect(bad({ dropout: 1 })).toThrow(PulmoError);
    expect(bad({ in_channels: 0 })).toThrow(PulmoError);
    expect(bad({ typo_key: 1 })).toThrow(/unknown key/);
    expect(() => parameterCount({ ...PAPER, channels: [16, -1] })).toThrow(PulmoError);
    expect(() => forwardMacs(PAPER, [1, 1, 96, 96, 100])).toThrow(PulmoError);
    const m = factory(dev(), meta.config);
    try {
      m.eval();
      for (const shape of [[1, 1, 16, 24, 30], [1, 2, 16, 24, 32], [16, 24, 32]]) {
        const x = Tensor.zeros(dev(), shape);
        expect(() => noGrad(() => m.forward(x))).toThrow(PulmoError);
        x.dispose();
      }
    } finally {
      m.dispose();
    }
  });
});

import { describe, expect, it } from "vitest";
import { modelGoldenTest, useDevice } from "../helpers.ts";
import { PulmoError, Tensor } from "../../src/runtime/index.ts";
import { expectBatchEqualsSingles, expectForwardRejects, expectGoldenCounts, keysOf, loadGolden, mappedKeys, paperKeyShapes, shapeTotal, withModel } from "./common.ts";
import { CoReTr, forwardMacs, parameterCount } from "../../src/models/coretr.ts";

const { meta } = loadGolden("coretr");

const PAPER = {
  in_channels: 1, num_classes: 2, shallow_widths: [8, 16, 32, 64, 128], deep_widths: [16, 32, 64, 128, 192],
  shallow_blocks: [2, 2, 2], deep_blocks: [3, 3, 3], res_kernel: 5, dec_kernel: 3, d_model: 192, n_heads: 6,
  n_layers: 6, d_ffn: 768, n_points: 4, dropout: 0.1,
};

describe("coretr", () => {
  modelGoldenTest("coretr");
  const dev = useDevice();

  it("parameter count and forward MACs match the golden metadata and the paper preset", () => {
    expectGoldenCounts(meta, parameterCount, forwardMacs, false);
    const m = new CoReTr(dev(), meta.config);
    expect(m.parameterCount()).toBe(meta.param_count);
    m.dispose();
    expect(parameterCount(PAPER)).toBe(63_823_226); // MODELS.md [RUN]
    expect(forwardMacs(PAPER, [1, 1, 96, 96, 96]) / 1e9).toBeCloseTo(273.9, 1); // MODELS.md: 273.9 GMAC
  });

  it("state-dict keys, order and shapes follow reference/keys/coretr.txt (paper preset)", () => {
    // Not allocated at 63.8 M parameters: the paper's depths (blocks 2/2/2 and 3/3/3, 6 layers,
    // 6 heads, 4 points, 5³ and 3³ kernels) with small widths give the same keys; shapes map
    // 8→2, 16→3, 32→4, 64→5, 128→7, 192→12, 768→14 (other sizes equal).
    const map: Record<number, number> = { 8: 2, 16: 3, 32: 4, 64: 5, 128: 7, 192: 12, 768: 14 };
    const small = { ...PAPER, shallow_widths: [2, 3, 4, 5, 7], deep_widths: [3, 4, 5, 7, 12], d_model: 12, d_ffn: 14 };
    withModel(new CoReTr(dev(), small), (m) => expect(keysOf(m)).toEqual(mappedKeys("coretr", map)));
    expect(shapeTotal(paperKeyShapes("coretr"))).toBe(63_823_226);
  });

  it("a batch of 2 equals two single forwards (eval)", async () => {
    const m = new CoReTr(dev(), meta.config).eval();
    const [D, H, W] = [16, 16, 32];
    const data = Float32Array.from({ length: 2 * D * H * W }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5);
    const x = Tensor.from(dev(), data, [2, 1, D, H, W]);
    expect(await expectBatchEqualsSingles(dev(), m, x)).toEqual([2, 2, D, H, W]);
    x.dispose();
    m.dispose();
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const cfg = meta.config;
    expect(() => new CoReTr(dev(), { ...cfg, shallow_widths: [2, 5, 6, 8, 10] })).toThrow(/d0\+s1/);
    expect(() => new CoReTr(dev(), { ...cfg, deep_blocks: [1, 1] })).toThrow(PulmoError);
    expect(() => new CoReTr(dev(), { ...cfg, res_kernel: 4 })).toThrow(PulmoError);
    expect(() => new CoReTr(dev(), { ...cfg, n_heads: 5 })).toThrow(PulmoError);
    expect(() => new CoReTr(dev(), { ...cfg, d_model: 28, n_heads: 2 })).toThrow(/positional/);
    expect(() => parameterCount({ ...cfg, deep_widths: [4, 6, 8, 10] })).toThrow(PulmoError);
    expect(() => parameterCount({ ...cfg, shallow_width: [2, 4, 6, 8, 10] })).toThrow(/unknown key/);
    expect(parameterCount({})).toBe(63_823_226); // a left-out key takes its paper value
    const m = new CoReTr(dev(), cfg);
    expectForwardRejects(dev(), m, [[1, 1, 16, 32, 40], [1, 2, 16, 32, 48], [1, 16, 32, 48], [1, 1, 8, 32, 48]], true);
    expect(() => forwardMacs(cfg, [1, 16, 32])).toThrow(PulmoError);
    m.dispose();
  });
});

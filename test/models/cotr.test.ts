import { describe, expect, it } from "vitest";
import { modelGoldenTest, useDevice } from "../helpers.ts";
import { PulmoError, Tensor } from "../../src/runtime/index.ts";
import { expectBatchEqualsSingles, expectForwardRejects, expectGoldenCounts, keysOf, loadGolden, mappedKeys, paperKeyShapes, shapeTotal, withModel } from "./common.ts";
import { CoTr, forwardMacs, parameterCount } from "../../src/models/cotr.ts";
import { referencePoints3d, sinePositionEmbedding3d } from "../../src/models/deformable_transformer.ts";

const { meta } = loadGolden("cotr");

const PAPER = {
  in_channels: 1, num_classes: 2, act: "leakyrelu", stem_kernel: 7, stem_stride: [1, 2, 2], widths: [64, 192, 384, 384],
  blocks: [3, 3, 2], d_model: 384, n_heads: 6, n_layers: 6, d_ffn: 1536, n_points: 4, dropout: 0.1,
};

describe("cotr", () => {
  modelGoldenTest("cotr");
  const dev = useDevice();

  it("parameter count and forward MACs match the golden metadata and the paper preset", () => {
    expectGoldenCounts(meta, parameterCount, forwardMacs, false);
    const m = new CoTr(dev(), meta.config);
    expect(m.parameterCount()).toBe(meta.param_count);
    m.dispose();
    expect(parameterCount(PAPER)).toBe(41_864_008); // MODELS.md [RUN]
    const gmac = forwardMacs(PAPER, [1, 1, 48, 192, 192]) / 1e9;
    expect(gmac).toBeCloseTo(562.45, 2); // MODELS.md: 562.5 (561.2 conv/linear + 1.3 sampling)
  });

  it("state-dict keys, order and shapes follow reference/keys/cotr.txt (paper preset)", () => {
    // The paper model (41.9 M parameters) is not allocated: a config with the paper's depths
    // (blocks 3/3/2, 6 layers, 6 heads, 4 points, 2 classes, stem 7) and distinct small widths
    // gives the same key list; shapes map 64→4, 192→8, 384→12, 1536→16 (other sizes equal).
    const map: Record<number, number> = { 64: 4, 192: 8, 384: 12, 1536: 16 };
    const small = { ...PAPER, widths: [4, 8, 12, 12], d_model: 12, d_ffn: 16 };
    withModel(new CoTr(dev(), small), (m) => expect(keysOf(m)).toEqual(mappedKeys("cotr", map)));
    expect(shapeTotal(paperKeyShapes("cotr"))).toBe(41_864_008);
  });

  it("positional encoding and reference points follow MODELS.md §1.1 and §1.3", () => {
    // d_model 30: F = 10 per axis; voxel (d, h, w) = (1, 2, 0) of a (2, 3, 4) level
    const pe = sinePositionEmbedding3d(30, [2, 3, 4]);
    const at = (d: number, h: number, w: number, c: number) => pe[((d * 3 + h) * 4 + w) * 30 + c]!;
    const e = (i: number, n: number) => ((i + 0.5) / (n + 1e-6)) * 2 * Math.PI;
    const tau = (k: number) => Math.pow(10000, (3 * Math.floor(k / 3)) / 10);
    expect(at(1, 2, 0, 0)).toBeCloseTo(Math.sin(e(1, 2)), 12);
    expect(at(1, 2, 0, 3)).toBeCloseTo(Math.cos(e(1, 2) / tau(3)), 12);
    expect(at(1, 2, 0, 10 + 4)).toBeCloseTo(Math.sin(e(2, 3) / tau(4)), 12);
    expect(at(1, 2, 0, 20 + 7)).toBeCloseTo(Math.cos(e(0, 4) / tau(7)), 12);
    // CoTr's (d, w, h) order
    const r = referencePoints3d([[2, 3, 4], [1, 1, 2]]);
    const q = (1 * 3 + 2) * 4 + 0;
    expect([...r.slice(3 * q, 3 * q + 3)]).toEqual([1.5 / 2, 0.5 / 4, 2.5 / 3]);
    expect(r.length).toBe(3 * (24 + 2));
  });

  it("a new model carries CoTr's MSDA initialisation (offset grid, zero attention weights)", async () => {
    const m = new CoTr(dev(), meta.config); // 3 heads, 2 levels, 2 points
    const sa = m.U_ResTran3D.encoder_Detrans.encoder.layers.items[1]!.self_attn;
    const bias = (await sa.sampling_offsets.bias!.read()) as Float32Array;
    const th = (2 * Math.PI) / 3; // head 1
    const u = [Math.cos(th), Math.sin(th) * Math.cos(th), Math.sin(th) * Math.sin(th)];
    const inf = Math.max(...u.map(Math.abs));
    const at = (mh: number, l: number, p: number) => [...bias.slice(((mh * 2 + l) * 2 + p) * 3, ((mh * 2 + l) * 2 + p) * 3 + 3)];
    at(1, 1, 1).forEach((v, j) => expect(v).toBeCloseTo((2 * u[j]!) / inf, 6));
    expect(at(0, 0, 0)).toEqual([1, 0, 0]);
    expect([...((await sa.attention_weights.weight.read()) as Float32Array)].every((v) => v === 0)).toBe(true);
    expect([...((await sa.sampling_offsets.weight.read()) as Float32Array)].every((v) => v === 0)).toBe(true);
    const le = (await m.U_ResTran3D.encoder_Detrans.level_embed.read()) as Float32Array;
    expect(le.some((v) => v !== 0)).toBe(true);
    m.dispose();
  });

  it("a batch of 2 equals two single forwards (eval)", async () => {
    const m = new CoTr(dev(), meta.config).eval();
    const [, , D, H, W] = meta.config.input_shape as number[];
    const data = Float32Array.from({ length: 2 * D! * H! * W! }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5);
    const x = Tensor.from(dev(), data, [2, 1, D!, H!, W!]);
    await expectBatchEqualsSingles(dev(), m, x);
    x.dispose();
    m.dispose();
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const cfg = meta.config;
    expect(() => new CoTr(dev(), { ...cfg, widths: [6, 12, 24, 30] })).toThrow(PulmoError);
    expect(() => new CoTr(dev(), { ...cfg, blocks: [2, 1] })).toThrow(PulmoError);
    expect(() => new CoTr(dev(), { ...cfg, n_heads: 5 })).toThrow(PulmoError);
    expect(() => new CoTr(dev(), { ...cfg, widths: [6, 12, 28, 28], d_model: 28, n_heads: 2 })).toThrow(/positional/);
    expect(() => new CoTr(dev(), { ...cfg, act: "gelu" })).toThrow(PulmoError);
    expect(() => parameterCount({ ...cfg, d_model: "24" })).toThrow(PulmoError);
    expect(() => parameterCount({ ...cfg, n_layer: 2 })).toThrow(/unknown key/);
    expect(parameterCount({})).toBe(41_864_008); // a left-out key takes its paper value
    const m = new CoTr(dev(), cfg);
    expectForwardRejects(dev(), m, [[1, 1, 8, 32, 44], [1, 2, 8, 32, 48], [1, 8, 32, 48], [1, 1, 12, 32, 48]], true);
    expect(() => forwardMacs(cfg, [1, 8, 32])).toThrow(PulmoError);
    m.dispose();
  });
});

import { describe, expect, it } from "vitest";
import { modelGoldenTest, useDevice } from "../helpers.ts";
import { PulmoError, Tensor, tidy, type HostArray } from "../../src/node.ts";
import { noGrad } from "../../src/graph/index.ts";
import { badConfig, expectForwardRejects, expectGoldenCounts, goldenParams, keysOf, loadGolden, mappedKeys, withModel } from "./common.ts";
import { UNETR, factory, forwardMacs, fromMonaiUnetr, parameterCount } from "../../src/models/unetr.ts";

const { file, meta } = loadGolden("unetr");
const PAPER = {
  in_channels: 1, num_classes: 2, img_size: [96, 96, 96], feature_size: 16, hidden_size: 768, mlp_dim: 3072,
  num_heads: 12, num_layers: 12, skip_layers: [3, 6, 9], dropout: 0.0, qkv_bias: false,
};

const host = (shape: number[], f: (i: number) => number = (i) => i): HostArray => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from({ length: n }, (_, i) => f(i)) };
};

describe("unetr", () => {
  modelGoldenTest("unetr");

  const dev = useDevice();

  it("parameterCount matches the golden metadata and the paper preset", () => {
    expectGoldenCounts(meta, parameterCount, forwardMacs, false);
    expect(parameterCount(PAPER)).toBe(92_783_842);
  });

  it("forwardMacs matches the golden metadata and MODELS.md (73.1 GMAC at 96³)", () => {
    expect(Math.round(forwardMacs(PAPER, [1, 1, 96, 96, 96]) / 1e8) / 10).toBe(73.1);
    expect(forwardMacs(PAPER, [2, 1, 96, 96, 96])).toBe(2 * forwardMacs(PAPER, [1, 1, 96, 96, 96]));
  });

  it("module parameter count equals parameterCount (tiny preset)", () => {
    withModel(factory(dev(), meta.config), (m) => expect(m.parameterCount()).toBe(meta.param_count));
  });

  it("state-dict keys, order and shapes equal the paper key list", () => {
    // The paper model holds 92.8 M parameters; build it with every structural setting of the
    // paper (12 layers, skips 3/6/9, f 16, 96³, 1 → 2 channels) but hidden 24 / MLP 48, so the
    // only shapes that differ are the hidden-derived ones: 768 → 24, 2304 → 72, 3072 → 48.
    const small = { ...PAPER, hidden_size: 24, mlp_dim: 48 };
    withModel(factory(dev(), small), (m) => {
      const expected = mappedKeys("unetr", { 768: 24, 2304: 72, 3072: 48 });
      expect(keysOf(m)).toEqual(expected);
      expect(expected.length).toBe(170);
      expect(parameterCount(small)).toBe(m.parameterCount());
    });
  });

  it("rejects bad configs and wrong input shapes with a PulmoError", () => {
    const bad = badConfig((c) => factory(dev(), c), meta.config);
    expect(bad({ img_size: [16, 32, 40] })).toThrow(PulmoError);
    expect(bad({ num_heads: 5 })).toThrow(/divisible/);
    expect(bad({ skip_layers: [0, 1, 2] })).toThrow(/skip_layers/);
    expect(bad({ feature_size: 0 })).toThrow(PulmoError);
    expect(bad({ typo_key: 1 })).toThrow(/unknown key/);
    expect(() => parameterCount({ ...PAPER, hidden_size: 100 })).toThrow(PulmoError);
    expect(() => forwardMacs(PAPER, [1, 1, 96, 96, 64])).toThrow(PulmoError);
    withModel(factory(dev(), meta.config), (m) => expectForwardRejects(dev(), m, [[1, 1, 16, 32, 32], [1, 2, 16, 32, 48], [16, 32, 48]]));
  });

  describe("fromMonaiUnetr", () => {
    it("drops MONAI ≥ 1.4 cross-attention keys and passes the rest through", () => {
      const sd = new Map<string, HostArray>([
        ["vit.blocks.0.norm1.weight", host([4])],
        ["vit.blocks.0.norm_cross_attn.weight", host([4])],
        ["vit.blocks.0.norm_cross_attn.bias", host([4])],
        ["vit.blocks.0.cross_attn.to_q.weight", host([4, 4])],
        ["vit.blocks.11.cross_attn.out_proj.bias", host([4])],
        ["vit.blocks.0.attn.qkv.weight", host([12, 4])],
        ["out.conv.conv.bias", host([2])],
      ]);
      const r = fromMonaiUnetr(sd);
      expect(r.ignored).toEqual([
        "vit.blocks.0.norm_cross_attn.weight",
        "vit.blocks.0.norm_cross_attn.bias",
        "vit.blocks.0.cross_attn.to_q.weight",
        "vit.blocks.11.cross_attn.out_proj.bias",
      ]);
      expect([...r.stateDict.keys()]).toEqual(["vit.blocks.0.norm1.weight", "vit.blocks.0.attn.qkv.weight", "out.conv.conv.bias"]);
      expect(r.stateDict.get("vit.blocks.0.attn.qkv.weight")).toBe(sd.get("vit.blocks.0.attn.qkv.weight"));
      expect(r.converted).toEqual([]);
    });

    it("converts the 'perceptron' patch embedding to the conv layout", () => {
      const hidden = 3, cin = 2, vol = 16 ** 3;
      // element [o, (pd, ph, pw, c)] = o*1e5 + ((pd*16+ph)*16+pw)*10 + c: decodable after the move
      const w = host([hidden, vol * cin], (i) => Math.floor(i / (vol * cin)) * 1e5 + Math.floor((i % (vol * cin)) / cin) * 10 + (i % cin));
      const r = fromMonaiUnetr({
        "vit.patch_embedding.patch_embeddings.1.weight": w,
        "vit.patch_embedding.patch_embeddings.1.bias": host([hidden]),
        "vit.patch_embedding.position_embeddings": host([1, 8, hidden]),
      });
      const cw = r.stateDict.get("vit.patch_embedding.patch_embeddings.weight")!;
      expect(cw.shape).toEqual([hidden, cin, 16, 16, 16]);
      for (const [o, c, pd, ph, pw] of [[0, 0, 0, 0, 0], [1, 1, 2, 3, 4], [2, 0, 15, 0, 7], [2, 1, 15, 15, 15]] as const) {
        const idx = (((o * cin + c) * 16 + pd) * 16 + ph) * 16 + pw; // conv [O, C, pD, pH, pW]
        expect(cw.data[idx]).toBe(o * 1e5 + ((pd * 16 + ph) * 16 + pw) * 10 + c);
      }
      expect(r.stateDict.get("vit.patch_embedding.patch_embeddings.bias")!.shape).toEqual([hidden]);
      expect([...r.stateDict.keys()].sort()).toEqual([
        "vit.patch_embedding.patch_embeddings.bias",
        "vit.patch_embedding.patch_embeddings.weight",
        "vit.patch_embedding.position_embeddings",
      ]);
      expect(r.converted.length).toBe(2);
      expect(() => fromMonaiUnetr({ "vit.patch_embedding.patch_embeddings.1.weight": host([3, 100]) })).toThrow(PulmoError);
    });

    it("a converted perceptron checkpoint computes the same forward as the conv form", async () => {
      // Golden tiny weights → perceptron form (the inverse permutation) + MONAI ≥ 1.4 extras →
      // fromMonaiUnetr → strict load → same eval output as loading the golden weights directly.
      const params = goldenParams(file);
      const monai = new Map<string, HostArray>();
      const vol = 16 ** 3;
      for (const [k, v] of params) {
        if (k === "vit.patch_embedding.patch_embeddings.weight") {
          const [o, c] = v.shape as [number, number];
          const lin = new Float32Array(v.data.length);
          for (let i = 0; i < o; i++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < vol; p++)
            lin[i * vol * c + p * c + ch] = v.data[(i * c + ch) * vol + p]!;
          monai.set("vit.patch_embedding.patch_embeddings.1.weight", { data: lin, shape: [o, vol * c] });
        } else if (k === "vit.patch_embedding.patch_embeddings.bias") monai.set("vit.patch_embedding.patch_embeddings.1.bias", v);
        else monai.set(k, v);
        if (/^vit\.blocks\.\d+\.norm2\.bias$/.test(k)) {
          const p = k.replace(/norm2\.bias$/, "");
          monai.set(`${p}norm_cross_attn.weight`, host([meta.config.hidden_size]));
          monai.set(`${p}cross_attn.to_q.weight`, host([meta.config.hidden_size, meta.config.hidden_size]));
        }
      }
      const conv = fromMonaiUnetr(monai);
      expect(conv.ignored.length).toBe(2 * meta.config.num_layers);
      const x = () => Tensor.from(dev(), file.float32("input"), file.tensors.get("input")!.shape);
      const outs: Float32Array[] = [];
      for (const sd of [params, conv.stateDict]) {
        const m = new UNETR(dev(), meta.config);
        try {
          m.loadStateDict(sd, { strict: true });
          m.eval();
          const xi = x();
          const y = tidy(dev(), () => noGrad(() => m.forward(xi)));
          outs.push((await y.read()) as Float32Array);
          y.dispose();
          xi.dispose();
        } finally {
          m.dispose();
        }
      }
      expect(outs[1]).toEqual(outs[0]);
    });
  });
});

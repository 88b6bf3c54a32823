// CoTr's 3D deformable transformer (encoder only), shared by CoTr (MODELS.md §1) and Co-ReTr (§2):
// sine positional encoding (§1.1), post-norm DeTrans layer (§1.2) and 3D multi-scale deformable
// attention (§1.3) with CoTr's sampling-axis permutation. State-dict names follow CoTr's
// DeformableTransformer: level_embed, encoder.layers.{i}.{self_attn.*, norm1, linear1, linear2, norm2}.
import { PulmoError, Tensor, shapeStr, type Device } from "../runtime/index.ts";
import { Module } from "../graph/module.ts";
import { Dropout, LayerNorm, Linear } from "../graph/nn.ts";
import { add, concat, div, gelu, msDeformAttn3d, reshape, slice, softmax, transpose, type SpatialShape3d } from "../graph/ops/index.ts";

export interface DeformableTransformerConfig {
  d_model: number;
  n_heads: number;
  n_layers: number;
  d_ffn: number;
  n_levels: number;
  n_points: number;
  dropout: number;
}

/** CoTr's PositionEmbeddingSine(normalize=True, T=10000) for one level (D, H, W), computed in
 * float64: [D*H*W * d_model] row-major (voxel d,h,w; channel blocks [PE_d | PE_h | PE_w] of sizes
 * F + d_model%3, F, F with F = floor(d_model/3)). */
export function sinePositionEmbedding3d(dModel: number, shape: SpatialShape3d, temperature = 10000): Float64Array {
  const [D, H, W] = shape;
  const f = Math.floor(dModel / 3);
  const fd = f + (dModel % 3);
  if (f % 2 !== 0 || fd % 2 !== 0)
    throw new PulmoError(`deformable transformer: each positional block (d_model/3 = ${f}, +remainder ${fd}) must be even, got d_model ${dModel}`);
  const axis = (n: number, nf: number): Float64Array => {
    const out = new Float64Array(n * nf);
    for (let i = 0; i < n; i++) {
      const e = ((i + 0.5) / (n + 1e-6)) * 2 * Math.PI;
      for (let k = 0; k < nf; k++) {
        const tau = Math.pow(temperature, (3 * Math.floor(k / 3)) / nf);
        const p = e / tau;
        out[i * nf + k] = k % 2 === 0 ? Math.sin(p) : Math.cos(p);
      }
    }
    return out;
  };
  const pd = axis(D, fd), ph = axis(H, f), pw = axis(W, f);
  const pe = new Float64Array(D * H * W * dModel);
  let o = 0;
  for (let d = 0; d < D; d++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++) {
        for (let k = 0; k < fd; k++) pe[o++] = pd[d * fd + k]!;
        for (let k = 0; k < f; k++) pe[o++] = ph[h * f + k]!;
        for (let k = 0; k < f; k++) pe[o++] = pw[w * f + k]!;
      }
  return pe;
}

/** Reference points of every query over all levels, [sum(DHW) * 3], in CoTr's (d, w, h) order:
 * ((d+.5)/D, (w+.5)/W, (h+.5)/H) for voxel (d, h, w) of its own level (valid ratios 1). */
export function referencePoints3d(shapes: readonly SpatialShape3d[]): Float64Array {
  const total = shapes.reduce((s, [d, h, w]) => s + d * h * w, 0);
  const out = new Float64Array(total * 3);
  let o = 0;
  for (const [D, H, W] of shapes)
    for (let d = 0; d < D; d++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          out[o++] = (d + 0.5) / D;
          out[o++] = (w + 0.5) / W;
          out[o++] = (h + 0.5) / H;
        }
  return out;
}

/** Seeded host generator for CoTr's own initialisation (mulberry32 + Box-Muller). */
class InitRng {
  constructor(private state: number) {}
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = Math.max(this.uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
}

function setHost(t: Tensor, data: Float32Array): void {
  t.device.upload(t.buffer, t.byteOffset, data);
}

function xavierUniform(t: Tensor, rng: InitRng): void {
  const [out, inF] = t.shape as [number, number];
  const a = Math.sqrt(6 / (inF + out));
  setHost(t, Float32Array.from({ length: t.size }, () => (rng.uniform() * 2 - 1) * a));
}

/** CoTr MSDeformAttn (3D): sampling_offsets, attention_weights, value_proj, output_proj. */
export class MSDeformAttn3D extends Module {
  readonly sampling_offsets: Linear;
  readonly attention_weights: Linear;
  readonly value_proj: Linear;
  readonly output_proj: Linear;
  constructor(device: Device, readonly dModel: number, readonly nLevels: number, readonly nHeads: number, readonly nPoints: number) {
    super(device);
    if (dModel % nHeads !== 0) throw new PulmoError(`MSDeformAttn3D: d_model ${dModel} must be divisible by n_heads ${nHeads}`);
    this.sampling_offsets = this.child("sampling_offsets", new Linear(device, dModel, nHeads * nLevels * nPoints * 3));
    this.attention_weights = this.child("attention_weights", new Linear(device, dModel, nHeads * nLevels * nPoints));
    this.value_proj = this.child("value_proj", new Linear(device, dModel, dModel));
    this.output_proj = this.child("output_proj", new Linear(device, dModel, dModel));
  }

  /** CoTr's reset_parameters: W_s = 0, b_s = the direction grid (p+1)·u_m/‖u_m‖∞ with
   * u_m = (cos θ, sin θ cos θ, sin θ sin θ), θ = 2πm/M; W_a = b_a = 0; value/output projections
   * xavier-uniform with zero bias. */
  resetParameters(rng: InitRng): void {
    const { nHeads: M, nLevels: L, nPoints: P } = this;
    setHost(this.sampling_offsets.weight, new Float32Array(this.sampling_offsets.weight.size));
    const grid = new Float32Array(M * L * P * 3);
    for (let m = 0; m < M; m++) {
      const th = (m * 2 * Math.PI) / M;
      const u = [Math.cos(th), Math.sin(th) * Math.cos(th), Math.sin(th) * Math.sin(th)];
      const inf = Math.max(...u.map(Math.abs));
      for (let l = 0; l < L; l++)
        for (let p = 0; p < P; p++) for (let j = 0; j < 3; j++) grid[((m * L + l) * P + p) * 3 + j] = (u[j]! / inf) * (p + 1);
    }
    setHost(this.sampling_offsets.bias!, grid);
    setHost(this.attention_weights.weight, new Float32Array(this.attention_weights.weight.size));
    setHost(this.attention_weights.bias!, new Float32Array(this.attention_weights.bias!.size));
    for (const lin of [this.value_proj, this.output_proj]) {
      xavierUniform(lin.weight, rng);
      setHost(lin.bias!, new Float32Array(lin.bias!.size));
    }
  }

  /** query [N, Lq, C] (= src + pos), valueIn [N, S, C]; ref: [Lq, 1, 1, 1, 3] reference points
   * (d, w, h); invNorm: [L, 1, 3] per-level normaliser (D_l, W_l, H_l). */
  forward(query: Tensor, ref: Tensor, valueIn: Tensor, shapes: readonly SpatialShape3d[], norm: Tensor): Tensor {
    const [N, Lq] = query.shape as [number, number];
    const S = valueIn.shape[1]!;
    const M = this.nHeads, L = this.nLevels, P = this.nPoints;
    const value = reshape(this.value_proj.forward(valueIn), [N, S, M, this.dModel / M]);
    const off = reshape(this.sampling_offsets.forward(query), [N, Lq, M, L, P, 3]);
    const aw = reshape(softmax(reshape(this.attention_weights.forward(query), [N, Lq, M, L * P]), -1), [N, Lq, M, L, P]);
    // CoTr quirk (MODELS.md §1.3 steps 4-6): loc = (d,w,h) reference + offset / (D,W,H); the core
    // reads the components as (x→W, y→H, z→D), exactly as grid_sample in CoTr.
    const loc = add(ref, div(off, norm));
    return this.output_proj.forward(msDeformAttn3d(value, shapes, loc, aw));
  }
}

/** Post-norm DeTrans layer (CoTr DeformableTransformerEncoderLayer). */
export class DeTransLayer extends Module {
  readonly self_attn: MSDeformAttn3D;
  readonly dropout1: Dropout;
  readonly norm1: LayerNorm;
  readonly linear1: Linear;
  readonly dropout2: Dropout;
  readonly linear2: Linear;
  readonly dropout3: Dropout;
  readonly norm2: LayerNorm;
  constructor(device: Device, cfg: DeformableTransformerConfig) {
    super(device);
    this.self_attn = this.child("self_attn", new MSDeformAttn3D(device, cfg.d_model, cfg.n_levels, cfg.n_heads, cfg.n_points));
    this.dropout1 = this.child("dropout1", new Dropout(device, cfg.dropout));
    this.norm1 = this.child("norm1", new LayerNorm(device, cfg.d_model));
    this.linear1 = this.child("linear1", new Linear(device, cfg.d_model, cfg.d_ffn));
    this.dropout2 = this.child("dropout2", new Dropout(device, cfg.dropout));
    this.linear2 = this.child("linear2", new Linear(device, cfg.d_ffn, cfg.d_model));
    this.dropout3 = this.child("dropout3", new Dropout(device, cfg.dropout));
    this.norm2 = this.child("norm2", new LayerNorm(device, cfg.d_model));
  }

  forward(src: Tensor, pos: Tensor, ref: Tensor, shapes: readonly SpatialShape3d[], norm: Tensor): Tensor {
    const attn = this.self_attn.forward(add(src, pos), ref, src, shapes, norm);
    src = this.norm1.forward(add(src, this.dropout1.forward(attn)));
    const src2 = this.linear2.forward(this.dropout2.forward(gelu(this.linear1.forward(src))));
    return this.norm2.forward(add(src, this.dropout3.forward(src2)));
  }
}

/** nn.ModuleList of DeTrans layers (names 0, 1, ...). */
class LayerList extends Module {
  readonly items: DeTransLayer[] = [];
  add(m: DeTransLayer): void {
    this.child(String(this.items.length), m);
    this.items.push(m);
  }
}

/** CoTr's _DeTransEncoder: holds `layers`. */
class DeTransEncoder extends Module {
  readonly layers: LayerList;
  constructor(device: Device, cfg: DeformableTransformerConfig) {
    super(device);
    this.layers = this.child("layers", new LayerList(device));
    for (let i = 0; i < cfg.n_layers; i++) this.layers.add(new DeTransLayer(device, cfg));
  }
}

/** CoTr DeformableTransformer (encoder only). Keys: level_embed [L, d], encoder.layers.{i}.* */
export class DeformableTransformer extends Module {
  readonly level_embed: Tensor;
  readonly encoder: DeTransEncoder;
  constructor(device: Device, readonly cfg: DeformableTransformerConfig) {
    super(device);
    sinePositionEmbedding3d(cfg.d_model, [1, 1, 1]); // validates d_model's positional blocks
    this.encoder = this.child("encoder", new DeTransEncoder(device, cfg));
    this.level_embed = this.param("level_embed", [cfg.n_levels, cfg.d_model]);
    this.resetParameters();
  }

  /** CoTr's initialisation (for training from scratch; loading a state dict overwrites it):
   * xavier-uniform for the weight matrices (linear1, linear2; value/output projections in
   * MSDeformAttn's reset_parameters, which also sets the offset grid and zero attention weights), and
   * level_embed ~ N(0, 1). Biases of linear1/linear2 and the LayerNorms keep PyTorch's defaults. */
  resetParameters(seed = 0x5eed): void {
    const rng = new InitRng(seed);
    for (const layer of this.encoder.layers.items) {
      xavierUniform(layer.linear1.weight, rng);
      xavierUniform(layer.linear2.weight, rng);
      layer.self_attn.resetParameters(rng);
    }
    setHost(this.level_embed, Float32Array.from({ length: this.level_embed.size }, () => rng.normal()));
  }

  /** Host constants per level-shape list (PE per level, reference points, normaliser), f32. */
  private readonly constants = new Map<string, { pe: Float32Array[]; ref: Float32Array; norm: Float32Array }>();

  private hostConstants(shapes: readonly SpatialShape3d[]) {
    const key = JSON.stringify(shapes);
    let c = this.constants.get(key);
    if (!c) {
      if (this.constants.size >= 8) this.constants.clear();
      c = {
        pe: shapes.map((sh) => Float32Array.from(sinePositionEmbedding3d(this.cfg.d_model, sh))),
        ref: Float32Array.from(referencePoints3d(shapes)),
        norm: Float32Array.from(shapes.flatMap(([d, h, w]) => [d, w, h])),
      };
      this.constants.set(key, c);
    }
    return c;
  }

  /** srcs: L feature maps [N, d_model, D_l, H_l, W_l] → tokens [N, sum(DHW), d_model]. */
  forward(srcs: Tensor[]): Tensor {
    const { d_model: C, n_levels: L } = this.cfg;
    if (srcs.length !== L) throw new PulmoError(`deformable transformer: expected ${L} levels, got ${srcs.length}`);
    const N = srcs[0]!.shape[0]!;
    for (const s of srcs)
      if (s.rank !== 5 || s.shape[0] !== N || s.shape[1] !== C)
        throw new PulmoError(`deformable transformer: each level must be [${N}, ${C}, D, H, W], got ${shapeStr(s.shape)}`);
    const shapes = srcs.map((s) => [s.shape[2]!, s.shape[3]!, s.shape[4]!] as const);
    let x = concat(srcs.map((s) => transpose(reshape(s, [N, C, s.shape[2]! * s.shape[3]! * s.shape[4]!]), 1, 2)), 1);
    const S = x.shape[1]!;
    const host = this.hostConstants(shapes);
    // pos = sine PE (host, float64 → f32) + level_embed[l] over the tokens of level l
    const pos = concat(
      shapes.map((sh, l) => {
        const n = sh[0] * sh[1] * sh[2];
        const pe = Tensor.from(this.device, host.pe[l]!, [n, C]);
        return add(pe, slice(this.level_embed, 0, l, l + 1));
      }),
      0,
    );
    const posB = reshape(pos, [1, S, C]);
    const ref = Tensor.from(this.device, host.ref, [S, 1, 1, 1, 3]);
    const norm = Tensor.from(this.device, host.norm, [L, 1, 3]);
    for (const layer of this.encoder.layers.items) x = layer.forward(x, posB, ref, shapes, norm);
    return x;
  }
}

/** Splits tokens [N, sum(DHW), C] back into maps [N, C, D, H, W] of the given level shapes. */
export function splitTokens(tokens: Tensor, shapes: readonly SpatialShape3d[]): Tensor[] {
  const [N, , C] = tokens.shape as [number, number, number];
  const out: Tensor[] = [];
  let s = 0;
  for (const [d, h, w] of shapes) {
    const n = d * h * w;
    out.push(reshape(transpose(slice(tokens, 1, s, s + n), 1, 2), [N, C, d, h, w]));
    s += n;
  }
  return out;
}

/** Trainable parameters of the transformer. */
export function deformableTransformerParams(cfg: DeformableTransformerConfig): number {
  const { d_model: C, n_heads: M, n_levels: L, n_points: P, d_ffn: F } = cfg;
  const lin = (i: number, o: number) => i * o + o;
  const layer = lin(C, M * L * P * 3) + lin(C, M * L * P) + 2 * lin(C, C) + 2 * C + lin(C, F) + lin(F, C) + 2 * C;
  return L * C + cfg.n_layers * layer;
}

/** Forward MACs of the transformer (linears: output elements × in_features; MSDA sampling:
 * N·Lq·M·L·P·9·Dh per layer) for batch N and level shapes. */
export function deformableTransformerMacs(cfg: DeformableTransformerConfig, n: number, shapes: readonly SpatialShape3d[]): number {
  const { d_model: C, n_heads: M, n_levels: L, n_points: P, d_ffn: F } = cfg;
  const S = shapes.reduce((s, [d, h, w]) => s + d * h * w, 0);
  const rows = n * S;
  const linear = rows * (C * C * 2 + M * L * P * 3 * C + M * L * P * C + F * C * 2);
  const sampling = rows * M * L * P * 9 * (C / M);
  return cfg.n_layers * (linear + sampling);
}

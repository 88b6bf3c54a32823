// UNETR (MONAI monai/networks/nets/unetr.py + vit.py and the blocks they use), layer for layer
// with PyTorch's state-dict names. Spec: ../shared/MODELS.md §3; reference: shared/reference/models.py
// class UNETR. Notes and limits: docs/models/unetr.md.
import { PulmoError, Tensor, shapeStr, type Device } from "../runtime/index.ts";
import { Module, type HostArray } from "../graph/module.ts";
import { Conv3d, ConvTranspose3d, Dropout, InstanceNorm, LayerNorm, Linear } from "../graph/nn.ts";
import { Generator } from "../graph/ops/dropout.ts";
import {
  add,
  concat,
  gelu,
  leakyRelu,
  matmul,
  mulScalar,
  permute,
  reshape,
  slice,
  softmax,
} from "../graph/ops/index.ts";
import type { ModelFactory, SegmentationNet } from "./model.ts";
import { checkConfigKeys, checkDropout, checkPosInts, isPosIntList } from "./config.ts";

/** MONAI UNETR's ViT patch size (fixed there and in the reference). */
export const PATCH = 16;

export interface UnetrConfig {
  in_channels: number;
  num_classes: number;
  img_size: [number, number, number];
  feature_size: number;
  hidden_size: number;
  mlp_dim: number;
  num_heads: number;
  /** MONAI: 12 */
  num_layers: number;
  /** 0-based block outputs fed to encoder2/3/4 (MONAI: [3, 6, 9]) */
  skip_layers: [number, number, number];
  dropout: number;
  qkv_bias: boolean;
}

const DEFAULTS: Omit<UnetrConfig, "in_channels" | "num_classes" | "img_size"> = {
  feature_size: 16,
  hidden_size: 768,
  mlp_dim: 3072,
  num_heads: 12,
  num_layers: 12,
  skip_layers: [3, 6, 9],
  dropout: 0,
  qkv_bias: false,
};

const KNOWN = new Set([
  "in_channels", "num_classes", "img_size", "feature_size", "hidden_size", "mlp_dim", "num_heads",
  "num_layers", "skip_layers", "dropout", "qkv_bias", "input_shape",
]);


/** Fills MONAI's defaults and checks every key; throws a PulmoError naming the bad key. */
export function normalizeConfig(raw: Record<string, any>): UnetrConfig {
  const bad = checkConfigKeys("unetr", raw, KNOWN);
  const c = { ...DEFAULTS, ...raw } as UnetrConfig & { input_shape?: number[] };
  checkPosInts(bad, ["in_channels", "num_classes", "feature_size", "hidden_size", "mlp_dim", "num_heads", "num_layers"], (k) => c[k as keyof UnetrConfig]);
  if (!isPosIntList(c.img_size, 3))
    bad(`'img_size' must be 3 positive integers [D, H, W], got ${JSON.stringify(c.img_size)}`);
  if (c.img_size.some((s) => s % PATCH !== 0))
    bad(`every 'img_size' dim must be a multiple of the patch size ${PATCH}, got [${c.img_size}]`);
  if (c.hidden_size % c.num_heads !== 0)
    bad(`'hidden_size' ${c.hidden_size} must be divisible by 'num_heads' ${c.num_heads}`);
  if (!Array.isArray(c.skip_layers) || c.skip_layers.length !== 3 ||
      !c.skip_layers.every((i) => Number.isInteger(i) && i >= 0 && i < c.num_layers))
    bad(`'skip_layers' must be 3 block indices in [0, ${c.num_layers}), got ${JSON.stringify(c.skip_layers)}`);
  checkDropout(bad, c.dropout);
  if (typeof c.qkv_bias !== "boolean") bad(`'qkv_bias' must be a boolean, got ${JSON.stringify(c.qkv_bias)}`);
  if (c.input_shape !== undefined) {
    const s = c.input_shape;
    if (!Array.isArray(s) || s.length !== 5 || s[1] !== c.in_channels || s.slice(2).some((d, i) => d !== c.img_size[i]))
      bad(`'input_shape' ${JSON.stringify(s)} must be [N, ${c.in_channels}, ${c.img_size.join(", ")}]`);
  }
  return {
    in_channels: c.in_channels, num_classes: c.num_classes, img_size: [...c.img_size] as [number, number, number],
    feature_size: c.feature_size, hidden_size: c.hidden_size, mlp_dim: c.mlp_dim, num_heads: c.num_heads,
    num_layers: c.num_layers, skip_layers: [...c.skip_layers] as [number, number, number], dropout: c.dropout,
    qkv_bias: c.qkv_bias,
  };
}

// ---------------------------------------------------------------------------------------------
// Host initialisation of the position embeddings: trunc_normal(std 0.02, [-2, 2]) as MONAI.

function truncNormal(n: number, std: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; ) {
    const z = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()) * std;
    if (z >= -2 && z <= 2) out[i++] = z;
  }
  return out;
}

const dropoutOf = (device: Device, p: number, seed: number) => new Dropout(device, p, false, new Generator(seed));
const drop = (d: Dropout, x: Tensor) => (d.p > 0 ? d.forward(x) : x);

// ---------------------------------------------------------------------------------------------
// ViT (MONAI monai/networks/nets/vit.py with classification=False)

class PatchEmbed extends Module {
  readonly patch_embeddings: Conv3d;
  readonly position_embeddings: Tensor;
  readonly dropout: Dropout;
  constructor(device: Device, readonly cin: number, readonly grid: [number, number, number], readonly hidden: number, p: number) {
    super(device);
    const n = grid[0] * grid[1] * grid[2];
    // MONAI registers patch_embeddings (child) before position_embeddings (parameter); PyTorch's
    // state_dict still lists own parameters first, which `Module.stateDict` reproduces.
    this.position_embeddings = this.param("position_embeddings", [1, n, hidden], truncNormal(n * hidden, 0.02, 0x5eed));
    this.patch_embeddings = this.child("patch_embeddings", new Conv3d(device, cin, hidden, PATCH, { stride: PATCH }));
    this.dropout = this.child("dropout", dropoutOf(device, p, 101));
  }
  forward(x: Tensor): Tensor {
    const y = this.patch_embeddings.forward(x); // [N, C, d, h, w]
    const n = y.shape[0]!;
    const tokens = permute(reshape(y, [n, this.hidden, -1]), [0, 2, 1]); // flatten(2).transpose(-1, -2)
    return drop(this.dropout, add(tokens, this.position_embeddings));
  }
}

/** MONAI SABlock: qkv Linear (bias per config), softmax(q·kᵀ·Dh^-½)·v per head, out_proj. */
class SABlock extends Module {
  readonly out_proj: Linear;
  readonly qkv: Linear;
  readonly drop_output: Dropout;
  readonly drop_weights: Dropout;
  readonly dh: number;
  readonly scale: number;
  constructor(device: Device, readonly hidden: number, readonly heads: number, p: number, qkvBias: boolean, seed: number) {
    super(device);
    this.dh = hidden / heads;
    this.scale = this.dh ** -0.5;
    this.out_proj = this.child("out_proj", new Linear(device, hidden, hidden));
    this.qkv = this.child("qkv", new Linear(device, hidden, 3 * hidden, { bias: qkvBias }));
    this.drop_output = this.child("drop_output", dropoutOf(device, p, seed));
    this.drop_weights = this.child("drop_weights", dropoutOf(device, p, seed + 1));
  }
  forward(x: Tensor): Tensor {
    const [b, t, c] = x.shape as [number, number, number];
    // "b h (qkv l d) -> qkv b l h d": the qkv output index is s*C + h*Dh + d
    const qkv = reshape(this.qkv.forward(x), [b, t, 3, this.heads, this.dh]);
    const part = (s: number) => reshape(slice(qkv, 2, s, s + 1), [b, t, this.heads, this.dh]);
    const q = permute(part(0), [0, 2, 1, 3]); // [B, H, T, Dh]
    const kT = permute(part(1), [0, 2, 3, 1]); // [B, H, Dh, T]
    const v = permute(part(2), [0, 2, 1, 3]); // [B, H, T, Dh]
    const att = drop(this.drop_weights, softmax(mulScalar(matmul(q, kT), this.scale), -1)); // [B, H, T, T]
    const y = reshape(permute(matmul(att, v), [0, 2, 1, 3]), [b, t, c]);
    return drop(this.drop_output, this.out_proj.forward(y));
  }
}

/** MONAI MLPBlock: linear1 → GELU (erf) → linear2, dropout after each (mode "vit"). */
class MLPBlock extends Module {
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly drop1: Dropout;
  readonly drop2: Dropout;
  constructor(device: Device, hidden: number, mlp: number, p: number, seed: number) {
    super(device);
    this.linear1 = this.child("linear1", new Linear(device, hidden, mlp));
    this.linear2 = this.child("linear2", new Linear(device, mlp, hidden));
    this.drop1 = this.child("drop1", dropoutOf(device, p, seed));
    this.drop2 = this.child("drop2", dropoutOf(device, p, seed + 1));
  }
  forward(x: Tensor): Tensor {
    return drop(this.drop2, this.linear2.forward(drop(this.drop1, gelu(this.linear1.forward(x)))));
  }
}

/** MONAI TransformerBlock (pre-norm): x + attn(LN1(x)), then + mlp(LN2(x)). Registration order
 * mlp, norm1, attn, norm2 as MONAI's __init__. */
class TransformerBlock extends Module {
  readonly mlp: MLPBlock;
  readonly norm1: LayerNorm;
  readonly attn: SABlock;
  readonly norm2: LayerNorm;
  constructor(device: Device, c: UnetrConfig, seed: number) {
    super(device);
    this.mlp = this.child("mlp", new MLPBlock(device, c.hidden_size, c.mlp_dim, c.dropout, seed));
    this.norm1 = this.child("norm1", new LayerNorm(device, c.hidden_size));
    this.attn = this.child("attn", new SABlock(device, c.hidden_size, c.num_heads, c.dropout, c.qkv_bias, seed + 2));
    this.norm2 = this.child("norm2", new LayerNorm(device, c.hidden_size));
  }
  forward(x: Tensor): Tensor {
    const h = add(x, this.attn.forward(this.norm1.forward(x)));
    return add(h, this.mlp.forward(this.norm2.forward(h)));
  }
}

class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(device: Device, items: M[]) {
    super(device);
    this.items = items.map((m, i) => this.child(String(i), m));
  }
}

class ViT extends Module {
  readonly patch_embedding: PatchEmbed;
  readonly blocks: ModuleList<TransformerBlock>;
  readonly norm: LayerNorm;
  constructor(device: Device, c: UnetrConfig, grid: [number, number, number]) {
    super(device);
    this.patch_embedding = this.child("patch_embedding", new PatchEmbed(device, c.in_channels, grid, c.hidden_size, c.dropout));
    this.blocks = this.child("blocks", new ModuleList(device,
      Array.from({ length: c.num_layers }, (_, i) => new TransformerBlock(device, c, 1000 + 10 * i))));
    this.norm = this.child("norm", new LayerNorm(device, c.hidden_size));
  }
  /** The layer-normed last output and every block's output (hidden_states_out). */
  forward(x: Tensor): { out: Tensor; hidden: Tensor[] } {
    let h = this.patch_embedding.forward(x);
    const hidden: Tensor[] = [];
    for (const b of this.blocks.items) {
      h = b.forward(h);
      hidden.push(h);
    }
    return { out: this.norm.forward(h), hidden };
  }
}

// ---------------------------------------------------------------------------------------------
// MONAI dynunet / unetr blocks (norm "instance" = IN without affine, LeakyReLU 0.01, no conv bias)

/** monai Convolution with conv_only=True: a Sequential holding only `conv`. */
class MConv extends Module {
  readonly conv: Conv3d | ConvTranspose3d;
  constructor(device: Device, cin: number, cout: number, k: number, stride: number, opts: { transposed?: boolean; bias?: boolean } = {}) {
    super(device);
    const bias = opts.bias ?? false;
    this.conv = this.child("conv", opts.transposed
      ? new ConvTranspose3d(device, cin, cout, k, { stride, padding: 0, outputPadding: 0, bias })
      : new Conv3d(device, cin, cout, k, { stride, padding: Math.floor(k / 2), bias }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

/** MONAI UnetResBlock: conv1 k3 → IN → LReLU → conv2 k3 → IN; + (IN(conv3 1³(x)) or x); LReLU. */
class UnetResBlock extends Module {
  readonly conv1: MConv;
  readonly conv2: MConv;
  readonly norm1: InstanceNorm;
  readonly norm2: InstanceNorm;
  readonly conv3: MConv | null = null;
  readonly norm3: InstanceNorm | null = null;
  constructor(device: Device, cin: number, cout: number) {
    super(device);
    this.conv1 = this.child("conv1", new MConv(device, cin, cout, 3, 1));
    this.conv2 = this.child("conv2", new MConv(device, cout, cout, 3, 1));
    this.norm1 = this.child("norm1", new InstanceNorm(device, cout));
    this.norm2 = this.child("norm2", new InstanceNorm(device, cout));
    if (cin !== cout) {
      this.conv3 = this.child("conv3", new MConv(device, cin, cout, 1, 1));
      this.norm3 = this.child("norm3", new InstanceNorm(device, cout));
    }
  }
  forward(x: Tensor): Tensor {
    const out = this.norm2.forward(this.conv2.forward(leakyRelu(this.norm1.forward(this.conv1.forward(x)), 0.01)));
    const r = this.conv3 ? this.norm3!.forward(this.conv3.forward(x)) : x;
    return leakyRelu(add(out, r), 0.01);
  }
}

class UnetrBasicBlock extends Module {
  readonly layer: UnetResBlock;
  constructor(device: Device, cin: number, cout: number) {
    super(device);
    this.layer = this.child("layer", new UnetResBlock(device, cin, cout));
  }
  forward(x: Tensor): Tensor {
    return this.layer.forward(x);
  }
}

/** nn.Sequential(ConvT k2s2, UnetResBlock) inside UnetrPrUpBlock.blocks. */
class UpResPair extends Module {
  readonly up: MConv;
  readonly res: UnetResBlock;
  constructor(device: Device, c: number) {
    super(device);
    this.up = this.child("0", new MConv(device, c, c, 2, 2, { transposed: true }));
    this.res = this.child("1", new UnetResBlock(device, c, c));
  }
  forward(x: Tensor): Tensor {
    return this.res.forward(this.up.forward(x));
  }
}

class UnetrPrUpBlock extends Module {
  readonly transp_conv_init: MConv;
  readonly blocks: ModuleList<UpResPair>;
  constructor(device: Device, cin: number, cout: number, numLayer: number) {
    super(device);
    this.transp_conv_init = this.child("transp_conv_init", new MConv(device, cin, cout, 2, 2, { transposed: true }));
    this.blocks = this.child("blocks", new ModuleList(device, Array.from({ length: numLayer }, () => new UpResPair(device, cout))));
  }
  forward(x: Tensor): Tensor {
    let h = this.transp_conv_init.forward(x);
    for (const b of this.blocks.items) h = b.forward(h);
    return h;
  }
}

class UnetrUpBlock extends Module {
  readonly transp_conv: MConv;
  readonly conv_block: UnetResBlock;
  constructor(device: Device, cin: number, cout: number) {
    super(device);
    this.transp_conv = this.child("transp_conv", new MConv(device, cin, cout, 2, 2, { transposed: true }));
    this.conv_block = this.child("conv_block", new UnetResBlock(device, 2 * cout, cout));
  }
  forward(x: Tensor, skip: Tensor): Tensor {
    return this.conv_block.forward(concat([this.transp_conv.forward(x), skip], 1));
  }
}

class UnetOutBlock extends Module {
  readonly conv: MConv;
  constructor(device: Device, cin: number, cout: number) {
    super(device);
    this.conv = this.child("conv", new MConv(device, cin, cout, 1, 1, { bias: true }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

// ---------------------------------------------------------------------------------------------

export class UNETR extends Module implements SegmentationNet {
  readonly config: UnetrConfig;
  readonly grid: [number, number, number];
  readonly vit: ViT;
  readonly encoder1: UnetrBasicBlock;
  readonly encoder2: UnetrPrUpBlock;
  readonly encoder3: UnetrPrUpBlock;
  readonly encoder4: UnetrPrUpBlock;
  readonly decoder5: UnetrUpBlock;
  readonly decoder4: UnetrUpBlock;
  readonly decoder3: UnetrUpBlock;
  readonly decoder2: UnetrUpBlock;
  readonly out: UnetOutBlock;

  constructor(device: Device, config: Record<string, any>) {
    super(device);
    const c = (this.config = normalizeConfig(config));
    const f = c.feature_size, h = c.hidden_size;
    this.grid = c.img_size.map((s) => s / PATCH) as [number, number, number];
    this.vit = this.child("vit", new ViT(device, c, this.grid));
    this.encoder1 = this.child("encoder1", new UnetrBasicBlock(device, c.in_channels, f));
    this.encoder2 = this.child("encoder2", new UnetrPrUpBlock(device, h, 2 * f, 2));
    this.encoder3 = this.child("encoder3", new UnetrPrUpBlock(device, h, 4 * f, 1));
    this.encoder4 = this.child("encoder4", new UnetrPrUpBlock(device, h, 8 * f, 0));
    this.decoder5 = this.child("decoder5", new UnetrUpBlock(device, h, 8 * f));
    this.decoder4 = this.child("decoder4", new UnetrUpBlock(device, 8 * f, 4 * f));
    this.decoder3 = this.child("decoder3", new UnetrUpBlock(device, 4 * f, 2 * f));
    this.decoder2 = this.child("decoder2", new UnetrUpBlock(device, 2 * f, f));
    this.out = this.child("out", new UnetOutBlock(device, f, c.num_classes));
  }

  /** Tokens [N, T, C] → [N, C, d, h, w] (MONAI proj_feat). */
  private projFeat(x: Tensor): Tensor {
    const [n, , ch] = x.shape as [number, number, number];
    return permute(reshape(x, [n, ...this.grid, ch]), [0, 4, 1, 2, 3]);
  }

  private checkInput(x: Tensor): void {
    const c = this.config;
    if (x.rank !== 5 || x.shape[0]! < 1 || x.shape[1] !== c.in_channels || x.shape.slice(2).some((d, i) => d !== c.img_size[i]))
      throw new PulmoError(`unetr: input must be [N, ${c.in_channels}, ${c.img_size.join(", ")}] (the position embeddings fix img_size), got ${shapeStr(x.shape)}`);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    const s = this.config.skip_layers;
    const { out, hidden } = this.vit.forward(x);
    const enc1 = this.encoder1.forward(x);
    const enc2 = this.encoder2.forward(this.projFeat(hidden[s[0]]!));
    const enc3 = this.encoder3.forward(this.projFeat(hidden[s[1]]!));
    const enc4 = this.encoder4.forward(this.projFeat(hidden[s[2]]!));
    const d3 = this.decoder5.forward(this.projFeat(out), enc4);
    const d2 = this.decoder4.forward(d3, enc3);
    const d1 = this.decoder3.forward(d2, enc2);
    return this.out.forward(this.decoder2.forward(d1, enc1));
  }
}

export const factory: ModelFactory = (device, config) => new UNETR(device, config);

// ---------------------------------------------------------------------------------------------
// Counts (no GPU): parameters and forward MACs as shared/reference/models.py count_macs.

/** Number of parameters (no buffers) of UNETR built from `config`. */
export function parameterCount(config: Record<string, any>): number {
  const c = normalizeConfig(config);
  const f = c.feature_size, h = c.hidden_size, m = c.mlp_dim;
  const tokens = c.img_size.reduce((a, s) => a * (s / PATCH), 1);
  const conv = (cin: number, cout: number, k: number) => cin * cout * k ** 3;
  const res = (cin: number, cout: number) => conv(cin, cout, 3) + conv(cout, cout, 3) + (cin !== cout ? conv(cin, cout, 1) : 0);
  const block = 2 * 2 * h + (3 * h * h + (c.qkv_bias ? 3 * h : 0)) + (h * h + h) + (h * m + m) + (m * h + h);
  const vit = tokens * h + conv(c.in_channels, h, PATCH) + h + c.num_layers * block + 2 * h;
  const prUp = (cin: number, cout: number, n: number) => conv(cin, cout, 2) + n * (conv(cout, cout, 2) + res(cout, cout));
  const up = (cin: number, cout: number) => conv(cin, cout, 2) + res(2 * cout, cout);
  return vit + res(c.in_channels, f) + prUp(h, 2 * f, 2) + prUp(h, 4 * f, 1) + prUp(h, 8 * f, 0) +
    up(h, 8 * f) + up(8 * f, 4 * f) + up(4 * f, 2 * f) + up(2 * f, f) + conv(f, c.num_classes, 1) + c.num_classes;
}

/** Forward MACs for an input [N, C, D, H, W]: conv (output voxels × Cin × k³), transposed conv
 * (input voxels × Cout × k³), linear (outputs × in) and the attention matmuls QKᵀ and AV
 * (2·N·heads·T²·Dh), as MODELS.md / count_macs define them. */
export function forwardMacs(config: Record<string, any>, inputShape: readonly number[]): number {
  const c = normalizeConfig(config);
  if (inputShape.length !== 5 || inputShape[1] !== c.in_channels || inputShape.slice(2).some((d, i) => d !== c.img_size[i]))
    throw new PulmoError(`unetr forwardMacs: input shape ${shapeStr(inputShape)} must be [N, ${c.in_channels}, ${c.img_size.join(", ")}]`);
  const n = inputShape[0]!;
  const f = c.feature_size, h = c.hidden_size, m = c.mlp_dim;
  const V = c.img_size[0] * c.img_size[1] * c.img_size[2];
  const T = V / PATCH ** 3;
  let macs = 0;
  const conv = (voxOut: number, cin: number, cout: number, k: number) => (macs += n * voxOut * cout * cin * k ** 3);
  const convT = (voxIn: number, cin: number, cout: number) => (macs += n * voxIn * cin * cout * 8);
  const res = (vox: number, cin: number, cout: number) => {
    conv(vox, cin, cout, 3);
    conv(vox, cout, cout, 3);
    if (cin !== cout) conv(vox, cin, cout, 1);
  };
  // ViT
  conv(T, c.in_channels, h, PATCH);
  const dh = h / c.num_heads;
  macs += c.num_layers * n * T * (3 * h * h + h * h + h * m + m * h + 2 * c.num_heads * T * dh);
  // encoders: token grid T is 1/16 per axis; each ConvT doubles every axis (voxels ×8)
  res(V, c.in_channels, f);
  convT(T, h, 2 * f);
  convT(8 * T, 2 * f, 2 * f);
  res(64 * T, 2 * f, 2 * f);
  convT(64 * T, 2 * f, 2 * f);
  res(512 * T, 2 * f, 2 * f);
  convT(T, h, 4 * f);
  convT(8 * T, 4 * f, 4 * f);
  res(64 * T, 4 * f, 4 * f);
  convT(T, h, 8 * f);
  // decoders
  convT(T, h, 8 * f);
  res(8 * T, 16 * f, 8 * f);
  convT(8 * T, 8 * f, 4 * f);
  res(64 * T, 8 * f, 4 * f);
  convT(64 * T, 4 * f, 2 * f);
  res(512 * T, 4 * f, 2 * f);
  convT(512 * T, 2 * f, f);
  res(V, 2 * f, f);
  conv(V, f, c.num_classes, 1);
  return macs;
}

// ---------------------------------------------------------------------------------------------
// MONAI checkpoint converter

export interface MonaiConversion {
  /** the state dict with the names and layouts this module loads (strict) */
  stateDict: Map<string, HostArray>;
  /** source keys dropped: MONAI ≥ 1.4's unused vit.blocks.*.norm_cross_attn.* / cross_attn.* */
  ignored: string[];
  /** source keys rewritten (the 'perceptron' patch embedding), as "from -> to" */
  converted: string[];
}

const CROSS_ATTN = /^vit\.blocks\.\d+\.(norm_cross_attn|cross_attn)\./;
const PERCEPTRON_W = "vit.patch_embedding.patch_embeddings.1.weight";
const PERCEPTRON_B = "vit.patch_embedding.patch_embeddings.1.bias";

/**
 * Converts a MONAI UNETR state dict (any MONAI version; keys as `UNETR.state_dict()`, without a
 * `module.` or `state_dict` wrapper) for `UNETR.loadStateDict`:
 * - drops the unused `vit.blocks.{i}.norm_cross_attn.*` and `vit.blocks.{i}.cross_attn.*` that
 *   MONAI ≥ 1.4 stores (listed in `ignored`);
 * - rewrites the proj_type 'perceptron' patch embedding (the official BTCV checkpoint):
 *   `patch_embeddings.1.weight [hidden, 16³·C]`, a Linear over the patch vector ordered
 *   (p_D, p_H, p_W, c) with c fastest, becomes the conv weight `patch_embeddings.weight
 *   [hidden, C, 16, 16, 16]` = W.view(hidden, 16, 16, 16, C).permute(0, 4, 1, 2, 3); its bias
 *   becomes `patch_embeddings.bias`.
 * Every other key passes through unchanged (same arrays).
 */
export function fromMonaiUnetr(stateDict: Map<string, HostArray> | Record<string, HostArray>): MonaiConversion {
  const src = stateDict instanceof Map ? stateDict : new Map(Object.entries(stateDict));
  const out = new Map<string, HostArray>();
  const ignored: string[] = [];
  const converted: string[] = [];
  for (const [k, v] of src) {
    if (CROSS_ATTN.test(k)) {
      ignored.push(k);
      continue;
    }
    if (k === PERCEPTRON_W) {
      if (v.shape.length !== 2) throw new PulmoError(`fromMonaiUnetr: ${k} must be 2-D [hidden, ${PATCH}³·C], got ${shapeStr(v.shape)}`);
      const [hidden, inF] = v.shape as [number, number];
      const vol = PATCH ** 3;
      if (inF % vol !== 0 || inF === 0)
        throw new PulmoError(`fromMonaiUnetr: ${k} ${shapeStr(v.shape)}: in-features ${inF} is not a multiple of ${PATCH}³ = ${vol}`);
      if (v.data.length !== hidden * inF) throw new PulmoError(`fromMonaiUnetr: ${k} holds ${v.data.length} values, shape says ${hidden * inF}`);
      const cin = inF / vol;
      const w = new Float32Array(v.data.length);
      // source [o, p, c] (p = (pd·16 + ph)·16 + pw) → target [o, c, p]
      for (let o = 0; o < hidden; o++) {
        const base = o * inF;
        for (let p = 0; p < vol; p++) for (let ch = 0; ch < cin; ch++) w[base + ch * vol + p] = v.data[base + p * cin + ch]!;
      }
      out.set("vit.patch_embedding.patch_embeddings.weight", { data: w, shape: [hidden, cin, PATCH, PATCH, PATCH] });
      converted.push(`${k} -> vit.patch_embedding.patch_embeddings.weight`);
      continue;
    }
    if (k === PERCEPTRON_B) {
      out.set("vit.patch_embedding.patch_embeddings.bias", v);
      converted.push(`${k} -> vit.patch_embedding.patch_embeddings.bias`);
      continue;
    }
    out.set(k, v);
  }
  return { stateDict: out, ignored, converted };
}

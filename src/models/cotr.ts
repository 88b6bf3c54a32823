import { PulmoError, shapeStr, tidy, type Device, type Tensor } from "../runtime/index.ts";
import { Module } from "../graph/module.ts";
import { Conv3d, ConvTranspose3d, InstanceNorm } from "../graph/nn.ts";
import { add, leakyRelu, relu, upsample } from "../graph/ops/index.ts";
import { checkConfigKeys, checkDropout, checkPosInts, isPosInt, isPosIntList } from "./config.ts";
import type { ModelFactory, SegmentationNet } from "./model.ts";
import { DeformableTransformer, deformableTransformerMacs, deformableTransformerParams, splitTokens, type DeformableTransformerConfig } from "./deformable_transformer.ts";

/** Config of CoTr (MODELS.md §1; shared/reference/models.py PRESETS.cotr). */
export interface CoTrConfig {
  in_channels: number;
  num_classes: number;
  /** "leakyrelu" (0.01, CoTr's default) or "relu" */
  act: "leakyrelu" | "relu";
  stem_kernel: number;
  /** stem stride [sD, sH, sW]; the final trilinear up-sampling uses the same factors */
  stem_stride: number[];
  /** [x0, x1, x2, x3] widths; x2 and x3 feed the transformer: widths[2] = widths[3] = d_model */
  widths: number[];
  /** residual blocks of backbone.layer1..3 */
  blocks: number[];
  d_model: number;
  n_heads: number;
  n_layers: number;
  d_ffn: number;
  n_points: number;
  dropout: number;
  /** [N, C, D, H, W]; informational (MAC counts) */
  input_shape?: number[];
}


/** The paper preset (shared/reference/models.py PRESETS.cotr.paper): a key left out of a config
 * (or null/undefined) takes this value. */
export const PAPER_CONFIG: Readonly<Record<string, any>> = Object.freeze({
  in_channels: 1, num_classes: 2, act: "leakyrelu", stem_kernel: 7, stem_stride: [1, 2, 2], widths: [64, 192, 384, 384],
  blocks: [3, 3, 2], d_model: 384, n_heads: 6, n_layers: 6, d_ffn: 1536, n_points: 4, dropout: 0.1,
});

function validate(user: Record<string, any>): CoTrConfig {
  const bad = checkConfigKeys("cotr", user, [...Object.keys(PAPER_CONFIG), "input_shape"]);
  const cfg: Record<string, any> = { ...PAPER_CONFIG };
  for (const [k, v] of Object.entries(user)) if (v !== undefined && v !== null) cfg[k] = v;
  checkPosInts(bad, ["in_channels", "num_classes", "stem_kernel", "d_model", "n_heads", "n_layers", "d_ffn", "n_points"], (k) => cfg[k]);
  if (cfg.stem_kernel % 2 !== 1) bad(`stem_kernel must be odd, got ${cfg.stem_kernel}`);
  const act = cfg.act ?? "leakyrelu";
  if (act !== "leakyrelu" && act !== "relu") bad(`act must be 'leakyrelu' or 'relu', got ${JSON.stringify(cfg.act)}`);
  const list = (k: string, n: number): number[] => {
    const v = cfg[k];
    if (!isPosIntList(v, n)) bad(`${k} must be ${n} positive integers, got ${JSON.stringify(v)}`);
    return [...v];
  };
  const stemStride = list("stem_stride", 3);
  const widths = list("widths", 4);
  const blocks = list("blocks", 3);
  if (widths[2] !== cfg.d_model || widths[3] !== cfg.d_model)
    bad(`CoTr feeds x2 and x3 straight into the transformer: widths[2] and widths[3] must equal d_model ${cfg.d_model}, got ${JSON.stringify(widths)}`);
  if (cfg.d_model % cfg.n_heads !== 0) bad(`d_model ${cfg.d_model} must be divisible by n_heads ${cfg.n_heads}`);
  const f = Math.floor(cfg.d_model / 3);
  if (f % 2 !== 0 || (f + (cfg.d_model % 3)) % 2 !== 0)
    bad(`d_model ${cfg.d_model}: the positional blocks floor(d/3) and floor(d/3) + d%3 must both be even`);
  const dropout = cfg.dropout ?? 0;
  checkDropout(bad, dropout, cfg.dropout);
  if (cfg.input_shape !== undefined && !isPosIntList(cfg.input_shape, 5))
    bad(`input_shape must be [N, C, D, H, W], got ${JSON.stringify(cfg.input_shape)}`);
  return {
    in_channels: cfg.in_channels, num_classes: cfg.num_classes, act, stem_kernel: cfg.stem_kernel, stem_stride: stemStride,
    widths, blocks, d_model: cfg.d_model, n_heads: cfg.n_heads, n_layers: cfg.n_layers, d_ffn: cfg.d_ffn,
    n_points: cfg.n_points, dropout, input_shape: cfg.input_shape,
  };
}

const transformerCfg = (c: CoTrConfig): DeformableTransformerConfig => ({
  d_model: c.d_model, n_heads: c.n_heads, n_layers: c.n_layers, d_ffn: c.d_ffn, n_levels: 2, n_points: c.n_points, dropout: c.dropout,
});

const activation = (act: string) => (x: Tensor) => (act === "leakyrelu" ? leakyRelu(x, 0.01) : relu(x));

/** nn.Sequential of modules with a forward (names 0, 1, ...). */
class Sequential<M extends Module & { forward(x: Tensor): Tensor }> extends Module {
  readonly items: M[] = [];
  add(m: M): this {
    this.child(String(this.items.length), m);
    this.items.push(m);
    return this;
  }
  forward(x: Tensor): Tensor {
    for (const m of this.items) x = m.forward(x);
    return x;
  }
}

/** CNNBackbone.ResBlock: y = act(IN(conv3(x)) + r), r = x or IN(conv1(x)) (downsample). */
class EncBlock extends Module {
  readonly conv1: Conv3d;
  readonly norm1: InstanceNorm;
  readonly downsample: Sequential<Conv3d | InstanceNorm> | null;
  constructor(device: Device, cin: number, c: number, stride: number, private readonly act: string, downsample: boolean) {
    super(device);
    this.conv1 = this.child("conv1", new Conv3d(device, cin, c, 3, { stride, padding: 1, bias: false }));
    this.norm1 = this.child("norm1", new InstanceNorm(device, c, { affine: true }));
    this.downsample = downsample
      ? this.child("downsample", new Sequential<Conv3d | InstanceNorm>(device)
          .add(new Conv3d(device, cin, c, 1, { stride, bias: false }))
          .add(new InstanceNorm(device, c, { affine: true })))
      : null;
  }
  forward(x: Tensor): Tensor {
    const r = this.downsample ? this.downsample.forward(x) : x;
    return activation(this.act)(add(this.norm1.forward(this.conv1.forward(x)), r));
  }
}

class Backbone extends Module {
  readonly conv1: Conv3d;
  readonly norm1: InstanceNorm;
  readonly layers: Sequential<EncBlock>[] = [];
  constructor(device: Device, private readonly cfg: CoTrConfig) {
    super(device);
    const w = cfg.widths;
    this.conv1 = this.child("conv1", new Conv3d(device, cfg.in_channels, w[0]!, cfg.stem_kernel, {
      stride: cfg.stem_stride, padding: Math.floor(cfg.stem_kernel / 2), bias: false,
    }));
    this.norm1 = this.child("norm1", new InstanceNorm(device, w[0]!, { affine: true }));
    let cin = w[0]!;
    for (let i = 0; i < 3; i++) {
      const seq = new Sequential<EncBlock>(device).add(new EncBlock(device, cin, w[i + 1]!, 2, cfg.act, true));
      for (let j = 1; j < cfg.blocks[i]!; j++) seq.add(new EncBlock(device, w[i + 1]!, w[i + 1]!, 1, cfg.act, false));
      this.layers.push(this.child(`layer${i + 1}`, seq));
      cin = w[i + 1]!;
    }
  }
  forward(x: Tensor): Tensor[] {
    const x0 = activation(this.cfg.act)(this.norm1.forward(this.conv1.forward(x)));
    const x1 = this.layers[0]!.forward(x0);
    const x2 = this.layers[1]!.forward(x1);
    return [x0, x1, x2, this.layers[2]!.forward(x2)];
  }
}

/** ResTranUnet.Conv3dBlock: conv k3 p1 (no bias) → IN+a → act. */
class CBA extends Module {
  readonly conv: Conv3d;
  readonly norm: InstanceNorm;
  constructor(device: Device, cin: number, cout: number, private readonly act: string) {
    super(device);
    this.conv = this.child("conv", new Conv3d(device, cin, cout, 3, { padding: 1, bias: false }));
    this.norm = this.child("norm", new InstanceNorm(device, cout, { affine: true }));
  }
  forward(x: Tensor): Tensor {
    return activation(this.act)(this.norm.forward(this.conv.forward(x)));
  }
}

/** ResTranUnet.ResBlock: y = x + CBA₂(CBA₁(x)), no activation after the add. */
class DecBlock extends Module {
  readonly resconv1: CBA;
  readonly resconv2: CBA;
  constructor(device: Device, c: number, act: string) {
    super(device);
    this.resconv1 = this.child("resconv1", new CBA(device, c, c, act));
    this.resconv2 = this.child("resconv2", new CBA(device, c, c, act));
  }
  forward(x: Tensor): Tensor {
    return add(x, this.resconv2.forward(this.resconv1.forward(x)));
  }
}

/** U_ResTran3D (registration order = CoTr's __init__). */
class CoTrCore extends Module {
  readonly transposeconv_stage2: ConvTranspose3d;
  readonly transposeconv_stage1: ConvTranspose3d;
  readonly transposeconv_stage0: ConvTranspose3d;
  readonly stage2_de: DecBlock;
  readonly stage1_de: DecBlock;
  readonly stage0_de: DecBlock;
  readonly ds2_cls_conv: Conv3d;
  readonly ds1_cls_conv: Conv3d;
  readonly ds0_cls_conv: Conv3d;
  readonly cls_conv: Conv3d;
  readonly backbone: Backbone;
  readonly encoder_Detrans: DeformableTransformer;
  constructor(device: Device, private readonly cfg: CoTrConfig) {
    super(device);
    const w = cfg.widths, nc = cfg.num_classes, act = cfg.act;
    const tconv = (i: number, o: number) => new ConvTranspose3d(device, i, o, 2, { stride: 2, bias: false });
    this.transposeconv_stage2 = this.child("transposeconv_stage2", tconv(w[3]!, w[2]!));
    this.transposeconv_stage1 = this.child("transposeconv_stage1", tconv(w[2]!, w[1]!));
    this.transposeconv_stage0 = this.child("transposeconv_stage0", tconv(w[1]!, w[0]!));
    this.stage2_de = this.child("stage2_de", new DecBlock(device, w[2]!, act));
    this.stage1_de = this.child("stage1_de", new DecBlock(device, w[1]!, act));
    this.stage0_de = this.child("stage0_de", new DecBlock(device, w[0]!, act));
    this.ds2_cls_conv = this.child("ds2_cls_conv", new Conv3d(device, w[2]!, nc, 1));
    this.ds1_cls_conv = this.child("ds1_cls_conv", new Conv3d(device, w[1]!, nc, 1));
    this.ds0_cls_conv = this.child("ds0_cls_conv", new Conv3d(device, w[0]!, nc, 1));
    this.cls_conv = this.child("cls_conv", new Conv3d(device, w[0]!, nc, 1));
    this.backbone = this.child("backbone", new Backbone(device, cfg));
    this.encoder_Detrans = this.child("encoder_Detrans", new DeformableTransformer(device, transformerCfg(cfg)));
  }

  /** [main, ds0, ds1, ds2]; with `all` false only [main] (the heads ds* are skipped). */
  forward(x: Tensor, all: boolean): Tensor[] {
    const xs = this.backbone.forward(x);
    const lv = [xs[2]!, xs[3]!];
    const shapes = lv.map((t) => [t.shape[2]!, t.shape[3]!, t.shape[4]!] as const);
    const [t2, t3] = splitTokens(this.encoder_Detrans.forward(lv), shapes);
    let y = this.stage2_de.forward(add(this.transposeconv_stage2.forward(t3!), t2!));
    const ds2 = all ? this.ds2_cls_conv.forward(y) : null;
    y = this.stage1_de.forward(add(this.transposeconv_stage1.forward(y), xs[1]!));
    const ds1 = all ? this.ds1_cls_conv.forward(y) : null;
    y = this.stage0_de.forward(add(this.transposeconv_stage0.forward(y), xs[0]!));
    const ds0 = all ? this.ds0_cls_conv.forward(y) : null;
    const out = this.cls_conv.forward(upsample(y, { scale: this.cfg.stem_stride, mode: "trilinear", alignCorners: false }));
    return all ? [out, ds0!, ds1!, ds2!] : [out];
  }
}

/** CoTr (Xie et al. 2021; YtongXie/CoTr ResTranUnet with IN + LeakyReLU). State-dict keys are
 * prefixed `U_ResTran3D.` as in CoTr's checkpoints. forward → main logits; forwardAll →
 * [main, ds0, ds1, ds2] (deep supervision). */
export class CoTr extends Module implements SegmentationNet {
  readonly config: Record<string, any>;
  readonly cfg: CoTrConfig;
  readonly U_ResTran3D: CoTrCore;
  constructor(device: Device, config: Record<string, any>) {
    super(device);
    this.cfg = validate(config);
    this.config = { ...config };
    this.U_ResTran3D = this.child("U_ResTran3D", new CoTrCore(device, this.cfg));
  }

  /** Throws a PulmoError unless x is [N, in_channels, D, H, W] with each axis divisible by
   * 8 × its stem stride (three stride-2 stages, then the decoder adds the skips back). */
  checkInput(shape: readonly number[]): void {
    const s = this.cfg.stem_stride;
    const f = s.map((v) => 8 * v);
    if (shape.length !== 5 || shape[1] !== this.cfg.in_channels || shape.some((d) => !isPosInt(d)) || shape.slice(2).some((d, i) => d % f[i]! !== 0))
      throw new PulmoError(`cotr: input must be [N, ${this.cfg.in_channels}, D, H, W] with D, H, W multiples of ${shapeStr(f)}, got ${shapeStr(shape)}`);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x.shape);
    return tidy(this.device, () => this.U_ResTran3D.forward(x, false)[0]!);
  }

  forwardAll(x: Tensor): Tensor[] {
    this.checkInput(x.shape);
    return tidy(this.device, () => this.U_ResTran3D.forward(x, true));
  }
}

/** Trainable parameters (from the config alone). */
export function parameterCount(config: Record<string, any>): number {
  const c = validate(config);
  const w = c.widths, nc = c.num_classes;
  const k3 = 27;
  let n = c.in_channels * w[0]! * c.stem_kernel ** 3 + 2 * w[0]!;
  let cin = w[0]!;
  for (let i = 0; i < 3; i++) {
    const co = w[i + 1]!;
    n += cin * co * k3 + 2 * co + cin * co + 2 * co;
    n += (c.blocks[i]! - 1) * (co * co * k3 + 2 * co);
    cin = co;
  }
  n += (w[3]! * w[2]! + w[2]! * w[1]! + w[1]! * w[0]!) * 8;
  for (const ch of [w[2]!, w[1]!, w[0]!]) n += 2 * (ch * ch * k3 + 2 * ch) + ch * nc + nc;
  n += w[0]! * nc + nc;
  return n + deformableTransformerParams(transformerCfg(c));
}

/** Forward MACs (MODELS.md conventions: conv = output elements × Cin × k³, ConvT = input
 * elements × Cout × k³, linear = output elements × in, MSDA sampling N·Lq·M·L·P·9·Dh), with
 * the deep-supervision heads included (as the reference's forward computes them). */
export function forwardMacs(config: Record<string, any>, inputShape: readonly number[] = config.input_shape): number {
  const c = validate(config);
  if (!Array.isArray(inputShape) || inputShape.length !== 5) throw new PulmoError(`cotr forwardMacs: input shape must be [N, C, D, H, W], got ${JSON.stringify(inputShape)}`);
  const [n, , ...sp] = inputShape as number[];
  const w = c.widths, nc = c.num_classes;
  const vox = (s: number[]) => n! * s[0]! * s[1]! * s[2]!;
  const conv = (s: number[], k: number, st: number[], p: number) => s.map((d, i) => Math.floor((d + 2 * p - k) / st[i]!) + 1);
  let macs = 0;
  const s0 = conv(sp, c.stem_kernel, c.stem_stride, Math.floor(c.stem_kernel / 2));
  macs += vox(s0) * c.in_channels * w[0]! * c.stem_kernel ** 3;
  const sizes = [s0];
  let s = s0, cin = w[0]!;
  for (let i = 0; i < 3; i++) {
    const co = w[i + 1]!;
    s = conv(s, 3, [2, 2, 2], 1);
    macs += vox(s) * (cin * co * 27 + cin * co);
    macs += (c.blocks[i]! - 1) * vox(s) * co * co * 27;
    sizes.push(s);
    cin = co;
  }
  macs += deformableTransformerMacs(transformerCfg(c), n!, [sizes[2]!, sizes[3]!] as [number, number, number][]);
  // decoder: ConvT on the input side, two 3³ convs per DecBlock, 1³ ds head per level
  for (const lvl of [2, 1, 0]) {
    const ci = w[lvl + 1]!, co = w[lvl]!;
    macs += vox(sizes[lvl + 1]!) * co * ci * 8;
    macs += vox(sizes[lvl]!) * (2 * co * co * 27 + co * nc);
  }
  macs += vox(sizes[0]!.map((d, i) => d * c.stem_stride[i]!)) * w[0]! * nc;
  return macs;
}

export const factory: ModelFactory = (device, config) => new CoTr(device, config);

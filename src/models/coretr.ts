import { PulmoError, shapeStr, tidy, type Device, type Tensor } from "../runtime/index.ts";
import { Module } from "../graph/module.ts";
import { Conv3d, ConvTranspose3d, InstanceNorm } from "../graph/nn.ts";
import { add, relu, upsample } from "../graph/ops/index.ts";
import { checkConfigKeys, checkDropout, checkPosInts, isPosInt, isPosIntList } from "./config.ts";
import type { ModelFactory, SegmentationNet } from "./model.ts";
import { DeformableTransformer, deformableTransformerMacs, deformableTransformerParams, splitTokens, type DeformableTransformerConfig } from "./deformable_transformer.ts";

/** Config of Co-ReTr (MODELS.md §2; shared/reference/models.py PRESETS.coretr). */
export interface CoReTrConfig {
  in_channels: number;
  num_classes: number;
  /** 5 widths of the shallow encoder (on the ×2 up-sampled input) */
  shallow_widths: number[];
  /** 5 widths of the deep encoder (on the input) */
  deep_widths: number[];
  /** residual blocks after conv2, conv3, conv4 of each encoder */
  shallow_blocks: number[];
  deep_blocks: number[];
  /** kernel of the encoder residual blocks (5 in the paper), odd */
  res_kernel: number;
  /** kernel of the decoder residual blocks (3), odd */
  dec_kernel: number;
  d_model: number;
  n_heads: number;
  n_layers: number;
  d_ffn: number;
  n_points: number;
  dropout: number;
  /** [N, C, D, H, W]; informational (MAC counts) */
  input_shape?: number[];
}


/** The paper preset (shared/reference/models.py PRESETS.coretr.paper): a key left out of a config
 * (or null/undefined) takes this value. */
export const PAPER_CONFIG: Readonly<Record<string, any>> = Object.freeze({
  in_channels: 1, num_classes: 2, shallow_widths: [8, 16, 32, 64, 128], deep_widths: [16, 32, 64, 128, 192],
  shallow_blocks: [2, 2, 2], deep_blocks: [3, 3, 3], res_kernel: 5, dec_kernel: 3, d_model: 192, n_heads: 6,
  n_layers: 6, d_ffn: 768, n_points: 4, dropout: 0.1,
});

function validate(user: Record<string, any>): CoReTrConfig {
  const bad = checkConfigKeys("coretr", user, [...Object.keys(PAPER_CONFIG), "input_shape"]);
  const cfg: Record<string, any> = { ...PAPER_CONFIG };
  for (const [k, v] of Object.entries(user)) if (v !== undefined && v !== null) cfg[k] = v;
  checkPosInts(bad, ["in_channels", "num_classes", "res_kernel", "dec_kernel", "d_model", "n_heads", "n_layers", "d_ffn", "n_points"], (k) => cfg[k]);
  for (const k of ["res_kernel", "dec_kernel"]) if (cfg[k] % 2 !== 1) bad(`${k} must be odd, got ${cfg[k]}`);
  const list = (k: string, n: number): number[] => {
    const v = cfg[k];
    if (!isPosIntList(v, n)) bad(`${k} must be ${n} positive integers, got ${JSON.stringify(v)}`);
    return [...v];
  };
  const ws = list("shallow_widths", 5), wd = list("deep_widths", 5);
  const sb = list("shallow_blocks", 3), db = list("deep_blocks", 3);
  if (ws[1] !== wd[0] || ws[2] !== wd[1])
    bad(`the decoder adds d0+s1 and d1+s2: shallow_widths[1] must equal deep_widths[0] and shallow_widths[2] deep_widths[1], got ${JSON.stringify(ws)} / ${JSON.stringify(wd)}`);
  if (cfg.d_model % cfg.n_heads !== 0) bad(`d_model ${cfg.d_model} must be divisible by n_heads ${cfg.n_heads}`);
  const f = Math.floor(cfg.d_model / 3);
  if (f % 2 !== 0 || (f + (cfg.d_model % 3)) % 2 !== 0)
    bad(`d_model ${cfg.d_model}: the positional blocks floor(d/3) and floor(d/3) + d%3 must both be even`);
  const dropout = cfg.dropout ?? 0;
  checkDropout(bad, dropout, cfg.dropout);
  if (cfg.input_shape !== undefined && !isPosIntList(cfg.input_shape, 5))
    bad(`input_shape must be [N, C, D, H, W], got ${JSON.stringify(cfg.input_shape)}`);
  return {
    in_channels: cfg.in_channels, num_classes: cfg.num_classes, shallow_widths: ws, deep_widths: wd, shallow_blocks: sb,
    deep_blocks: db, res_kernel: cfg.res_kernel, dec_kernel: cfg.dec_kernel, d_model: cfg.d_model, n_heads: cfg.n_heads,
    n_layers: cfg.n_layers, d_ffn: cfg.d_ffn, n_points: cfg.n_points, dropout, input_shape: cfg.input_shape,
  };
}

const transformerCfg = (c: CoReTrConfig): DeformableTransformerConfig => ({
  d_model: c.d_model, n_heads: c.n_heads, n_layers: c.n_layers, d_ffn: c.d_ffn, n_levels: 3, n_points: c.n_points, dropout: c.dropout,
});

/** Conv-IN-ReLU: conv k³ (pad k//2, no bias) → IN+a → ReLU; names conv, norm. */
class CBR extends Module {
  readonly conv: Conv3d;
  readonly norm: InstanceNorm;
  constructor(device: Device, cin: number, cout: number, stride: number) {
    super(device);
    this.conv = this.child("conv", new Conv3d(device, cin, cout, 3, { stride, padding: 1, bias: false }));
    this.norm = this.child("norm", new InstanceNorm(device, cout, { affine: true }));
  }
  forward(x: Tensor): Tensor {
    return relu(this.norm.forward(this.conv.forward(x)));
  }
}

/** y = x + CIR₂(CIR₁(x)) with k³ convs; names conv1, norm1, conv2, norm2. */
class ResBlock extends Module {
  readonly conv1: Conv3d;
  readonly norm1: InstanceNorm;
  readonly conv2: Conv3d;
  readonly norm2: InstanceNorm;
  constructor(device: Device, c: number, k: number) {
    super(device);
    const p = Math.floor(k / 2);
    this.conv1 = this.child("conv1", new Conv3d(device, c, c, k, { padding: p, bias: false }));
    this.norm1 = this.child("norm1", new InstanceNorm(device, c, { affine: true }));
    this.conv2 = this.child("conv2", new Conv3d(device, c, c, k, { padding: p, bias: false }));
    this.norm2 = this.child("norm2", new InstanceNorm(device, c, { affine: true }));
  }
  forward(x: Tensor): Tensor {
    return add(x, relu(this.norm2.forward(this.conv2.forward(relu(this.norm1.forward(this.conv1.forward(x)))))));
  }
}

/** nn.Sequential of residual blocks (names 0, 1, ...). */
class ResStage extends Module {
  readonly items: ResBlock[] = [];
  constructor(device: Device, c: number, k: number, n: number) {
    super(device);
    for (let i = 0; i < n; i++) this.items.push(this.child(String(i), new ResBlock(device, c, k)));
  }
  forward(x: Tensor): Tensor {
    for (const m of this.items) x = m.forward(x);
    return x;
  }
}

/** Five Conv-IN-ReLU blocks (strides 1, 2, 2, 2, 2), residual stages after blocks 2-4 and the
 * long skip skip3(skip1(f0)) added to conv4's output. Returns [f0, f1, f2, f3, f4]. */
class Encoder extends Module {
  readonly convs: CBR[] = [];
  readonly skip1: Conv3d;
  readonly skip3: Conv3d;
  readonly res: ResStage[] = [];
  constructor(device: Device, cin: number, w: number[], nb: number[], k: number) {
    super(device);
    for (let i = 0; i < 5; i++) this.convs.push(this.child(`conv${i}`, new CBR(device, i === 0 ? cin : w[i - 1]!, w[i]!, i === 0 ? 1 : 2)));
    this.skip1 = this.child("skip1", new Conv3d(device, w[0]!, w[4]!, 1, { stride: 4, bias: false }));
    this.skip3 = this.child("skip3", new Conv3d(device, w[4]!, w[4]!, 3, { stride: 4, padding: 1, bias: false }));
    for (let i = 0; i < 3; i++) this.res.push(this.child(`res${i + 2}`, new ResStage(device, w[i + 2]!, k, nb[i]!)));
  }
  forward(x: Tensor): Tensor[] {
    const [c0, c1, c2, c3, c4] = this.convs as [CBR, CBR, CBR, CBR, CBR];
    const [r2, r3, r4] = this.res as [ResStage, ResStage, ResStage];
    const f0 = c0.forward(x);
    const f1 = c1.forward(f0);
    const f2 = r2.forward(c2.forward(f1));
    const f3 = r3.forward(c3.forward(f2));
    const f4 = r4.forward(add(c4.forward(f3), this.skip3.forward(this.skip1.forward(f0))));
    return [f0, f1, f2, f3, f4];
  }
}

/** Multi-scale FPN: lateral 1³ convs (+bias) to d_model, nearest ×2 top-down. → [P4, P8, P16]. */
class FPN extends Module {
  readonly lat_d4: Conv3d;
  readonly lat_d3: Conv3d;
  readonly lat_s4: Conv3d;
  readonly lat_d2: Conv3d;
  readonly lat_s3: Conv3d;
  constructor(device: Device, wd: number[], ws: number[], d: number) {
    super(device);
    this.lat_d4 = this.child("lat_d4", new Conv3d(device, wd[4]!, d, 1));
    this.lat_d3 = this.child("lat_d3", new Conv3d(device, wd[3]!, d, 1));
    this.lat_s4 = this.child("lat_s4", new Conv3d(device, ws[4]!, d, 1));
    this.lat_d2 = this.child("lat_d2", new Conv3d(device, wd[2]!, d, 1));
    this.lat_s3 = this.child("lat_s3", new Conv3d(device, ws[3]!, d, 1));
  }
  forward(fd: Tensor[], fs: Tensor[]): Tensor[] {
    const up = (t: Tensor) => upsample(t, { scale: 2, mode: "nearest" });
    const p16 = this.lat_d4.forward(fd[4]!);
    const p8 = add(add(this.lat_d3.forward(fd[3]!), this.lat_s4.forward(fs[4]!)), up(p16));
    const p4 = add(add(this.lat_d2.forward(fd[2]!), this.lat_s3.forward(fs[3]!)), up(p8));
    return [p4, p8, p16];
  }
}

/** Co-ReTr (Kunkyab et al. 2024; no public code, layout MODELS.md §2, mostly ASSUMED). Input
 * [N, 1, D, H, W] with D, H, W divisible by 16; the shallow encoder gets the ×2 trilinear copy.
 * forward → logits [N, num_classes, D, H, W] (softmax classes). */
export class CoReTr extends Module implements SegmentationNet {
  readonly config: Record<string, any>;
  readonly cfg: CoReTrConfig;
  readonly enc_s: Encoder;
  readonly enc_d: Encoder;
  readonly fpn: FPN;
  readonly transformer: DeformableTransformer;
  readonly up3: ConvTranspose3d;
  readonly res3: ResBlock;
  readonly up2: ConvTranspose3d;
  readonly res2: ResBlock;
  readonly up1: ConvTranspose3d;
  readonly res1: ResBlock;
  readonly up0: ConvTranspose3d;
  readonly res0: ResBlock;
  readonly head: Conv3d;

  constructor(device: Device, config: Record<string, any>) {
    super(device);
    const c = (this.cfg = validate(config));
    this.config = { ...config };
    const ws = c.shallow_widths, wd = c.deep_widths, d = c.d_model, dk = c.dec_kernel;
    this.enc_s = this.child("enc_s", new Encoder(device, c.in_channels, ws, c.shallow_blocks, c.res_kernel));
    this.enc_d = this.child("enc_d", new Encoder(device, c.in_channels, wd, c.deep_blocks, c.res_kernel));
    this.fpn = this.child("fpn", new FPN(device, wd, ws, d));
    this.transformer = this.child("transformer", new DeformableTransformer(device, transformerCfg(c)));
    const tconv = (i: number, o: number) => new ConvTranspose3d(device, i, o, 2, { stride: 2, bias: false });
    this.up3 = this.child("up3", tconv(d, d));
    this.res3 = this.child("res3", new ResBlock(device, d, dk));
    this.up2 = this.child("up2", tconv(d, d));
    this.res2 = this.child("res2", new ResBlock(device, d, dk));
    this.up1 = this.child("up1", tconv(d, wd[1]!));
    this.res1 = this.child("res1", new ResBlock(device, wd[1]!, dk));
    this.up0 = this.child("up0", tconv(wd[1]!, wd[0]!));
    this.res0 = this.child("res0", new ResBlock(device, wd[0]!, dk));
    this.head = this.child("head", new Conv3d(device, wd[0]!, c.num_classes, 1));
  }

  /** Throws a PulmoError unless x is [N, in_channels, D, H, W] with D, H, W multiples of 16. */
  checkInput(shape: readonly number[]): void {
    if (shape.length !== 5 || shape[1] !== this.cfg.in_channels || shape.some((d) => !isPosInt(d)) || shape.slice(2).some((d) => d % 16 !== 0))
      throw new PulmoError(`coretr: input must be [N, ${this.cfg.in_channels}, D, H, W] with D, H, W multiples of 16, got ${shapeStr(shape)}`);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x.shape);
    return tidy(this.device, () => {
      const xh = upsample(x, { scale: 2, mode: "trilinear", alignCorners: false });
      const fs = this.enc_s.forward(xh);
      const fd = this.enc_d.forward(x);
      const P = this.fpn.forward(fd, fs);
      const shapes = P.map((t) => [t.shape[2]!, t.shape[3]!, t.shape[4]!] as const);
      const [T4, T8, T16] = splitTokens(this.transformer.forward(P), shapes) as [Tensor, Tensor, Tensor];
      let y = this.res3.forward(add(this.up3.forward(T16), T8));
      y = this.res2.forward(add(this.up2.forward(y), T4));
      y = this.res1.forward(add(add(this.up1.forward(y), fd[1]!), fs[2]!));
      y = this.res0.forward(add(add(this.up0.forward(y), fd[0]!), fs[1]!));
      return this.head.forward(y);
    });
  }
}

function encoderParams(cin: number, w: number[], nb: number[], k: number): number {
  let n = 0;
  for (let i = 0; i < 5; i++) n += (i === 0 ? cin : w[i - 1]!) * w[i]! * 27 + 2 * w[i]!;
  n += w[0]! * w[4]! + w[4]! * w[4]! * 27;
  for (let i = 0; i < 3; i++) n += nb[i]! * 2 * (w[i + 2]! ** 2 * k ** 3 + 2 * w[i + 2]!);
  return n;
}

/** Trainable parameters (from the config alone). */
export function parameterCount(config: Record<string, any>): number {
  const c = validate(config);
  const ws = c.shallow_widths, wd = c.deep_widths, d = c.d_model, k3 = c.dec_kernel ** 3;
  let n = encoderParams(c.in_channels, ws, c.shallow_blocks, c.res_kernel) + encoderParams(c.in_channels, wd, c.deep_blocks, c.res_kernel);
  n += (wd[4]! + wd[3]! + ws[4]! + wd[2]! + ws[3]!) * d + 5 * d;
  n += deformableTransformerParams(transformerCfg(c));
  const res = (ch: number) => 2 * (ch * ch * k3 + 2 * ch);
  n += (d * d + d * d + d * wd[1]! + wd[1]! * wd[0]!) * 8;
  n += 2 * res(d) + res(wd[1]!) + res(wd[0]!);
  return n + wd[0]! * c.num_classes + c.num_classes;
}

/** Forward MACs (MODELS.md conventions: conv = output elements × Cin × k³, ConvT = input
 * elements × Cout × k³, linear = output elements × in, MSDA sampling N·Lq·M·L·P·9·Dh). */
export function forwardMacs(config: Record<string, any>, inputShape: readonly number[] = config.input_shape): number {
  const c = validate(config);
  if (!Array.isArray(inputShape) || inputShape.length !== 5) throw new PulmoError(`coretr forwardMacs: input shape must be [N, C, D, H, W], got ${JSON.stringify(inputShape)}`);
  const [n, , ...sp] = inputShape as number[];
  const vox = (s: number[]) => n! * s[0]! * s[1]! * s[2]!;
  const out = (s: number[], k: number, st: number, p: number) => s.map((v) => Math.floor((v + 2 * p - k) / st) + 1);
  let macs = 0;
  /** one encoder; returns the spatial sizes of f0..f4 */
  const encoder = (s0: number[], w: number[], nb: number[]): number[][] => {
    const sizes: number[][] = [];
    let s = s0, cin = c.in_channels;
    for (let i = 0; i < 5; i++) {
      s = out(s, 3, i === 0 ? 1 : 2, 1);
      macs += vox(s) * cin * w[i]! * 27;
      sizes.push(s);
      cin = w[i]!;
    }
    const a = out(sizes[0]!, 1, 4, 0);
    macs += vox(a) * w[0]! * w[4]!;
    macs += vox(out(a, 3, 4, 1)) * w[4]! * w[4]! * 27;
    for (let i = 0; i < 3; i++) macs += nb[i]! * 2 * vox(sizes[i + 2]!) * w[i + 2]! ** 2 * c.res_kernel ** 3;
    return sizes;
  };
  const ss = encoder(sp.map((v) => 2 * v), c.shallow_widths, c.shallow_blocks);
  const sd = encoder(sp, c.deep_widths, c.deep_blocks);
  const ws = c.shallow_widths, wd = c.deep_widths, d = c.d_model;
  macs += vox(sd[4]!) * wd[4]! * d + vox(sd[3]!) * (wd[3]! + ws[4]!) * d + vox(sd[2]!) * (wd[2]! + ws[3]!) * d;
  macs += deformableTransformerMacs(transformerCfg(c), n!, [sd[2]!, sd[3]!, sd[4]!] as [number, number, number][]);
  const k3 = c.dec_kernel ** 3;
  const dec = [
    { cin: d, cout: d, from: sd[4]!, to: sd[3]! },
    { cin: d, cout: d, from: sd[3]!, to: sd[2]! },
    { cin: d, cout: wd[1]!, from: sd[2]!, to: sd[1]! },
    { cin: wd[1]!, cout: wd[0]!, from: sd[1]!, to: sd[0]! },
  ];
  for (const u of dec) macs += vox(u.from) * u.cin * u.cout * 8 + 2 * vox(u.to) * u.cout * u.cout * k3;
  return macs + vox(sd[0]!) * wd[0]! * c.num_classes;
}

export const factory: ModelFactory = (device, config) => new CoReTr(device, config);

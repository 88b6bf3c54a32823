import { PulmoError, shapeStr, tidy, type Device, type Tensor } from "../runtime/index.ts";
import { checkConfigKeys, checkDropout, checkImageInput, checkPosInts, isPosIntList } from "./config.ts";
import { Module, type HostArray } from "../graph/module.ts";
import { BatchNorm, Conv2d, Dropout } from "../graph/nn.ts";
import { add, concat, maxPool2d, relu, upsample } from "../graph/ops/index.ts";
import type { ModelFactory, SegmentationNet } from "./model.ts";

/** Config of the modified ResNet34 (MODELS.md §6): the keys of shared/reference/models.py
 * `ResNet34FPN` (PRESETS.resnet34_fpn). A key left out takes its paper-preset value. */
export interface ResNet34FpnConfig {
  in_channels: number;
  num_classes: number;
  /** [stem, layer1, layer2, layer3, layer4] widths; torchvision resnet34: 64, 64, 128, 256, 512 */
  widths: number[];
  /** BasicBlocks per layer; resnet34: 3, 4, 6, 3 */
  blocks: number[];
  lat_channels: number;
  fuse_channels: number;
  out_channels: number;
  /** Dropout2d rate before `cls` */
  dropout: number;
  /** [N, C, H, W]; informational (MAC counts), not required */
  input_shape?: number[];
}

/** Paper preset of shared/reference/models.py (`_R34`, PRESETS.resnet34_fpn.paper): 22,108,705 parameters. */
export const RESNET34_FPN_PAPER: Required<ResNet34FpnConfig> = {
  in_channels: 1,
  num_classes: 1,
  widths: [64, 64, 128, 256, 512],
  blocks: [3, 4, 6, 3],
  lat_channels: 64,
  fuse_channels: 128,
  out_channels: 32,
  dropout: 0.2,
  input_shape: [1, 1, 512, 512],
};

const KNOWN_KEYS = new Set(Object.keys(RESNET34_FPN_PAPER));

/** The config with every key left out taken from the paper preset (input_shape excepted), checked;
 * throws a PulmoError naming the first bad or unknown key. */
export function resolveConfig(cfg: Record<string, any>): ResNet34FpnConfig {
  const bad = checkConfigKeys("resnet34_fpn", cfg, KNOWN_KEYS);
  const get = (k: keyof ResNet34FpnConfig): any => (cfg[k] === undefined ? RESNET34_FPN_PAPER[k] : cfg[k]);
  checkPosInts(bad, ["in_channels", "num_classes", "lat_channels", "fuse_channels", "out_channels"], (k) => get(k as keyof ResNet34FpnConfig), (k) => cfg[k]);
  const widths = get("widths"), blocks = get("blocks"), p = get("dropout");
  if (!isPosIntList(widths, 5))
    bad(`widths must be 5 positive integers [stem, layer1..layer4], got ${JSON.stringify(widths)}`);
  if (!isPosIntList(blocks, 4))
    bad(`blocks must be 4 positive integers (BasicBlocks per layer), got ${JSON.stringify(blocks)}`);
  checkDropout(bad, p);
  const out: ResNet34FpnConfig = {
    in_channels: get("in_channels"),
    num_classes: get("num_classes"),
    widths: [...widths],
    blocks: [...blocks],
    lat_channels: get("lat_channels"),
    fuse_channels: get("fuse_channels"),
    out_channels: get("out_channels"),
    dropout: p,
  };
  if (cfg.input_shape !== undefined) {
    checkInputShape(out, cfg.input_shape, "resnet34_fpn config: input_shape");
    out.input_shape = [...cfg.input_shape];
  }
  return out;
}

/** Throws a PulmoError unless shape is [N, in_channels, H, W] with H and W multiples of 32 (the
 * encoder's total stride; the decoder adds c2 to maps up-sampled from c3..c5). */
function checkInputShape(cfg: ResNet34FpnConfig, shape: unknown, what: string): asserts shape is number[] {
  checkImageInput(what, shape, cfg.in_channels, 32);
}

/** nn.Sequential: children named 0, 1, 2, ... */
class Sequential<M extends Module> extends Module {
  readonly items: M[] = [];
  add(m: M): M {
    this.child(String(this.items.length), m);
    this.items.push(m);
    return m;
  }
}

/** torchvision.models.resnet.BasicBlock: conv1 (stride) → bn1 → ReLU → conv2 → bn2, plus identity
 * or downsample (1×1 conv with stride → BN), then ReLU. */
class BasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  readonly downsample: Sequential<Module> | null = null;
  constructor(device: Device, cin: number, c: number, stride: number) {
    super(device);
    this.conv1 = this.child("conv1", new Conv2d(device, cin, c, 3, { stride, padding: 1, bias: false }));
    this.bn1 = this.child("bn1", new BatchNorm(device, c));
    this.conv2 = this.child("conv2", new Conv2d(device, c, c, 3, { padding: 1, bias: false }));
    this.bn2 = this.child("bn2", new BatchNorm(device, c));
    if (stride !== 1 || cin !== c) {
      this.downsample = this.child("downsample", new Sequential<Module>(device));
      this.downsample.add(new Conv2d(device, cin, c, 1, { stride, bias: false }));
      this.downsample.add(new BatchNorm(device, c));
    }
  }
  forward(x: Tensor): Tensor {
    const out = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
    const id = this.downsample
      ? (this.downsample.items[1] as BatchNorm).forward((this.downsample.items[0] as Conv2d).forward(x))
      : x;
    return relu(add(out, id));
  }
}

/** torchvision ResNet trunk (conv1, bn1, maxpool, layer1..layer4; fc dropped). */
class ResNetEncoder extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly layers: Sequential<BasicBlock>[] = [];
  constructor(device: Device, inCh: number, widths: number[], blocks: number[]) {
    super(device);
    this.conv1 = this.child("conv1", new Conv2d(device, inCh, widths[0]!, 7, { stride: 2, padding: 3, bias: false }));
    this.bn1 = this.child("bn1", new BatchNorm(device, widths[0]!));
    let cin = widths[0]!;
    for (let i = 0; i < 4; i++) {
      const layer = this.child(`layer${i + 1}`, new Sequential<BasicBlock>(device));
      const c = widths[i + 1]!;
      for (let b = 0; b < blocks[i]!; b++) layer.add(new BasicBlock(device, b === 0 ? cin : c, c, b === 0 && i > 0 ? 2 : 1));
      this.layers.push(layer);
      cin = c;
    }
  }
  /** [c1, c2, c3, c4, c5] */
  forward(x: Tensor): Tensor[] {
    const c1 = relu(this.bn1.forward(this.conv1.forward(x)));
    let h = maxPool2d(c1, { kernel: 3, stride: 2, padding: 1 });
    const out = [c1];
    for (const layer of this.layers) {
      for (const b of layer.items) h = b.forward(h);
      out.push(h);
    }
    return out;
  }
}

/** conv3×3 p1 (no bias) → BN → ReLU; names conv, bn. */
class CBR2 extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm;
  constructor(device: Device, cin: number, cout: number) {
    super(device);
    this.conv = this.child("conv", new Conv2d(device, cin, cout, 3, { padding: 1, bias: false }));
    this.bn = this.child("bn", new BatchNorm(device, cout));
  }
  forward(x: Tensor): Tensor {
    return relu(this.bn.forward(this.conv.forward(x)));
  }
}

const up = (t: Tensor, f: number) => upsample(t, { scale: f, mode: "bilinear", alignCorners: false });

/** Modified ResNet34 with an FPN-like decoder (Zhang et al. 2020; MODELS.md §6; models.py
 * ResNet34FPN). State-dict names: encoder.* (torchvision resnet34 names, fc dropped), lat{3,4,5}.*,
 * fuse{1,2}.*, out_conv.*, cls.* (drop has no parameters). Returns logits (apply sigmoid). */
export class ResNet34Fpn extends Module implements SegmentationNet {
  readonly config: Record<string, any>;
  private readonly cfg: ResNet34FpnConfig;
  readonly encoder: ResNetEncoder;
  readonly lat3: CBR2;
  readonly lat4: CBR2;
  readonly lat5: CBR2;
  readonly fuse1: CBR2;
  readonly fuse2: CBR2;
  readonly out_conv: CBR2;
  readonly drop: Dropout;
  readonly cls: Conv2d;

  constructor(device: Device, config: Record<string, any>) {
    super(device);
    const cfg = (this.cfg = resolveConfig(config));
    this.config = { ...config };
    const w = cfg.widths, lc = cfg.lat_channels;
    this.encoder = this.child("encoder", new ResNetEncoder(device, cfg.in_channels, w, cfg.blocks));
    this.lat3 = this.child("lat3", new CBR2(device, w[2]!, lc));
    this.lat4 = this.child("lat4", new CBR2(device, w[3]!, lc));
    this.lat5 = this.child("lat5", new CBR2(device, w[4]!, lc));
    this.fuse1 = this.child("fuse1", new CBR2(device, 3 * lc, cfg.fuse_channels));
    this.fuse2 = this.child("fuse2", new CBR2(device, cfg.fuse_channels, w[1]!));
    this.out_conv = this.child("out_conv", new CBR2(device, w[1]!, cfg.out_channels));
    this.drop = this.child("drop", new Dropout(device, cfg.dropout, true));
    this.cls = this.child("cls", new Conv2d(device, cfg.out_channels, cfg.num_classes, 1));
  }

  /** Throws a PulmoError unless x is [N, in_channels, H, W] with H and W multiples of 32. */
  checkInput(shape: readonly number[]): void {
    checkInputShape(this.cfg, shape, "resnet34_fpn: input");
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x.shape);
    return tidy(this.device, () => {
      const [, c2, c3, c4, c5] = this.encoder.forward(x);
      const u = concat([this.lat3.forward(up(c3!, 2)), this.lat4.forward(up(c4!, 4)), this.lat5.forward(up(c5!, 8))], 1);
      const y = add(this.fuse2.forward(this.fuse1.forward(u)), c2!);
      const h = this.out_conv.forward(up(y, 4));
      return this.cls.forward(this.drop.forward(h));
    });
  }
}

/** Trainable parameters (BN running statistics excluded), computed from the config alone. */
export function parameterCount(config: Record<string, any>): number {
  const cfg = resolveConfig(config);
  const w = cfg.widths;
  const bn = (c: number) => 2 * c;
  let n = w[0]! * cfg.in_channels * 49 + bn(w[0]!);
  let cin = w[0]!;
  for (let i = 0; i < 4; i++) {
    const c = w[i + 1]!;
    for (let b = 0; b < cfg.blocks[i]!; b++) {
      const ci = b === 0 ? cin : c;
      n += ci * c * 9 + bn(c) + c * c * 9 + bn(c);
      if (b === 0 && (i > 0 || ci !== c)) n += ci * c + bn(c);
    }
    cin = c;
  }
  const cbr = (ci: number, co: number) => ci * co * 9 + bn(co);
  const lc = cfg.lat_channels;
  n += cbr(w[2]!, lc) + cbr(w[3]!, lc) + cbr(w[4]!, lc);
  n += cbr(3 * lc, cfg.fuse_channels) + cbr(cfg.fuse_channels, w[1]!) + cbr(w[1]!, cfg.out_channels);
  return n + cfg.out_channels * cfg.num_classes + cfg.num_classes;
}

/** Forward MACs of the convs (output elements × Cin × k², MODELS.md conventions) for an input
 * [N, C, H, W] (default: the config's input_shape, else the paper's 1×1×512²); bilinear
 * up-sampling and pooling are not counted. */
export function forwardMacs(config: Record<string, any>, inputShape?: readonly number[]): number {
  const cfg = resolveConfig(config);
  const shape = inputShape ?? cfg.input_shape ?? RESNET34_FPN_PAPER.input_shape;
  checkInputShape(cfg, shape, "resnet34_fpn forwardMacs: input shape");
  const [n, , h0, w0] = shape as number[];
  const w = cfg.widths;
  const down = (s: number, k: number, st: number, p: number) => Math.floor((s + 2 * p - k) / st) + 1;
  let h = down(h0!, 7, 2, 3), wd = down(w0!, 7, 2, 3);
  let macs = n! * h * wd * cfg.in_channels * w[0]! * 49;
  h = down(h, 3, 2, 1);
  wd = down(wd, 3, 2, 1);
  const sizes: [number, number][] = [];
  let cin = w[0]!;
  for (let i = 0; i < 4; i++) {
    const c = w[i + 1]!;
    for (let b = 0; b < cfg.blocks[i]!; b++) {
      const stride = b === 0 && i > 0 ? 2 : 1;
      const ci = b === 0 ? cin : c;
      const ho = down(h, 3, stride, 1), wo = down(wd, 3, stride, 1);
      macs += n! * ho * wo * (ci * c * 9 + c * c * 9);
      if (stride !== 1 || ci !== c) macs += n! * ho * wo * ci * c;
      h = ho;
      wd = wo;
    }
    sizes.push([h, wd]);
    cin = c;
  }
  const lc = cfg.lat_channels;
  const [s2, s3, s4, s5] = sizes as [number, number][];
  const area = (s: [number, number], f: number) => n! * Math.floor(s[0] * f) * Math.floor(s[1] * f);
  macs += area(s3!, 2) * w[2]! * lc * 9 + area(s4!, 4) * w[3]! * lc * 9 + area(s5!, 8) * w[4]! * lc * 9;
  // fuse1/fuse2 run at the lat3 resolution (= c2's for inputs that are multiples of 32)
  const a2 = area(s3!, 2);
  macs += a2 * (3 * lc * cfg.fuse_channels * 9 + cfg.fuse_channels * w[1]! * 9);
  const aOut = area(s2!, 4);
  return macs + aOut * (w[1]! * cfg.out_channels * 9 + cfg.out_channels * cfg.num_classes);
}

/** Maps torchvision's ImageNet resnet34 state dict (conv1.weight [64, 3, 7, 7], bn1.*, layer1..4.*,
 * fc.*) to this model's `encoder.*` names: fc is dropped and conv1 is summed over its RGB input
 * channels into one (the paper's single-channel grey input). Decoder keys are not produced: load the
 * result with `loadStateDict(map, { strict: false })`. Throws a PulmoError on an unexpected key or a
 * conv1 that is not [O, 3, kH, kW]. */
export function fromTorchvisionResnet34(stateDict: Map<string, HostArray>): Map<string, { data: Float32Array; shape: number[] }> {
  const out = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const [k, v] of stateDict) {
    if (k === "fc.weight" || k === "fc.bias") continue;
    if (!/^(conv1\.weight|bn1\.[a-z_]+|layer[1-4]\.\d+\.[a-z0-9_.]+)$/.test(k))
      throw new PulmoError(`fromTorchvisionResnet34: unexpected key '${k}' (not a torchvision resnet key)`);
    if (k === "conv1.weight") {
      const s = v.shape;
      if (s.length !== 4 || s[1] !== 3) throw new PulmoError(`fromTorchvisionResnet34: conv1.weight must be [O, 3, kH, kW], got ${shapeStr(s)}`);
      const [o, , kh, kw] = s as [number, number, number, number];
      const plane = kh * kw;
      if (v.data.length !== o * 3 * plane) throw new PulmoError(`fromTorchvisionResnet34: conv1.weight has ${v.data.length} values for shape ${shapeStr(s)}`);
      const data = new Float32Array(o * plane);
      for (let i = 0; i < o; i++)
        for (let j = 0; j < plane; j++) {
          const base = i * 3 * plane + j;
          data[i * plane + j] = v.data[base]! + v.data[base + plane]! + v.data[base + 2 * plane]!;
        }
      out.set("encoder.conv1.weight", { data, shape: [o, 1, kh, kw] });
    } else out.set(`encoder.${k}`, { data: v.data, shape: [...v.shape] });
  }
  if (!out.has("encoder.conv1.weight")) throw new PulmoError("fromTorchvisionResnet34: no conv1.weight in the state dict");
  return out;
}

export const factory: ModelFactory = (device, config) => new ResNet34Fpn(device, config);

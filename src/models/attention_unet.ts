import { PulmoError, tidy, type Device, type Tensor } from "../runtime/index.ts";
import { Module } from "../graph/module.ts";
import { BatchNorm } from "../graph/nn.ts";
import { add, concat, mul, relu } from "../graph/ops/index.ts";
import type { ModelFactory, SegmentationNet } from "./model.ts";
import { MConv, Sequential, Sigmoid, checkUNetInput, validateUNetLike, type Layer } from "./monai_blocks.ts";

/** Config of the Attention U-Net (MODELS.md §4a): the keys of shared/reference/models.py `_ATT`
 * (MONAI `AttentionUnet(3, in, nc, channels, strides, kernel_size, up_kernel_size, dropout)`). */
export interface AttentionUnetConfig {
  in_channels: number;
  num_classes: number;
  /** widths per level, the last one the bottom; at least 2 */
  channels: number[];
  /** one stride per down-sampling (channels.length - 1 entries), carried by a strided conv */
  strides: number[];
  /** odd; default 3 */
  kernel_size?: number;
  /** odd; default 3 */
  up_kernel_size?: number;
  /** element-wise dropout in the conv blocks and merges (train mode only); default 0 */
  dropout?: number;
  /** [N, C, D, H, W]; informational (MAC counts), not required */
  input_shape?: number[];
}

type Cfg = ReturnType<typeof validateUNetLike>;

const validate = (cfg: Record<string, any>): Cfg => validateUNetLike("attention_unet", cfg, []);

/** MONAI attentionunet.ConvBlock: `conv.0` (strided) and `conv.1`, each conv → BN → ReLU. */
export class AttConvBlock extends Module implements Layer {
  readonly conv: Sequential;
  constructor(device: Device, cin: number, cout: number, k: number, stride: number, dropout: number) {
    super(device);
    this.conv = this.child("conv", new Sequential(device));
    this.conv.add("0", new MConv(device, cin, cout, { kernel: k, stride, norm: "batch", act: "relu", dropout }));
    this.conv.add("1", new MConv(device, cout, cout, { kernel: k, stride: 1, norm: "batch", act: "relu", dropout }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

/** MONAI attentionunet.AttentionBlock: x · σ(BN(ψ(ReLU(BN(W_g g) + BN(W_x x))))), 1³ convs with bias. */
export class AttentionBlock extends Module {
  readonly W_g: Sequential;
  readonly W_x: Sequential;
  readonly psi: Sequential;
  constructor(device: Device, fInt: number, fG: number, fL: number) {
    super(device);
    const branch = (cin: number, cout: number) => {
      const s = new Sequential(device);
      s.add("0", new MConv(device, cin, cout, { kernel: 1, padding: 0, convOnly: true }));
      s.add("1", new BatchNorm(device, cout));
      return s;
    };
    this.W_g = this.child("W_g", branch(fG, fInt));
    this.W_x = this.child("W_x", branch(fL, fInt));
    this.psi = this.child("psi", branch(fInt, 1));
    this.psi.add("2", new Sigmoid(device));
  }
  forward(g: Tensor, x: Tensor): Tensor {
    return mul(x, this.psi.forward(relu(add(this.W_g.forward(g), this.W_x.forward(x)))));
  }
}

/** MONAI attentionunet.UpConv: `up` = ConvT k s (pad k//2, output_padding s-1) → BN → ReLU. */
export class UpConv extends Module implements Layer {
  readonly up: MConv;
  constructor(device: Device, cin: number, cout: number, k: number, stride: number) {
    super(device);
    this.up = this.child("up", new MConv(device, cin, cout, { kernel: k, stride, norm: "batch", act: "relu", transposed: true }));
  }
  forward(x: Tensor): Tensor {
    return this.up.forward(x);
  }
}

/** MONAI attentionunet.AttentionLayer: low = upconv(submodule(x)); merge(cat([attention(g=low, x), low])),
 * merge = conv k3 2c → c → InstanceNorm (no affine) → PReLU. Children in MONAI's order:
 * attention, upconv, merge, submodule. */
export class AttentionLayer extends Module implements Layer {
  readonly attention: AttentionBlock;
  readonly upconv: UpConv;
  readonly merge: MConv;
  readonly submodule: Layer;
  constructor(device: Device, cin: number, cout: number, submodule: Layer, upK: number, stride: number, dropout: number) {
    super(device);
    this.attention = this.child("attention", new AttentionBlock(device, Math.floor(cin / 2), cin, cin));
    this.upconv = this.child("upconv", new UpConv(device, cout, cin, upK, stride));
    this.merge = this.child("merge", new MConv(device, 2 * cin, cin, { kernel: 3, stride: 1, norm: "instance", act: "prelu", dropout }));
    this.submodule = this.child("submodule", submodule);
  }
  forward(x: Tensor): Tensor {
    const low = this.upconv.forward(this.submodule.forward(x));
    return this.merge.forward(concat([this.attention.forward(low, x), low], 1));
  }
}

/** MONAI AttentionUnet (MODELS.md §4a; shared/reference/models.py AttentionUnet). State dict
 * `model.0.conv.{0,1}.{conv,adn.N}.*` (head ConvBlock), `model.1.{attention,upconv,merge}.*` and
 * deeper levels under `model.1.submodule.{0,1}`, the bottom ConvBlock `…submodule.1.submodule`,
 * `model.2.conv.*` (1³ head conv). */
export class AttentionUnet extends Module implements SegmentationNet {
  readonly config: Record<string, any>;
  private readonly cfg: Cfg;
  readonly model: Sequential;

  constructor(device: Device, config: Record<string, any>) {
    super(device);
    this.cfg = validate(config);
    this.config = { ...config };
    const { kernel_size: k, up_kernel_size: uk, dropout: dr } = this.cfg;
    const create = (ch: number[], st: number[]): AttentionLayer => {
      if (ch.length > 2) {
        const sub = new Sequential(device);
        sub.add("0", new AttConvBlock(device, ch[0]!, ch[1]!, k, st[0]!, dr));
        sub.add("1", create(ch.slice(1), st.slice(1)));
        return new AttentionLayer(device, ch[0]!, ch[1]!, sub, uk, st[0]!, dr);
      }
      return new AttentionLayer(device, ch[0]!, ch[1]!, new AttConvBlock(device, ch[0]!, ch[1]!, k, st[0]!, dr), uk, st[0]!, dr);
    };
    const seq = new Sequential(device);
    seq.add("0", new AttConvBlock(device, this.cfg.in_channels, this.cfg.channels[0]!, k, 1, dr));
    seq.add("1", create(this.cfg.channels, this.cfg.strides));
    seq.add("2", new MConv(device, this.cfg.channels[0]!, this.cfg.num_classes, { kernel: 1, padding: 0, convOnly: true }));
    this.model = this.child("model", seq);
  }

  /** Throws a PulmoError unless x is [N, in_channels, D, H, W] with D, H, W multiples of Π strides. */
  checkInput(shape: readonly number[]): void {
    checkUNetInput("attention_unet", shape, this.cfg.in_channels, this.cfg.strides);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x.shape);
    return tidy(this.device, () => this.model.forward(x));
  }
}

/** Walks the network: `conv(cin, cout, k, transposed, voxelsIn, voxelsOut)` per conv layer (all with
 * bias), `bn(c)` per BatchNorm, `prelu()` per PReLU. Voxels are N × spatial volume. */
function walk(cfg: Cfg, spatial: number[], n: number, conv: (cin: number, cout: number, k: number, transposed: boolean, vin: number, vout: number) => void, bn: (c: number) => void, prelu: () => void): void {
  const { kernel_size: k, up_kernel_size: uk } = cfg;
  const vol = (s: number[]) => n * s.reduce((a, b) => a * b, 1);
  const block = (cin: number, cout: number, stride: number, sIn: number[]): number[] => {
    const sOut = sIn.map((d) => Math.floor((d - 1) / stride) + 1);
    conv(cin, cout, k, false, vol(sIn), vol(sOut));
    bn(cout);
    conv(cout, cout, k, false, vol(sOut), vol(sOut));
    bn(cout);
    return sOut;
  };
  const layer = (ch: number[], st: number[], sIn: number[]) => {
    const cin = ch[0]!, cout = ch[1]!, s = st[0]!;
    const v = vol(sIn), fInt = Math.floor(cin / 2);
    // registration order: attention, upconv, merge, submodule (only the sum matters for counts)
    conv(cin, fInt, 1, false, v, v); bn(fInt); // W_g
    conv(cin, fInt, 1, false, v, v); bn(fInt); // W_x
    conv(fInt, 1, 1, false, v, v); bn(1); // psi
    const sDown = sIn.map((d) => Math.floor((d - 1) / s) + 1);
    conv(cout, cin, uk, true, vol(sDown), v); bn(cin); // upconv
    conv(2 * cin, cin, 3, false, v, v); prelu(); // merge (IN without affine)
    const sub = block(cin, cout, s, sIn);
    if (ch.length > 2) layer(ch.slice(1), st.slice(1), sub);
  };
  const s0 = block(cfg.in_channels, cfg.channels[0]!, 1, spatial);
  layer(cfg.channels, cfg.strides, s0);
  conv(cfg.channels[0]!, cfg.num_classes, 1, false, vol(s0), vol(s0));
}

/** Trainable parameters (BN running statistics excluded), computed from the config alone. */
export function parameterCount(config: Record<string, any>): number {
  const cfg = validate(config);
  let p = 0;
  walk(cfg, [1, 1, 1], 1, (cin, cout, k) => (p += cin * cout * k ** 3 + cout), (c) => (p += 2 * c), () => (p += 1));
  return p;
}

/** Forward MACs of the convs and transposed convs (MODELS.md / models.py count_macs: conv = output
 * elements × Cin × k³, ConvT = input elements × Cout × k³) for an input [N, C, D, H, W]. */
export function forwardMacs(config: Record<string, any>, inputShape: readonly number[] = config.input_shape): number {
  const cfg = validate(config);
  if (!Array.isArray(inputShape)) throw new PulmoError(`attention_unet forwardMacs: input shape must be [N, C, D, H, W], got ${JSON.stringify(inputShape)}`);
  checkUNetInput("attention_unet forwardMacs", inputShape, cfg.in_channels, cfg.strides);
  let macs = 0;
  walk(cfg, inputShape.slice(2), inputShape[0]!, (cin, cout, k, transposed, vin, vout) => (macs += (transposed ? vin : vout) * cin * cout * k ** 3), () => {}, () => {});
  return macs;
}

export const factory: ModelFactory = (device, config) => new AttentionUnet(device, config);

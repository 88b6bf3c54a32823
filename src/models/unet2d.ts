import { PulmoError, tidy, type Device, type Tensor } from "../runtime/index.ts";
import { checkConfigKeys, checkImageInput, checkPosInts, resolveUNetLevels } from "./config.ts";
import { ModuleList, plan } from "./unet_family.ts";
import { Module } from "../graph/module.ts";
import { BatchNorm, Conv2d, ConvTranspose2d } from "../graph/nn.ts";
import { concat, maxPool2d, relu } from "../graph/ops/index.ts";
import type { ModelFactory, SegmentationNet } from "./model.ts";

/** Config of the padded 2D U-Net (MODELS.md §6b): the keys of shared/reference/models.py
 * `UNetPlain` with `dims: 2` (PRESETS.unet2d). A key left out takes its paper-preset value. */
export interface UNet2dConfig {
  /** must be 2 (the reference's UNetPlain also builds the 3D nets; those are unet3d / ctv_unet) */
  dims: number;
  in_channels: number;
  num_classes: number;
  /** [[mid, out], ...] per encoder level, the last one the bottom (no pooling after it) */
  enc: number[][];
  /** [[mid, out], ...] per decoder level, deepest first; enc.length - 1 entries */
  dec: number[][];
  /** 2: ConvT k2 s2; 3: ConvT k3 s2 p1 output_padding 1 */
  up_kernel: number;
  /** true: the ConvT keeps its input width; false: it maps to the skip width */
  up_keep_channels: boolean;
  /** ConvT bias */
  up_bias: boolean;
  /** [N, C, H, W]; informational (the default input of forwardMacs), not required */
  input_shape?: number[];
}

/** Paper preset of shared/reference/models.py (`_U2`, PRESETS.unet2d.paper): 31,036,481 parameters. */
export const UNET2D_PAPER: Required<UNet2dConfig> = {
  dims: 2,
  in_channels: 1,
  num_classes: 1,
  enc: [[64, 64], [128, 128], [256, 256], [512, 512], [1024, 1024]],
  dec: [[512, 512], [256, 256], [128, 128], [64, 64]],
  up_kernel: 2,
  up_keep_channels: false,
  up_bias: true,
  input_shape: [1, 1, 512, 512],
};

const KNOWN_KEYS = new Set(Object.keys(UNET2D_PAPER));

/** The config with every key left out taken from the paper preset (input_shape excepted), checked;
 * throws a PulmoError naming the first bad or unknown key. */
export function resolveConfig(cfg: Record<string, any>): UNet2dConfig {
  const bad = checkConfigKeys("unet2d", cfg, KNOWN_KEYS);
  const get = (k: keyof UNet2dConfig): any => (cfg[k] === undefined ? UNET2D_PAPER[k] : cfg[k]);
  if (get("dims") !== 2) bad(`dims must be 2, got ${JSON.stringify(cfg.dims)}`);
  checkPosInts(bad, ["in_channels", "num_classes"], (k) => get(k as keyof UNet2dConfig), (k) => cfg[k]);
  const out: UNet2dConfig = {
    dims: 2,
    in_channels: get("in_channels"),
    num_classes: get("num_classes"),
    ...resolveUNetLevels(bad, (k) => get(k as keyof UNet2dConfig)),
  };
  if (cfg.input_shape !== undefined) {
    checkInputShape(out, cfg.input_shape, "unet2d config: input_shape");
    out.input_shape = [...cfg.input_shape];
  }
  return out;
}

/** Throws a PulmoError unless shape is [N, in_channels, H, W] with H and W multiples of
 * 2^(levels - 1) (each up-sampled map must match its skip for the concat). */
function checkInputShape(cfg: UNet2dConfig, shape: unknown, what: string): asserts shape is number[] {
  checkImageInput(what, shape, cfg.in_channels, 2 ** (cfg.enc.length - 1));
}

/** (conv3×3 p1, no bias → BN → ReLU) × 2; names conv1, bn1, conv2, bn2. */
class DoubleConv extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  constructor(device: Device, cin: number, mid: number, cout: number) {
    super(device);
    this.conv1 = this.child("conv1", new Conv2d(device, cin, mid, 3, { padding: 1, bias: false }));
    this.bn1 = this.child("bn1", new BatchNorm(device, mid));
    this.conv2 = this.child("conv2", new Conv2d(device, mid, cout, 3, { padding: 1, bias: false }));
    this.bn2 = this.child("bn2", new BatchNorm(device, cout));
  }
  forward(x: Tensor): Tensor {
    return relu(this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x))))));
  }
}

/** Padded 2D U-Net (MODELS.md §6b; shared/reference/models.py UNetPlain with dims 2). State-dict
 * names, in PyTorch order: enc.{i}.{conv1,bn1,conv2,bn2}.*, up.{i}.{weight,bias} (up.0 deepest),
 * dec.{i}.*, head.*. forward returns logits (the network's output activation is a sigmoid). */
export class UNet2d extends Module implements SegmentationNet {
  readonly config: Record<string, any>;
  private readonly cfg: UNet2dConfig;
  readonly enc: ModuleList<DoubleConv>;
  readonly up: ModuleList<ConvTranspose2d>;
  readonly dec: ModuleList<DoubleConv>;
  readonly head: Conv2d;

  constructor(device: Device, config: Record<string, any>) {
    super(device);
    const cfg = (this.cfg = resolveConfig(config));
    this.config = { ...config };
    this.enc = this.child("enc", new ModuleList<DoubleConv>(device));
    let c = cfg.in_channels;
    for (const [mid, out] of cfg.enc) {
      this.enc.add(new DoubleConv(device, c, mid!, out!));
      c = out!;
    }
    const p = plan(cfg);
    this.up = this.child("up", new ModuleList<ConvTranspose2d>(device));
    this.dec = this.child("dec", new ModuleList<DoubleConv>(device));
    cfg.dec.forEach(([mid, out], i) => {
      const u = p.ups[i]!;
      this.up.add(
        cfg.up_kernel === 2
          ? new ConvTranspose2d(device, u.cin, u.cout, 2, { stride: 2, bias: cfg.up_bias })
          : new ConvTranspose2d(device, u.cin, u.cout, 3, { stride: 2, padding: 1, outputPadding: 1, bias: cfg.up_bias }),
      );
      this.dec.add(new DoubleConv(device, u.cout + u.skip, mid!, out!));
    });
    this.head = this.child("head", new Conv2d(device, p.head, cfg.num_classes, 1));
  }

  /** Throws a PulmoError unless x is [N, in_channels, H, W] with H and W multiples of 2^(levels-1). */
  checkInput(shape: readonly number[]): void {
    checkInputShape(this.cfg, shape, "unet2d: input");
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x.shape);
    return tidy(this.device, () => {
      const skips: Tensor[] = [];
      let h = x;
      const levels = this.enc.items.length;
      for (let i = 0; i < levels; i++) {
        h = this.enc.items[i]!.forward(h);
        if (i < levels - 1) {
          skips.push(h);
          h = maxPool2d(h, { kernel: 2 });
        }
      }
      for (let i = 0; i < this.dec.items.length; i++)
        h = this.dec.items[i]!.forward(concat([this.up.items[i]!.forward(h), skips.pop()!], 1));
      return this.head.forward(h);
    });
  }
}

/** Trainable parameters (BN running statistics excluded), from the config alone. */
export function parameterCount(config: Record<string, any>): number {
  const cfg = resolveConfig(config);
  const dc = (cin: number, mid: number, out: number) => cin * mid * 9 + 2 * mid + mid * out * 9 + 2 * out;
  let n = 0;
  let c = cfg.in_channels;
  for (const [mid, out] of cfg.enc) {
    n += dc(c, mid!, out!);
    c = out!;
  }
  const p = plan(cfg);
  const k = cfg.up_kernel ** 2;
  cfg.dec.forEach(([mid, out], i) => {
    const u = p.ups[i]!;
    n += u.cin * u.cout * k + (cfg.up_bias ? u.cout : 0);
    n += dc(u.cout + u.skip, mid!, out!);
  });
  return n + p.head * cfg.num_classes + cfg.num_classes;
}

/** Forward MACs of the convs and transposed convs as shared/reference/models.py `count_macs`
 * (conv: output elements × Cin × k²; ConvT: input elements × Cout × k²) for an input [N, C, H, W]
 * (default: the config's input_shape, else the paper's 1×1×512²). */
export function forwardMacs(config: Record<string, any>, inputShape?: readonly number[]): number {
  const cfg = resolveConfig(config);
  const shape = inputShape ?? cfg.input_shape ?? UNET2D_PAPER.input_shape;
  checkInputShape(cfg, shape, "unet2d forwardMacs: input shape");
  const [n, , h0, w0] = shape as [number, number, number, number];
  let macs = 0;
  let h = h0, w = w0;
  let c = cfg.in_channels;
  const sizes: [number, number][] = [];
  cfg.enc.forEach(([mid, out], i) => {
    macs += n * h * w * (c * mid! * 9 + mid! * out! * 9);
    c = out!;
    if (i < cfg.enc.length - 1) {
      sizes.push([h, w]);
      h /= 2;
      w /= 2;
    }
  });
  const p = plan(cfg);
  const k = cfg.up_kernel ** 2;
  cfg.dec.forEach(([mid, out], i) => {
    const u = p.ups[i]!;
    macs += n * h * w * u.cin * u.cout * k;
    [h, w] = sizes.pop()!;
    macs += n * h * w * ((u.cout + u.skip) * mid! * 9 + mid! * out! * 9);
  });
  return macs + n * h * w * p.head * cfg.num_classes;
}

export const factory: ModelFactory = (device, config) => new UNet2d(device, config);

import { PulmoError, shapeStr, tidy, type Device, type Tensor } from "../runtime/index.ts";
import { checkConfigKeys, checkPosInts, isPosInt, resolveUNetLevels } from "./config.ts";
import { Module } from "../graph/module.ts";
import { BatchNorm, Conv3d, ConvTranspose3d } from "../graph/nn.ts";
import { concat, maxPool3d, relu } from "../graph/ops/index.ts";
import type { SegmentationNet } from "./model.ts";

/** The padded plain 3D U-Net family of shared/reference/models.py `UNetPlain` with `dims: 3`:
 * `unet3d` (MODELS.md §4b, Çiçek layout) and `ctv_unet` (MODELS.md §5). Config keys are those of
 * the reference presets; a key left out takes the value of the network's paper preset. */
export interface UNet3dFamilyConfig {
  /** must be 3 (the reference's UNetPlain also builds the 2D U-Net; that is `unet2d`) */
  dims: number;
  in_channels: number;
  num_classes: number;
  /** [[mid, out], ...] per encoder level, the last one the bottom (no pooling after it) */
  enc: number[][];
  /** [[mid, out], ...] per decoder level, deepest first; enc.length - 1 entries */
  dec: number[][];
  /** 2: ConvT k2 s2; 3: ConvT k3 s2 p1 output_padding 1 */
  up_kernel: number;
  /** true: the ConvT keeps its input width (Çiçek); false: it maps to the skip width */
  up_keep_channels: boolean;
  /** ConvT bias */
  up_bias: boolean;
  /** [N, C, D, H, W]; informational (default input of forwardMacs), not required */
  input_shape?: number[];
}

/** Paper presets of shared/reference/models.py (`_U3`, `_CTV`). */
export const UNET3D_PAPER: UNet3dFamilyConfig = {
  dims: 3,
  in_channels: 1,
  num_classes: 2,
  enc: [[32, 64], [64, 128], [128, 256], [256, 512]],
  dec: [[256, 256], [128, 128], [64, 64]],
  up_kernel: 2,
  up_keep_channels: true,
  up_bias: false,
  input_shape: [1, 1, 96, 96, 96],
};

export const CTV_UNET_PAPER: UNet3dFamilyConfig = {
  dims: 3,
  in_channels: 2,
  num_classes: 1,
  enc: [[32, 32], [64, 64], [128, 128], [256, 256], [512, 512]],
  dec: [[256, 256], [128, 128], [64, 64], [32, 32]],
  up_kernel: 3,
  up_keep_channels: false,
  up_bias: false,
  input_shape: [1, 2, 128, 288, 416],
};

const KNOWN_KEYS = new Set(["dims", "in_channels", "num_classes", "enc", "dec", "up_kernel", "up_keep_channels", "up_bias", "input_shape"]);


/** Checks a config and fills the keys it leaves out from `defaults`; throws a PulmoError naming
 * the network and the offending key. */
export function validateUNet3dConfig(name: string, config: Record<string, any>, defaults: UNet3dFamilyConfig): UNet3dFamilyConfig {
  const bad = checkConfigKeys(name, config, KNOWN_KEYS);
  const get = <K extends keyof UNet3dFamilyConfig>(k: K): any => (config[k] !== undefined ? config[k] : defaults[k]);
  const dims = get("dims");
  if (dims !== 3) bad(`dims must be 3, got ${JSON.stringify(dims)}`);
  const inC = get("in_channels"), nc = get("num_classes");
  checkPosInts(bad, ["in_channels", "num_classes"], (k) => (k === "in_channels" ? inC : nc));
  const levels = resolveUNetLevels(bad, (k) => get(k as keyof UNet3dFamilyConfig));
  const inputShape = config.input_shape;
  if (inputShape !== undefined) {
    if (!Array.isArray(inputShape) || inputShape.length !== 5 || !inputShape.every(isPosInt))
      bad(`input_shape must be [N, C, D, H, W] of positive integers, got ${JSON.stringify(inputShape)}`);
    if (inputShape[1] !== inC) bad(`input_shape ${JSON.stringify(inputShape)} has ${inputShape[1]} channels, in_channels is ${inC}`);
  }
  return {
    dims: 3,
    in_channels: inC,
    num_classes: nc,
    ...levels,
    ...(inputShape !== undefined ? { input_shape: [...inputShape] } : {}),
  };
}

/** (conv k3 p1, no bias → BN → ReLU) × 2; names conv1, bn1, conv2, bn2 (reference `_DoubleConv`). */
export class DoubleConv3d extends Module {
  readonly conv1: Conv3d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv3d;
  readonly bn2: BatchNorm;
  constructor(device: Device, cin: number, mid: number, cout: number) {
    super(device);
    this.conv1 = this.child("conv1", new Conv3d(device, cin, mid, 3, { padding: 1, bias: false }));
    this.bn1 = this.child("bn1", new BatchNorm(device, mid));
    this.conv2 = this.child("conv2", new Conv3d(device, mid, cout, 3, { padding: 1, bias: false }));
    this.bn2 = this.child("bn2", new BatchNorm(device, cout));
  }
  forward(x: Tensor): Tensor {
    return relu(this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x))))));
  }
}

/** A container whose children are named 0, 1, 2, ... (nn.ModuleList). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];
  add(m: M): M {
    this.child(String(this.items.length), m);
    this.items.push(m);
    return m;
  }
}

/** Per decoder level: the up-conv's input and output widths and the skip width; the head's input width. */
export function plan(cfg: Pick<UNet3dFamilyConfig, "enc" | "dec" | "up_keep_channels">): { ups: { cin: number; cout: number; skip: number }[]; head: number } {
  let c = cfg.enc.at(-1)![1]!;
  const skips = cfg.enc.slice(0, -1).map(([, out]) => out!).reverse();
  const ups = cfg.dec.map(([, out], i) => {
    const skip = skips[i]!;
    const u = { cin: c, cout: cfg.up_keep_channels ? c : skip, skip };
    c = out!;
    return u;
  });
  return { ups, head: c };
}

/** One entry of the state dict (PyTorch name and shape), computed from the config alone. */
export interface KeySpec {
  key: string;
  shape: number[];
  /** true for BN running statistics (not parameters) */
  buffer: boolean;
}

/** The state-dict keys and shapes in PyTorch order (without `num_batches_tracked`, which the engine
 * does not keep), computed from the config without building anything. */
export function stateDictSpec(cfg: UNet3dFamilyConfig): KeySpec[] {
  const out: KeySpec[] = [];
  const p = (key: string, shape: number[], buffer = false) => out.push({ key, shape, buffer });
  const bn = (pre: string, c: number) => {
    p(`${pre}.weight`, [c]);
    p(`${pre}.bias`, [c]);
    p(`${pre}.running_mean`, [c], true);
    p(`${pre}.running_var`, [c], true);
  };
  const dc = (pre: string, cin: number, mid: number, cout: number) => {
    p(`${pre}.conv1.weight`, [mid, cin, 3, 3, 3]);
    bn(`${pre}.bn1`, mid);
    p(`${pre}.conv2.weight`, [cout, mid, 3, 3, 3]);
    bn(`${pre}.bn2`, cout);
  };
  let c = cfg.in_channels;
  cfg.enc.forEach(([mid, o], i) => {
    dc(`enc.${i}`, c, mid!, o!);
    c = o!;
  });
  const pl = plan(cfg);
  const k = cfg.up_kernel;
  pl.ups.forEach((u, i) => {
    p(`up.${i}.weight`, [u.cin, u.cout, k, k, k]);
    if (cfg.up_bias) p(`up.${i}.bias`, [u.cout]);
  });
  cfg.dec.forEach(([mid, o], i) => dc(`dec.${i}`, pl.ups[i]!.cout + pl.ups[i]!.skip, mid!, o!));
  p("head.weight", [cfg.num_classes, pl.head, 1, 1, 1]);
  p("head.bias", [cfg.num_classes]);
  return out;
}

/** Padded plain 3D U-Net (reference `UNetPlain`, dims 3). State-dict names
 * enc.{i}.{conv1,bn1,conv2,bn2}.*, up.{j}.weight[, bias], dec.{j}.*, head.{weight,bias}, in PyTorch's
 * registration order (enc, up, dec, head). `forward` returns logits. */
export class UNet3dFamily extends Module implements SegmentationNet {
  readonly config: Record<string, any>;
  readonly cfg: UNet3dFamilyConfig;
  readonly enc: ModuleList<DoubleConv3d>;
  readonly up: ModuleList<ConvTranspose3d>;
  readonly dec: ModuleList<DoubleConv3d>;
  readonly head: Conv3d;

  constructor(device: Device, readonly name: string, config: Record<string, any>, defaults: UNet3dFamilyConfig) {
    super(device);
    const cfg = (this.cfg = validateUNet3dConfig(name, config, defaults));
    this.config = structuredClone(cfg);
    this.enc = this.child("enc", new ModuleList<DoubleConv3d>(device));
    let c = cfg.in_channels;
    for (const [mid, out] of cfg.enc) {
      this.enc.add(new DoubleConv3d(device, c, mid!, out!));
      c = out!;
    }
    const p = plan(cfg);
    this.up = this.child("up", new ModuleList<ConvTranspose3d>(device));
    this.dec = this.child("dec", new ModuleList<DoubleConv3d>(device));
    // PyTorch appends up[j] and dec[j] in one loop, but up and dec are two ModuleLists registered
    // (up first) before it, so the state dict lists every up.* before every dec.*.
    for (let i = 0; i < cfg.dec.length; i++) {
      const u = p.ups[i]!;
      const [mid, out] = cfg.dec[i]!;
      this.up.add(
        cfg.up_kernel === 2
          ? new ConvTranspose3d(device, u.cin, u.cout, 2, { stride: 2, bias: cfg.up_bias })
          : new ConvTranspose3d(device, u.cin, u.cout, 3, { stride: 2, padding: 1, outputPadding: 1, bias: cfg.up_bias }),
      );
      this.dec.add(new DoubleConv3d(device, u.cout + u.skip, mid!, out!));
    }
    this.head = this.child("head", new Conv3d(device, p.head, cfg.num_classes, 1));
  }

  /** Throws a PulmoError unless the shape is [N, in_channels, D, H, W] with D, H, W multiples of
   * 2^(levels − 1) (every pooling must halve exactly so that the up-sampled map matches its skip). */
  checkInput(shape: readonly number[]): void {
    checkInputShape(this.name, this.cfg, shape);
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
          h = maxPool3d(h, { kernel: 2 });
        }
      }
      for (let i = 0; i < this.dec.items.length; i++)
        h = this.dec.items[i]!.forward(concat([this.up.items[i]!.forward(h), skips.pop()!], 1));
      return this.head.forward(h);
    });
  }
}

function checkInputShape(name: string, cfg: UNet3dFamilyConfig, shape: readonly number[]): void {
  const f = 2 ** (cfg.enc.length - 1);
  if (
    !Array.isArray(shape) ||
    shape.length !== 5 ||
    !shape.every(isPosInt) ||
    shape[1] !== cfg.in_channels ||
    shape.slice(2).some((d) => d % f !== 0)
  )
    throw new PulmoError(
      `${name}: input must be [N, ${cfg.in_channels}, D, H, W] with D, H and W multiples of ${f} (${cfg.enc.length - 1} poolings), got ${Array.isArray(shape) ? shapeStr(shape) : JSON.stringify(shape)}`,
    );
}

/** Trainable parameters (BN running statistics excluded), from the config alone. */
export function unet3dFamilyParameterCount(cfg: UNet3dFamilyConfig): number {
  return stateDictSpec(cfg)
    .filter((s) => !s.buffer)
    .reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
}

/** Forward MACs (MODELS.md / reference `count_macs`: conv = output elements × Cin × k³, ConvT = input
 * elements × Cout × k³) for an input [N, C, D, H, W]. */
export function unet3dFamilyForwardMacs(name: string, cfg: UNet3dFamilyConfig, inputShape: readonly number[] | undefined): number {
  if (inputShape === undefined) throw new PulmoError(`${name} forwardMacs: no input shape given and the config has no input_shape`);
  checkInputShape(name, cfg, inputShape);
  const n = inputShape[0]!;
  let vox = inputShape[2]! * inputShape[3]! * inputShape[4]!;
  let macs = 0;
  let c = cfg.in_channels;
  const sizes: number[] = [];
  cfg.enc.forEach(([mid, out], i) => {
    macs += n * vox * 27 * (c * mid! + mid! * out!);
    c = out!;
    if (i < cfg.enc.length - 1) {
      sizes.push(vox);
      vox /= 8;
    }
  });
  const p = plan(cfg);
  const k3 = cfg.up_kernel ** 3;
  cfg.dec.forEach(([mid, out], i) => {
    const u = p.ups[i]!;
    macs += n * vox * u.cin * u.cout * k3;
    vox = sizes.pop()!;
    macs += n * vox * 27 * ((u.cout + u.skip) * mid! + mid! * out!);
  });
  return macs + n * vox * p.head * cfg.num_classes;
}

/** The config-only functions a member of the family exports, bound to its name and paper preset:
 * resolveConfig (keys left out take the preset's values), parameterCount, forwardMacs (default
 * input: config.input_shape, then the preset's spatial extents with the config's channels) and
 * stateDictKeys (PyTorch order, without num_batches_tracked). */
export function unet3dFamilyFunctions(name: string, paper: UNet3dFamilyConfig) {
  const resolveConfig = (config: Record<string, any> = {}): UNet3dFamilyConfig => validateUNet3dConfig(name, config, paper);
  return {
    resolveConfig,
    parameterCount: (config: Record<string, any> = {}): number => unet3dFamilyParameterCount(resolveConfig(config)),
    forwardMacs(config: Record<string, any> = {}, inputShape?: readonly number[]): number {
      const cfg = resolveConfig(config);
      const fallback = [1, cfg.in_channels, ...paper.input_shape!.slice(2)];
      return unet3dFamilyForwardMacs(name, cfg, inputShape ?? cfg.input_shape ?? fallback);
    },
    stateDictKeys: (config: Record<string, any> = {}): KeySpec[] => stateDictSpec(resolveConfig(config)),
  };
}

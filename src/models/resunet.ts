import { PulmoError, tidy, type Device, type Tensor } from "../runtime/index.ts";
import { Module } from "../graph/module.ts";
import { Conv3d } from "../graph/nn.ts";
import { add, concat } from "../graph/ops/index.ts";
import type { ModelFactory, SegmentationNet } from "./model.ts";
import { MConv, Sequential, checkUNetInput, configError, isPosInt, validateUNetLike, type Layer } from "./monai_blocks.ts";

/** Config of the residual U-Net (MODELS.md §4c): the keys of shared/reference/models.py `_RES`
 * (MONAI `UNet(3, in, nc, channels, strides, kernel_size, up_kernel_size, num_res_units, norm=BATCH,
 * act=PReLU, dropout)`). */
export interface ResUNetConfig {
  in_channels: number;
  num_classes: number;
  /** widths per level, the last one the bottom; at least 2 */
  channels: number[];
  /** one stride per down-sampling (channels.length - 1 entries) */
  strides: number[];
  /** odd; default 3 */
  kernel_size?: number;
  /** odd; default 3 */
  up_kernel_size?: number;
  /** residual units' subunits on the way down (> 0; MONAI's num_res_units = 0 builds plain convs, not ported) */
  num_res_units: number;
  /** element-wise dropout after every BN (train mode only); default 0 */
  dropout?: number;
  /** [N, C, D, H, W]; informational (MAC counts), not required */
  input_shape?: number[];
}

type Cfg = ReturnType<typeof validateUNetLike> & { num_res_units: number };

function validate(cfg: Record<string, any>): Cfg {
  const base = validateUNetLike("resunet", cfg, ["num_res_units"]);
  const bad = configError("resunet");
  if (!isPosInt(cfg.num_res_units)) bad(`num_res_units must be a positive integer (only MONAI's residual variant is built), got ${JSON.stringify(cfg.num_res_units)}`);
  return { ...base, num_res_units: cfg.num_res_units };
}

/** monai.networks.blocks.ResidualUnit (3D, norm BATCH, act PReLU): `conv.unit{i}` = Convolution
 * (the first carries the stride; the last is conv-only when `lastConvOnly`), plus `residual`: a
 * conv k with the same stride when strided, a 1³ conv when only the width changes, else identity. */
export class ResidualUnit extends Module implements Layer {
  readonly conv: Sequential;
  readonly residual: Conv3d | null;
  constructor(device: Device, cin: number, cout: number, stride: number, k: number, subunits: number, dropout: number, lastConvOnly = false) {
    super(device);
    this.conv = this.child("conv", new Sequential(device));
    let sc = cin, ss = stride;
    const n = Math.max(1, subunits);
    for (let su = 0; su < n; su++) {
      const convOnly = lastConvOnly && su === n - 1;
      this.conv.add(`unit${su}`, new MConv(device, sc, cout, { kernel: k, stride: ss, norm: "batch", act: "prelu", dropout, convOnly }));
      sc = cout;
      ss = 1;
    }
    this.residual = null;
    if (stride !== 1 || cin !== cout) {
      const [rk, rp] = stride !== 1 ? [k, Math.floor(k / 2)] : [1, 0];
      this.residual = this.child("residual", new Conv3d(device, cin, cout, rk, { stride, padding: rp }));
    }
  }
  forward(x: Tensor): Tensor {
    return add(this.conv.forward(x), this.residual ? this.residual.forward(x) : x);
  }
}

/** monai.networks.layers.SkipConnection (cat): cat([x, submodule(x)], dim 1). */
export class SkipConnection extends Module implements Layer {
  readonly submodule: Layer;
  constructor(device: Device, submodule: Layer) {
    super(device);
    this.submodule = this.child("submodule", submodule);
  }
  forward(x: Tensor): Tensor {
    return concat([x, this.submodule.forward(x)], 1);
  }
}

/** MONAI UNet with residual units (MODELS.md §4c; shared/reference/models.py ResUNet). State dict
 * `model.0.conv.unit{i}.{conv,adn.N,adn.A}.*`, `model.0.residual.*`, `model.1.submodule.…`,
 * `model.2.0.conv.*` (ConvT [I, O, k, k, k]), `model.2.1.conv.unit0.*`. */
export class ResUNet extends Module implements SegmentationNet {
  readonly config: Record<string, any>;
  private readonly cfg: Cfg;
  readonly model: Sequential;

  constructor(device: Device, config: Record<string, any>) {
    super(device);
    this.cfg = validate(config);
    this.config = { ...config };
    const { kernel_size: k, up_kernel_size: uk, num_res_units: nru, dropout: dr } = this.cfg;
    const down = (cin: number, cout: number, s: number) => new ResidualUnit(device, cin, cout, s, k, nru, dr);
    const up = (cin: number, cout: number, s: number, top: boolean) => {
      const seq = new Sequential(device);
      seq.add("0", new MConv(device, cin, cout, { kernel: uk, stride: s, norm: "batch", act: "prelu", dropout: dr, transposed: true }));
      seq.add("1", new ResidualUnit(device, cout, cout, 1, k, 1, dr, top));
      return seq;
    };
    const create = (inc: number, outc: number, ch: number[], st: number[], top: boolean): Sequential => {
      const c = ch[0]!, s = st[0]!;
      const seq = new Sequential(device);
      seq.add("0", down(inc, c, s));
      let sub: Layer, upc: number;
      if (ch.length > 2) {
        sub = create(c, c, ch.slice(1), st.slice(1), false);
        upc = 2 * c;
      } else {
        sub = down(c, ch[1]!, 1);
        upc = c + ch[1]!;
      }
      seq.add("1", new SkipConnection(device, sub));
      seq.add("2", up(upc, outc, s, top));
      return seq;
    };
    this.model = this.child("model", create(this.cfg.in_channels, this.cfg.num_classes, this.cfg.channels, this.cfg.strides, true));
  }

  /** Throws a PulmoError unless x is [N, in_channels, D, H, W] with D, H, W multiples of Π strides. */
  checkInput(shape: readonly number[]): void {
    checkUNetInput("resunet", shape, this.cfg.in_channels, this.cfg.strides);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x.shape);
    return tidy(this.device, () => this.model.forward(x));
  }
}

/** Walks the network: calls `conv(cin, cout, k, transposed, voxelsIn, voxelsOut)` per conv layer and
 * `norm(c)` per BN + PReLU pair; voxels are N × spatial volume. */
function walk(cfg: Cfg, spatial: number[], n: number, conv: (cin: number, cout: number, k: number, transposed: boolean, vin: number, vout: number) => void, normAct: (c: number) => void): void {
  const { kernel_size: k, up_kernel_size: uk, num_res_units: nru } = cfg;
  const vol = (s: number[]) => n * s.reduce((a, b) => a * b, 1);
  const ru = (cin: number, cout: number, stride: number, subunits: number, lastConvOnly: boolean, sIn: number[]): number[] => {
    const sOut = sIn.map((d) => Math.floor((d - 1) / stride) + 1);
    let sc = cin, ss = stride, cur = sIn;
    for (let su = 0; su < subunits; su++) {
      const next = cur.map((d) => Math.floor((d - 1) / ss) + 1);
      conv(sc, cout, k, false, vol(cur), vol(next));
      if (!(lastConvOnly && su === subunits - 1)) normAct(cout);
      sc = cout;
      ss = 1;
      cur = next;
    }
    if (stride !== 1) conv(cin, cout, k, false, vol(sIn), vol(sOut));
    else if (cin !== cout) conv(cin, cout, 1, false, vol(sIn), vol(sOut));
    return sOut;
  };
  const create = (inc: number, outc: number, ch: number[], st: number[], top: boolean, sIn: number[]) => {
    const c = ch[0]!, s = st[0]!;
    const sDown = ru(inc, c, s, nru, false, sIn);
    let upc: number;
    if (ch.length > 2) {
      create(c, c, ch.slice(1), st.slice(1), false, sDown);
      upc = 2 * c;
    } else {
      ru(c, ch[1]!, 1, nru, false, sDown);
      upc = c + ch[1]!;
    }
    const sUp = sDown.map((d) => (d - 1) * s - 2 * Math.floor(uk / 2) + uk + s - 1);
    conv(upc, outc, uk, true, vol(sDown), vol(sUp));
    normAct(outc);
    ru(outc, outc, 1, 1, top, sUp);
  };
  create(cfg.in_channels, cfg.num_classes, cfg.channels, cfg.strides, true, spatial);
}

/** Trainable parameters (BN running statistics excluded), computed from the config alone. */
export function parameterCount(config: Record<string, any>): number {
  const cfg = validate(config);
  let p = 0;
  walk(cfg, [1, 1, 1], 1, (cin, cout, k) => (p += cin * cout * k ** 3 + cout), (c) => (p += 2 * c + 1));
  return p;
}

/** Forward MACs of the convs and transposed convs (MODELS.md / models.py count_macs: conv = output
 * elements × Cin × k³, ConvT = input elements × Cout × k³) for an input [N, C, D, H, W]. */
export function forwardMacs(config: Record<string, any>, inputShape: readonly number[] = config.input_shape): number {
  const cfg = validate(config);
  if (!Array.isArray(inputShape)) throw new PulmoError(`resunet forwardMacs: input shape must be [N, C, D, H, W], got ${JSON.stringify(inputShape)}`);
  checkUNetInput("resunet forwardMacs", inputShape, cfg.in_channels, cfg.strides);
  let macs = 0;
  walk(cfg, inputShape.slice(2), inputShape[0]!, (cin, cout, k, transposed, vin, vout) => (macs += (transposed ? vin : vout) * cin * cout * k ** 3), () => {});
  return macs;
}

export const factory: ModelFactory = (device, config) => new ResUNet(device, config);

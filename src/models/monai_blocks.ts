import { PulmoError, type Device, type Tensor } from "../runtime/index.ts";
import { checkConfigKeys, checkDropout, checkPosInts, isPosInt, isPosIntList } from "./config.ts";
import { Module } from "../graph/module.ts";
import { BatchNorm, Conv3d, ConvTranspose3d, Dropout, InstanceNorm, PReLU } from "../graph/nn.ts";
import { relu, sigmoid } from "../graph/ops/index.ts";

/** MONAI building blocks (monai/networks/blocks/convolutions.py, layers/factories.py) rebuilt with
 * MONAI's module names, so MONAI state dicts load key for key. Shared by `resunet` (MONAI UNet) and
 * `attention_unet` (MONAI AttentionUnet); mirrors `_ADN` / `_MConv` of shared/reference/models.py. */

/** Anything with a one-tensor forward. */
export interface Layer extends Module {
  forward(x: Tensor): Tensor;
}

/** nn.Sequential: children named by the caller (0, 1, ... or unit0, unit1, ...), applied in order. */
export class Sequential extends Module implements Layer {
  readonly items: Layer[] = [];
  add<M extends Layer>(name: string, m: M): M {
    this.child(name, m);
    this.items.push(m);
    return m;
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.items) h = m.forward(h);
    return h;
  }
}

/** nn.ReLU (no state). */
export class ReLU extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** nn.Sigmoid (no state). */
export class Sigmoid extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export type NormKind = "batch" | "instance" | null;
export type ActKind = "relu" | "prelu" | null;

/** MONAI ADN with ordering "NDA": N (BatchNorm3d, or InstanceNorm3d without affine as MONAI's
 * default), D (nn.Dropout, element-wise: MONAI's ADN uses dropout_dim 1), A (ReLU, or PReLU with one
 * slope initialised to 0.25). A dropout rate of 0 adds no D (PyTorch's Dropout(0) holds no state). */
export class ADN extends Sequential {
  constructor(device: Device, channels: number, norm: NormKind, act: ActKind, dropout: number) {
    super(device);
    if (norm === "batch") this.add("N", new BatchNorm(device, channels));
    else if (norm === "instance") this.add("N", new InstanceNorm(device, channels));
    if (dropout > 0) this.add("D", new Dropout(device, dropout));
    if (act === "relu") this.add("A", new ReLU(device));
    else if (act === "prelu") this.add("A", new PReLU(device, 1, 0.25));
  }
}

export interface MConvOptions {
  /** kernel size (cubic); default 3 */
  kernel?: number;
  /** stride (isotropic); default 1 */
  stride?: number;
  norm?: NormKind;
  act?: ActKind;
  dropout?: number;
  bias?: boolean;
  /** conv only: no `adn` child */
  convOnly?: boolean;
  transposed?: boolean;
  /** default kernel // 2 */
  padding?: number;
  /** transposed only; default stride - 1 */
  outputPadding?: number;
}

/** monai.networks.blocks.Convolution (3D): `conv` (Conv3d or ConvTranspose3d, bias by default)
 * then `adn` unless conv-only or nothing to add. */
export class MConv extends Module implements Layer {
  readonly conv: Conv3d | ConvTranspose3d;
  readonly adn: ADN | null;
  constructor(device: Device, cin: number, cout: number, o: MConvOptions = {}) {
    super(device);
    const k = o.kernel ?? 3;
    const s = o.stride ?? 1;
    const p = o.padding ?? Math.floor(k / 2);
    const bias = o.bias ?? true;
    const norm = o.norm === undefined ? "instance" : o.norm;
    const act = o.act === undefined ? "prelu" : o.act;
    const dropout = o.dropout ?? 0;
    this.conv = this.child(
      "conv",
      o.transposed
        ? new ConvTranspose3d(device, cin, cout, k, { stride: s, padding: p, outputPadding: o.outputPadding ?? s - 1, bias })
        : new Conv3d(device, cin, cout, k, { stride: s, padding: p, bias }),
    );
    this.adn = !o.convOnly && (norm !== null || act !== null || dropout > 0) ? this.child("adn", new ADN(device, cout, norm, act, dropout)) : null;
  }
  forward(x: Tensor): Tensor {
    const y = this.conv.forward(x);
    return this.adn ? this.adn.forward(y) : y;
  }
}

// ---------------------------------------------------------------------------------------------
// Config validation shared by both networks (keys of shared/reference/models.py _ATT / _RES)
// ---------------------------------------------------------------------------------------------

export { configError, isPosInt } from "./config.ts";

/** Checks the keys common to MONAI UNet and AttentionUnet; rejects unknown keys. */
export function validateUNetLike(
  what: string,
  cfg: Record<string, any>,
  extraKeys: string[],
): { in_channels: number; num_classes: number; channels: number[]; strides: number[]; kernel_size: number; up_kernel_size: number; dropout: number; input_shape?: number[] } {
  const known = ["in_channels", "num_classes", "channels", "strides", "kernel_size", "up_kernel_size", "dropout", "input_shape", ...extraKeys];
  const bad = checkConfigKeys(what, cfg, known);
  checkPosInts(bad, ["in_channels", "num_classes"], (k) => cfg[k]);
  const ch = cfg.channels;
  if (!Array.isArray(ch) || ch.length < 2 || !ch.every(isPosInt)) bad(`channels must be a list of at least 2 positive integers, got ${JSON.stringify(ch)}`);
  const st = cfg.strides;
  if (!Array.isArray(st) || !st.every(isPosInt)) bad(`strides must be a list of positive integers, got ${JSON.stringify(st)}`);
  if (st.length !== ch.length - 1) bad(`strides needs channels.length - 1 = ${ch.length - 1} entries, got ${st.length}`);
  const k = cfg.kernel_size ?? 3;
  const uk = cfg.up_kernel_size ?? 3;
  for (const [name, v] of [["kernel_size", k], ["up_kernel_size", uk]] as const)
    if (!isPosInt(v) || v % 2 !== 1) bad(`${name} must be an odd positive integer (MONAI 'same' padding k // 2), got ${JSON.stringify(v)}`);
  const dropout = cfg.dropout ?? 0;
  checkDropout(bad, dropout, cfg.dropout);
  if (cfg.input_shape !== undefined && !isPosIntList(cfg.input_shape, 5))
    bad(`input_shape must be [N, C, D, H, W], got ${JSON.stringify(cfg.input_shape)}`);
  return { in_channels: cfg.in_channels, num_classes: cfg.num_classes, channels: [...ch], strides: [...st], kernel_size: k, up_kernel_size: uk, dropout, input_shape: cfg.input_shape };
}

/** Checks an input shape [N, in_channels, D, H, W] whose spatial extents are multiples of the
 * product of the strides (otherwise the transposed convs do not restore the skip sizes). */
export function checkUNetInput(what: string, shape: readonly number[], inChannels: number, strides: readonly number[]): void {
  const f = strides.reduce((a, b) => a * b, 1);
  if (shape.length !== 5 || shape[1] !== inChannels || !shape.every((d) => Number.isInteger(d) && d > 0) || shape.slice(2).some((d) => d % f !== 0))
    throw new PulmoError(`${what}: input must be [N, ${inChannels}, D, H, W] with D, H, W multiples of ${f}, got [${shape.join(", ")}]`);
}

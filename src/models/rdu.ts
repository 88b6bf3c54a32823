import { PulmoError, shapeStr, tidy, type Device, type Tensor } from "../runtime/index.ts";
import { checkConfigKeys, checkDropout, checkPosInts, isPosInt, isPosIntList } from "./config.ts";
import { Module } from "../graph/module.ts";
import { BatchNorm, Conv2d, Conv3d, ConvTranspose3d, Dropout } from "../graph/nn.ts";
import { Generator } from "../graph/ops/dropout.ts";
import { concat, convLstm2d, maxPool3d, permute, relu, type RecurrentActivation } from "../graph/ops/index.ts";
import type { ModelFactory, SegmentationNet } from "./model.ts";

/** Config of the Recurrent 3D-DenseUNet (MODELS.md §7), the keys of shared/reference/models.py
 * `RDU` (PRESETS.rdu). */
export interface RduConfig {
  in_channels: number;
  num_classes: number;
  /** [a, b, c, L]: widths of encoder levels 1..3 and the ConvLSTM hidden channels */
  widths: number[];
  /** number of stacked ConvLSTM (+BN) layers at the bottom, ≥ 1 */
  n_lstm: number;
  /** gate activation of i, f, o: "hard_sigmoid" (Keras 2, default) or "sigmoid" */
  recurrent_activation?: RecurrentActivation;
  /** SpatialDropout3D rate after each pool (training only), in [0, 1); default 0.1 */
  dropout?: number;
  /** [N, C, D, H, W]; informational (MAC counts), not required */
  input_shape?: number[];
}

/** A validated config with every key present but input_shape. */
export type RduResolvedConfig = Required<Omit<RduConfig, "input_shape">> & { input_shape?: number[] };
type Cfg = RduResolvedConfig;


/** The paper preset (shared/reference/models.py PRESETS.rdu.paper, without input_shape): keys
 * left out of a config take these values. */
export const PAPER_CONFIG: Readonly<Cfg> = Object.freeze({
  in_channels: 1,
  num_classes: 1,
  widths: [32, 64, 128, 256],
  n_lstm: 3,
  recurrent_activation: "hard_sigmoid" as RecurrentActivation,
  dropout: 0.1,
});
const KNOWN = new Set([...Object.keys(PAPER_CONFIG), "input_shape"]);

/** Validates a config and fills keys left out with the paper preset's values. */
export function resolveConfig(config: Record<string, any>): Cfg {
  const bad = checkConfigKeys("rdu", config, KNOWN);
  const cfg = { ...PAPER_CONFIG, ...config };
  checkPosInts(bad, ["in_channels", "num_classes"], (k) => (cfg as Record<string, any>)[k]);
  if (!isPosIntList(cfg.widths, 4))
    bad(`widths must be [a, b, c, L], four positive integers, got ${JSON.stringify(cfg.widths)}`);
  if (!isPosInt(cfg.n_lstm)) bad(`n_lstm must be a positive integer, got ${JSON.stringify(cfg.n_lstm)}`);
  const act = cfg.recurrent_activation;
  if (act !== "hard_sigmoid" && act !== "sigmoid")
    bad(`recurrent_activation must be "hard_sigmoid" or "sigmoid", got ${JSON.stringify(act)}`);
  const p = cfg.dropout;
  checkDropout(bad, p);
  const shape = cfg.input_shape;
  if (shape !== undefined) {
    if (!isPosIntList(shape, 5))
      bad(`input_shape must be [N, C, D, H, W] positive integers, got ${JSON.stringify(shape)}`);
    if (shape[1] !== cfg.in_channels) bad(`input_shape ${JSON.stringify(shape)} has ${shape[1]} channels, in_channels is ${cfg.in_channels}`);
    if (shape[3] % 8 !== 0 || shape[4] % 8 !== 0) bad(`input_shape ${JSON.stringify(shape)}: H and W must be multiples of 8 (three 1×2×2 pools)`);
  }
  const out: Cfg = {
    in_channels: cfg.in_channels,
    num_classes: cfg.num_classes,
    widths: [...cfg.widths],
    n_lstm: cfg.n_lstm,
    recurrent_activation: act,
    dropout: p,
  };
  if (shape !== undefined) out.input_shape = [...shape];
  return out;
}
const validate = resolveConfig;

/** Channel widths of every layer (MODELS.md §7 table), from the config alone. */
function plan(cfg: Cfg) {
  const [a, b, c, L] = cfg.widths as [number, number, number, number];
  const i = cfg.in_channels;
  const k1 = i + a, k2 = k1 + b, k3 = k2 + c; // dense concatenations k12 (= p1), k22 (= p2), k32
  const u6 = c + k3, u7 = 2 * b, u8 = 2 * a;
  return {
    a, b, c, L, i, k1, k2, k3, u6, u7, u8,
    /** [name, cin, cout] of the 3×3×3 convs, in registration order */
    convs: [
      ["1_1", i, a], ["1_2", i + a, a],
      ["2_1", k1, b], ["2_2", k1 + b, b],
      ["3_1", k2, c], ["3_2", k2 + c, c],
      ["4_1", u6, c], ["4_2", u6 + c, c],
      ["5_1", u7, b], ["5_2", u7 + b, b],
      ["6_1", u8, a], ["6_2", u8 + a, a],
    ] as [string, number, number][],
    /** ConvLSTM input widths */
    lstmIn: Array.from({ length: cfg.n_lstm }, (_, j) => (j === 0 ? k3 : L)),
    /** [cin, cout] of up1..up3 */
    ups: [[L, c], [u6 + c, b], [u7 + b, a]] as [number, number][],
    head: u8 + a,
  };
}

/** Keras ConvLSTM2D(k3, 'same', return_sequences) over the D axis of [N, C, D, H, W]: one Conv2d
 * (`conv.weight [4F, Cin+F, 3, 3]`, `conv.bias [4F]`) over cat(x_t, h_{t−1}), gates i, f, g, o. */
class ConvLSTM extends Module {
  readonly conv: Conv2d;
  constructor(device: Device, readonly cin: number, readonly hidden: number, readonly act: RecurrentActivation) {
    super(device);
    this.conv = this.child("conv", new Conv2d(device, cin + hidden, 4 * hidden, 3, { padding: 1 }));
  }
  forward(x: Tensor): Tensor {
    // [N, C, T, H, W] → [N, T, C, H, W] (time = depth) → ConvLSTM → [N, T, F, H, W] → [N, F, T, H, W]
    const seq = permute(x, [0, 2, 1, 3, 4]);
    const y = convLstm2d(seq, this.conv.weight, this.conv.bias, { hidden: this.hidden, kernel: 3, recurrentActivation: this.act, returnSequences: true });
    seq.dispose();
    const out = permute(y, [0, 2, 1, 3, 4]);
    y.dispose();
    return out;
  }
}

const BN_OPTS = { eps: 1e-3, momentum: 0.01 }; // Keras BatchNormalization defaults (momentum 0.99)

/** Recurrent 3D-DenseUNet (MODELS.md §7; shared/reference/models.py RDU), NCDHW. State-dict names:
 * conv{1..6}_{1,2}.*, bn{1..6}_{1,2}.*, lstm{k}.conv.*, bn_lstm{k}.*, up{1..3}.*, final.* in
 * PyTorch registration order. Returns logits (apply sigmoid for probabilities). */
export class RDU extends Module implements SegmentationNet {
  readonly config: Record<string, any>;
  private readonly cfg: Cfg;
  private readonly convs = new Map<string, Conv3d>();
  private readonly bns = new Map<string, BatchNorm>();
  readonly lstms: ConvLSTM[] = [];
  readonly bnLstms: BatchNorm[] = [];
  readonly ups: ConvTranspose3d[] = [];
  readonly final: Conv3d;
  readonly drops: Dropout[] = [];

  constructor(device: Device, config: Record<string, any>) {
    super(device);
    this.cfg = validate(config);
    this.config = { ...config };
    const cfg = this.cfg;
    const p = plan(cfg);
    const cv = (idx: number) => {
      const [name, cin, cout] = p.convs[idx]!;
      this.convs.set(name, this.child(`conv${name}`, new Conv3d(device, cin, cout, 3, { padding: 1 })));
      this.bns.set(name, this.child(`bn${name}`, new BatchNorm(device, cout, BN_OPTS)));
    };
    const up = (j: number) => {
      const [cin, cout] = p.ups[j]!;
      this.ups.push(this.child(`up${j + 1}`, new ConvTranspose3d(device, cin, cout, [1, 2, 2], { stride: [1, 2, 2] })));
    };
    for (let k = 0; k < 6; k++) cv(k); // encoder: conv1_1 .. bn3_2
    p.lstmIn.forEach((cin, j) => {
      this.lstms.push(this.child(`lstm${j + 1}`, new ConvLSTM(device, cin, p.L, cfg.recurrent_activation)));
      this.bnLstms.push(this.child(`bn_lstm${j + 1}`, new BatchNorm(device, p.L, BN_OPTS)));
    });
    up(0);
    cv(6), cv(7);
    up(1);
    cv(8), cv(9);
    up(2);
    cv(10), cv(11);
    this.final = this.child("final", new Conv3d(device, p.head, cfg.num_classes, 1));
    for (let j = 1; j <= 3; j++) this.drops.push(this.child(`drop${j}`, new Dropout(device, cfg.dropout, true, new Generator(0x7d0 + j))));
  }

  /** Throws a PulmoError unless x is [N, in_channels, D, H, W] with H and W multiples of 8. */
  checkInput(shape: readonly number[]): void {
    if (shape.length !== 5 || shape[1] !== this.cfg.in_channels || shape.some((d) => !isPosInt(d)) || shape[3]! % 8 !== 0 || shape[4]! % 8 !== 0)
      throw new PulmoError(`rdu: input must be [N, ${this.cfg.in_channels}, D, H, W] with H and W multiples of 8 (three 1×2×2 pools), got ${shapeStr(shape)}`);
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x.shape);
    return tidy(this.device, () => {
      const r = (name: string, t: Tensor) => relu(this.bns.get(name)!.forward(this.convs.get(name)!.forward(t)));
      const pool = (t: Tensor) => maxPool3d(t, { kernel: [1, 2, 2] });
      const drop = (j: number, t: Tensor) => this.drops[j]!.forward(t);
      const [up1, up2, up3] = this.ups as [ConvTranspose3d, ConvTranspose3d, ConvTranspose3d];

      const c11 = r("1_1", x);
      const c12 = r("1_2", concat([x, c11], 1));
      const p1 = drop(0, pool(concat([x, c12], 1)));
      const c21 = r("2_1", p1);
      const c22 = r("2_2", concat([p1, c21], 1));
      const p2 = drop(1, pool(concat([p1, c22], 1)));
      const c31 = r("3_1", p2);
      const c32 = r("3_2", concat([p2, c31], 1));
      const k32 = concat([p2, c32], 1);
      let y = drop(2, pool(k32));
      for (let j = 0; j < this.lstms.length; j++) y = this.bnLstms[j]!.forward(this.lstms[j]!.forward(y));
      const u6 = concat([up1.forward(y), k32], 1);
      const c61 = r("4_1", u6);
      const k62 = concat([u6, r("4_2", concat([u6, c61], 1))], 1);
      const u7 = concat([up2.forward(k62), c22], 1);
      const c71 = r("5_1", u7);
      const k72 = concat([u7, r("5_2", concat([u7, c71], 1))], 1);
      const u8 = concat([up3.forward(k72), c12], 1);
      const c81 = r("6_1", u8);
      const k82 = concat([u8, r("6_2", concat([u8, c81], 1))], 1);
      return this.final.forward(k82);
    });
  }
}

/** Trainable parameters (BN running statistics excluded), computed from the config alone. */
export function parameterCount(config: Record<string, any>): number {
  const cfg = validate(config);
  const p = plan(cfg);
  let n = 0;
  for (const [, cin, cout] of p.convs) n += cin * cout * 27 + cout + 2 * cout; // conv + bias, BN affine
  for (const cin of p.lstmIn) n += 4 * p.L * (cin + p.L) * 9 + 4 * p.L + 2 * p.L; // ConvLSTM conv + bias, BN
  for (const [cin, cout] of p.ups) n += cin * cout * 4 + cout;
  return n + p.head * cfg.num_classes + cfg.num_classes;
}

/** Forward MACs as shared/reference/models.py count_macs counts them: conv = output elements × Cin ×
 * prod(k); ConvT = input elements × Cout × prod(k); the ConvLSTM conv once per time step (D steps).
 * inputShape [N, C, D, H, W] (default: config.input_shape, else the paper's 1×Cin×8×256×256). */
export function forwardMacs(config: Record<string, any>, inputShape?: readonly number[]): number {
  const cfg = validate(config);
  inputShape ??= cfg.input_shape ?? [1, cfg.in_channels, 8, 256, 256];
  if (!isPosIntList(inputShape, 5))
    throw new PulmoError(`rdu forwardMacs: input shape must be [N, C, D, H, W], got ${JSON.stringify(inputShape)}`);
  const [n, ch, d, h, w] = inputShape as [number, number, number, number, number];
  if (ch !== cfg.in_channels) throw new PulmoError(`rdu forwardMacs: input has ${ch} channels, in_channels is ${cfg.in_channels}`);
  if (h % 8 !== 0 || w % 8 !== 0) throw new PulmoError(`rdu forwardMacs: H and W must be multiples of 8, got ${shapeStr(inputShape)}`);
  const p = plan(cfg);
  const vox = [1, 4, 16, 64].map((f) => (n * d * h * w) / f); // voxels at full, /2, /4, /8 resolution (H, W halved)
  const conv = (idx: number, level: number) => vox[level]! * p.convs[idx]![1] * p.convs[idx]![2] * 27;
  let macs = 0;
  [0, 0, 1, 1, 2, 2, 2, 2, 1, 1, 0, 0].forEach((level, idx) => (macs += conv(idx, level)));
  for (const cin of p.lstmIn) macs += vox[3]! * (cin + p.L) * 4 * p.L * 9;
  macs += vox[3]! * p.ups[0]![1] * 4 * p.ups[0]![0]; // ConvT: input elements (Cin × voxels) × Cout × 4
  macs += vox[2]! * p.ups[1]![1] * 4 * p.ups[1]![0];
  macs += vox[1]! * p.ups[2]![1] * 4 * p.ups[2]![0];
  return macs + vox[0]! * p.head * cfg.num_classes;
}

export const factory: ModelFactory = (device, config) => new RDU(device, config);

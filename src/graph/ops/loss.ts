import { PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, expectSameDevice, groups1d, label } from "../launch.ts";
import { sumMiddle } from "./reduce.ts";

/** Loss codes of kernels/loss/{reduce,combine,backward}.wgsl (the `LOSS` override). */
const LOSS = {
  bce: 0,
  bce_with_logits: 1,
  weighted_bce_target: 2,
  weighted_bce_prediction: 3,
  dice: 4,
  tversky: 5,
  iou: 6,
  focal: 7,
  dice_sigmoid: 8,
  vnet_dice: 9,
  dice_bce: 10,
} as const;
type LossKind = keyof typeof LOSS;

/** Per-loss scalars passed to the kernels (unused ones are 0). */
interface LossParams {
  smooth: number;
  alpha: number;
  gamma: number;
}

const THREADS = 128;
/** Cap on pass-1 workgroups per chunk: each then grid-strides, so pass 2 reads at most this many
 * partials per chunk. 4 elements per thread before the cap kicks in. */
const MAX_GROUPS = 1024;

/** Elements per dispatch so pred/target chunks fit one storage binding; a multiple of 64 so
 * every chunk's byte offset stays 256-aligned. */
function chunkElements(t: Tensor): number {
  return Math.max(64, Math.floor(t.device.limits.maxBindingBytes / 4 / 64) * 64);
}

/** Calls fn(start, n, predChunk, targetChunk, ...extraChunks) over binding-sized chunks of the
 * element-aligned tensors, disposing the views it makes. */
function forChunks(tensors: Tensor[], fn: (start: number, n: number, views: Tensor[]) => void): void {
  const size = tensors[0]!.size;
  const step = chunkElements(tensors[0]!);
  for (let start = 0; start < size; start += step) {
    const n = Math.min(step, size - start);
    const whole = n === size;
    const views = tensors.map((t) => (whole ? t : t.chunk(start, [n])));
    try {
      fn(start, n, views);
    } finally {
      if (!whole) views.forEach((v) => v.dispose());
    }
  }
}

function validate(op: string, predName: string, pred: Tensor, target: Tensor): void {
  expectFloat(op, predName, pred);
  expectFloat(op, "target", target);
  expectSameDevice(op, pred, target);
  if (pred.shape.length !== target.shape.length || pred.shape.some((d, i) => d !== target.shape[i]))
    throw new PulmoError(
      `${op}: '${predName}' ${shapeStr(pred.shape)} and 'target' ${shapeStr(target.shape)} must have the same shape`,
    );
  if (pred.size === 0) throw new PulmoError(`${op}: '${predName}' ${shapeStr(pred.shape)} is empty`);
}

function expectNumber(op: string, name: string, v: number, lo: number, hi: number): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi)
    throw new PulmoError(`${op}: option '${name}' must be a finite number in [${lo}, ${hi === Infinity ? "inf" : hi}], got ${v}`);
}

/** Forward: pass 1 (fused partial sums per workgroup), pass 2 (one workgroup: global sums →
 * loss y[0] and stats[0]); backward: element-wise dp from stats and dy. */
function lossOp(op: string, kind: LossKind, pred: Tensor, target: Tensor, params: LossParams): Tensor {
  const device = pred.device;
  const code = LOSS[kind];
  const count = pred.size;
  const lbl = label(op, pred, target);

  // Slots of the partials buffer: chunk c writes its groups at `offset`.
  const plan: { groups: number; offset: number }[] = [];
  let slots = 0;
  forChunks([pred], (_s, n) => {
    const groups = Math.min(Math.ceil(n / (THREADS * 4)), MAX_GROUPS);
    plan.push({ groups, offset: slots });
    slots += groups;
  });
  const partials = Tensor.empty(device, [slots, 4], "f32", "loss partials");
  let c = 0;
  forChunks([pred, target], (_s, n, [pv, tv]) => {
    const { groups, offset } = plan[c++]!;
    device.dispatch({
      kernel: "loss/reduce",
      constants: { LOSS: code },
      bindings: { pred: pv!, gt: tv!, partials },
      uniforms: { n, groups, offset, alpha: params.alpha, gamma: params.gamma },
      workgroups: groups,
      label: lbl,
    });
  });
  const y = Tensor.empty(device, [1], "f32", op);
  const stats = Tensor.empty(device, [4], "f32", "loss stats");
  device.dispatch({
    kernel: "loss/combine",
    constants: { LOSS: code },
    bindings: { partials, y, stats },
    uniforms: { slots, count, smoothing: params.smooth, alpha: params.alpha, gamma: params.gamma },
    workgroups: 1,
    label: lbl,
  });
  partials.dispose();

  const out = record(op, y, [pred], [pred, target, stats], (dy, [ps, ts, ss]) => {
    const dp = Tensor.empty(device, ps!.shape, "f32", `${op} grad`);
    forChunks([ps!, ts!, dp], (_s, n, [pv, tv, dv]) => {
      device.dispatch({
        kernel: "loss/backward",
        constants: { LOSS: code },
        bindings: { pred: pv!, gt: tv!, stats: ss!, dy, dp: dv! },
        uniforms: { n, count, smoothing: params.smooth, alpha: params.alpha, gamma: params.gamma },
        workgroups: groups1d(n),
        label: label(`${op}_backward`, ps, ts),
      });
    });
    return [dp];
  });
  stats.dispose(); // the tape holds its own retained handle when a backward was recorded
  return out;
}

const NONE: LossParams = { smooth: 0, alpha: 0, gamma: 0 };

/** Binary cross-entropy on probabilities, mean over all elements (F.binary_cross_entropy):
 * log p and log(1-p) are clamped at -100 as PyTorch does. Returns a [1] tensor. */
export function bceLoss(p: Tensor, target: Tensor): Tensor {
  validate("bce_loss", "p", p, target);
  return lossOp("bce_loss", "bce", p, target, NONE);
}

/** Binary cross-entropy on logits, mean (F.binary_cross_entropy_with_logits), computed stably as
 * max(x,0) - x*t + log1p(exp(-|x|)). */
export function bceWithLogitsLoss(logits: Tensor, target: Tensor): Tensor {
  validate("bce_with_logits_loss", "logits", logits, target);
  return lossOp("bce_with_logits_loss", "bce_with_logits", logits, target, NONE);
}

export interface WeightedBceOptions {
  /** where the positive-class weight w = (N - sum)/sum takes its sum from: "target" (default,
   * w = (N - sum g)/sum g, the inverse class frequency) or "prediction" (w = (N - sum p)/sum p, as
   * the ResNet-based paper prints it). Either way w is a constant: no gradient flows through it. */
  weightFrom?: "target" | "prediction";
}

/** Class-balanced BCE: -mean(w*g*log p + (1-g)*log(1-p)), logs clamped at -100; w as in
 * `weightFrom`, and 0 when its sum is 0. */
export function weightedBceLoss(p: Tensor, target: Tensor, opts: WeightedBceOptions = {}): Tensor {
  const from = opts.weightFrom ?? "target";
  if (from !== "target" && from !== "prediction")
    throw new PulmoError(`weighted_bce_loss: option 'weightFrom' must be "target" or "prediction", got ${String(from)}`);
  validate("weighted_bce_loss", "p", p, target);
  return lossOp("weighted_bce_loss", from === "target" ? "weighted_bce_target" : "weighted_bce_prediction", p, target, NONE);
}

/** Soft Dice: 1 - (2*sum(p*g) + s) / (sum p + sum g + s), sums over the whole tensor. */
export function diceLoss(p: Tensor, target: Tensor, opts: { smooth?: number } = {}): Tensor {
  const smooth = opts.smooth ?? 1;
  expectNumber("dice_loss", "smooth", smooth, 0, Infinity);
  validate("dice_loss", "p", p, target);
  return lossOp("dice_loss", "dice", p, target, { ...NONE, smooth });
}

/** Tversky: 1 - (TP + s) / (TP + alpha*FP + (1-alpha)*FN + s) with soft TP = sum p*g,
 * FP = sum p*(1-g), FN = sum (1-p)*g; alpha weighs false positives. */
export function tverskyLoss(p: Tensor, target: Tensor, opts: { alpha?: number; smooth?: number } = {}): Tensor {
  const alpha = opts.alpha ?? 0.7;
  const smooth = opts.smooth ?? 1;
  expectNumber("tversky_loss", "alpha", alpha, 0, 1);
  expectNumber("tversky_loss", "smooth", smooth, 0, Infinity);
  validate("tversky_loss", "p", p, target);
  return lossOp("tversky_loss", "tversky", p, target, { ...NONE, alpha, smooth });
}

/** Soft IoU (Jaccard): 1 - (I + s) / (sum p + sum g - I + s), I = sum p*g. */
export function iouLoss(p: Tensor, target: Tensor, opts: { smooth?: number } = {}): Tensor {
  const smooth = opts.smooth ?? 1;
  expectNumber("iou_loss", "smooth", smooth, 0, Infinity);
  validate("iou_loss", "p", p, target);
  return lossOp("iou_loss", "iou", p, target, { ...NONE, smooth });
}

/** Focal loss on probabilities: mean(-a_t*(1-p_t)^gamma*log p_t), p_t = p on positives and 1-p
 * on negatives, a_t = alpha on positives and 1-alpha on negatives (log clamped at -100). Soft
 * targets interpolate: p_t = p*g + (1-p)*(1-g), a_t = alpha*g + (1-alpha)*(1-g), times the BCE. */
export function focalLoss(p: Tensor, target: Tensor, opts: { alpha?: number; gamma?: number } = {}): Tensor {
  const alpha = opts.alpha ?? 0.25;
  const gamma = opts.gamma ?? 2;
  expectNumber("focal_loss", "alpha", alpha, 0, 1);
  expectNumber("focal_loss", "gamma", gamma, 0, Infinity);
  validate("focal_loss", "p", p, target);
  return lossOp("focal_loss", "focal", p, target, { ...NONE, alpha, gamma });
}

// ---------------------------------------------------------------------------------------------
// Losses on logits. The sigmoid ones reuse the fused kernels above (LOSS 8-10); the softmax ones
// (cross-entropy, nnU-Net Dice + CE) use kernels/loss/softmax_ce.wgsl on [N, C, ...spatial].

/** Soft Dice on sigmoid(logits): 1 - (2*sum(p*g) + s) / (sum p + sum g + s), p = sigmoid(z),
 * sums over every element (the whole-model golden loss of the sigmoid networks). Fused: the
 * sigmoid is never materialised; the gradient is dL/dp * p(1-p). */
export function softDiceSigmoidLoss(logits: Tensor, target: Tensor, opts: { smooth?: number } = {}): Tensor {
  const smooth = opts.smooth ?? 1;
  expectNumber("soft_dice_sigmoid_loss", "smooth", smooth, 0, Infinity);
  validate("soft_dice_sigmoid_loss", "logits", logits, target);
  return lossOp("soft_dice_sigmoid_loss", "dice_sigmoid", logits, target, { ...NONE, smooth });
}

export interface DiceBceOptions {
  /** Dice smoothing (default 1) */
  smooth?: number;
  /** weight of the Dice term (default 1) */
  diceWeight?: number;
  /** weight of the BCE term (default 1) */
  bceWeight?: number;
}

/** bceWeight * BCE-with-logits (mean) + diceWeight * soft Dice on sigmoid(logits) (global sums):
 * the usual Dice + BCE of single-channel sigmoid networks, fused into one reduction. */
export function diceBceLoss(logits: Tensor, target: Tensor, opts: DiceBceOptions = {}): Tensor {
  const smooth = opts.smooth ?? 1;
  const diceWeight = opts.diceWeight ?? 1;
  const bceWeight = opts.bceWeight ?? 1;
  expectNumber("dice_bce_loss", "smooth", smooth, 0, Infinity);
  expectNumber("dice_bce_loss", "diceWeight", diceWeight, 0, Infinity);
  expectNumber("dice_bce_loss", "bceWeight", bceWeight, 0, Infinity);
  validate("dice_bce_loss", "logits", logits, target);
  return lossOp("dice_bce_loss", "dice_bce", logits, target, { smooth, alpha: diceWeight, gamma: bceWeight });
}

/** V-Net Dice (Milletari et al. 2016): 1 - (2*sum(p*g) + s) / (sum p^2 + sum g^2 + s), global
 * sums, on probabilities p (apply sigmoid/softmax first). The CTV paper's "AM-GM" loss is taken
 * to be this form. */
export function vnetDiceLoss(p: Tensor, target: Tensor, opts: { smooth?: number } = {}): Tensor {
  const smooth = opts.smooth ?? 1;
  expectNumber("vnet_dice_loss", "smooth", smooth, 0, Infinity);
  validate("vnet_dice_loss", "p", p, target);
  return lossOp("vnet_dice_loss", "vnet_dice", p, target, { ...NONE, smooth });
}

/** Voxels per pass-1 workgroup of kernels/loss/softmax_ce.wgsl (one per thread). */
const CE_THREADS = 128;

interface ClassLayout {
  n: number;
  c: number;
  /** voxels per sample (product of the spatial dims; 1 for [N, C]) */
  s: number;
}

/** Validates logits [N, C, ...spatial] against class-index targets [N, ...spatial] or
 * [N, 1, ...spatial]. */
function validateClasses(op: string, logits: Tensor, target: Tensor, minClasses: number): ClassLayout {
  expectFloat(op, "logits", logits);
  expectFloat(op, "target", target);
  expectSameDevice(op, logits, target);
  if (logits.rank < 2)
    throw new PulmoError(`${op}: 'logits' must have shape [N, C, ...spatial] (rank >= 2), got ${shapeStr(logits.shape)}`);
  if (logits.size === 0) throw new PulmoError(`${op}: 'logits' ${shapeStr(logits.shape)} is empty`);
  const [n, c] = logits.shape as [number, number];
  const spatial = logits.shape.slice(2);
  if (c < minClasses)
    throw new PulmoError(`${op}: 'logits' ${shapeStr(logits.shape)} has ${c} class channel(s) in dim 1; needs at least ${minClasses}`);
  const same = (shape: readonly number[]) =>
    target.shape.length === shape.length && target.shape.every((d, i) => d === shape[i]);
  if (!same([n, ...spatial]) && !same([n, 1, ...spatial]))
    throw new PulmoError(
      `${op}: 'target' ${shapeStr(target.shape)} must hold class indices of shape ${shapeStr([n, ...spatial])} or ` +
        `${shapeStr([n, 1, ...spatial])} for 'logits' ${shapeStr(logits.shape)}`,
    );
  return { n, c, s: numel(spatial) };
}

/** A run of whole samples bound at once: views start at the 256-byte-aligned element at or before
 * the run's first element (`zbase`/`tbase` skip to it). */
interface SampleChunk {
  n0: number;
  k: number;
}

function sampleChunks(op: string, logits: Tensor, { n, c, s }: ClassLayout): SampleChunk[] {
  const maxEl = Math.floor(logits.device.limits.maxBindingBytes / 4);
  if (n * c * s <= maxEl) return [{ n0: 0, k: n }];
  const k = Math.floor((maxEl - 63) / (c * s));
  if (k < 1)
    throw new PulmoError(
      `${op}: one sample of 'logits' ${shapeStr(logits.shape)} (${c * s} elements) does not fit one storage binding (${maxEl} elements)`,
    );
  const out: SampleChunk[] = [];
  for (let n0 = 0; n0 < n; n0 += k) out.push({ n0, k: Math.min(k, n - n0) });
  return out;
}

/** Calls fn with aligned views of each tensor (elements `per` per sample) over the chunk's
 * samples and each view's element base; disposes the views. */
function withSampleViews(
  ch: SampleChunk,
  whole: boolean,
  tensors: { t: Tensor; per: number }[],
  fn: (views: Tensor[], bases: number[]) => void,
): void {
  if (whole) return fn(tensors.map((x) => x.t), tensors.map(() => 0));
  const views: Tensor[] = [];
  const bases: number[] = [];
  try {
    for (const { t, per } of tensors) {
      const start = ch.n0 * per;
      const aligned = Math.floor(start / 64) * 64;
      views.push(t.chunk(aligned, [(ch.n0 + ch.k) * per - aligned]));
      bases.push(start - aligned);
    }
    fn(views, bases);
  } finally {
    views.forEach((v) => v.dispose());
  }
}

interface SoftmaxLossParams {
  /** 0 cross-entropy, 1 nnU-Net Dice + CE (MODE of softmax_ce.wgsl) */
  mode: 0 | 1;
  weights: readonly number[] | null;
  ignoreIndex: number | null;
  smooth: number;
}

function softmaxLossOp(op: string, logits: Tensor, target: Tensor, lay: ClassLayout, params: SoftmaxLossParams): Tensor {
  const device = logits.device;
  const { c, s } = lay;
  const lanes = params.mode === 1 ? 3 + 3 * (c - 1) : 3;
  const chunks = sampleChunks(op, logits, lay);
  const whole = chunks.length === 1;
  const lbl = label(op, logits, target);
  const groupsOf = (ch: SampleChunk) => Math.ceil((ch.k * s) / CE_THREADS);
  const slots = chunks.reduce((a, ch) => a + groupsOf(ch), 0);
  const cw = params.weights ? Tensor.from(device, params.weights, [c]) : null;
  const uniforms = (ch: SampleChunk, zbase: number, tbase: number, groups: number, offset: number) => ({
    nvox: ch.k * s,
    sp: s,
    classes: c,
    zbase,
    tbase,
    groups,
    offset,
    lanes,
    has_w: cw ? 1 : 0,
    has_ignore: params.ignoreIndex === null ? 0 : 1,
    ignore_index: params.ignoreIndex ?? 0,
    smoothing: params.smooth,
    nan: NaN,
  });

  const partials = Tensor.empty(device, [slots, lanes], "f32", "loss partials");
  let offset = 0;
  for (const ch of chunks) {
    const groups = groupsOf(ch);
    withSampleViews(ch, whole, [{ t: logits, per: c * s }, { t: target, per: s }], ([zv, tv], [zbase, tbase]) => {
      device.dispatch({
        kernel: "loss/softmax_ce",
        constants: { MODE: params.mode },
        bindings: { logits: zv!, gt: tv!, cw: cw ?? zv!, partials },
        uniforms: uniforms(ch, zbase!, tbase!, groups, offset),
        workgroups: groups,
        label: lbl,
      });
    });
    offset += groups;
  }
  const sums = sumMiddle(partials, 1, slots, lanes, 1, [lanes]);
  partials.dispose();
  const y = Tensor.empty(device, [1], "f32", op);
  device.dispatch({
    kernel: "loss/softmax_ce",
    entry: "combine",
    constants: { MODE: params.mode },
    bindings: { sums, y },
    uniforms: uniforms(chunks[0]!, 0, 0, 0, 0),
    workgroups: 1,
    label: lbl,
  });

  const save = cw ? [logits, target, sums, cw] : [logits, target, sums];
  const out = record(op, y, [logits], save, (dy, [zs, ts, ss, ws]) => {
    const dz = Tensor.empty(device, zs!.shape, "f32", `${op} grad`);
    for (const ch of chunks) {
      withSampleViews(
        ch,
        whole,
        [{ t: zs!, per: c * s }, { t: ts!, per: s }, { t: dz, per: c * s }],
        ([zv, tv, dv], [zbase, tbase]) => {
          device.dispatch({
            kernel: "loss/softmax_ce",
            entry: "backward",
            constants: { MODE: params.mode },
            bindings: { logits: zv!, gt: tv!, cw: ws ?? zv!, sums: ss!, dy, dz: dv! },
            uniforms: uniforms(ch, zbase!, tbase!, 0, 0),
            workgroups: groups1d(ch.k * s),
            label: label(`${op}_backward`, zs, ts),
          });
        },
      );
    }
    return [dz];
  });
  sums.dispose(); // the tape holds retained handles when a backward was recorded
  cw?.dispose();
  return out;
}

export interface SoftmaxCrossEntropyOptions {
  /** per-class weights w (length C, finite, >= 0): the loss is sum(w[t]*nll)/sum(w[t]) */
  classWeights?: readonly number[];
  /** voxels whose target equals this value contribute nothing (no loss, no gradient) */
  ignoreIndex?: number;
}

/** PyTorch `F.cross_entropy(logits, target, weight=classWeights, ignore_index=ignoreIndex)` with
 * mean reduction over logits [N, C, ...spatial] and class-index targets [N, ...spatial] or
 * [N, 1, ...spatial] (f32 holding 0..C-1). Fused and stable: per voxel a max-subtracted
 * log-sum-exp over the channels; mean = sum(w[t]*nll)/sum(w[t]). A target that is not an integer
 * in [0, C) (and not ignoreIndex) makes the loss NaN (PyTorch raises; we cannot read back), as
 * does ignoring every voxel (PyTorch's 0/0). Backward: (softmax - onehot) * w[t]/sum(w[t]) * dy. */
export function softmaxCrossEntropy(logits: Tensor, target: Tensor, opts: SoftmaxCrossEntropyOptions = {}): Tensor {
  const op = "softmax_cross_entropy";
  const lay = validateClasses(op, logits, target, 1);
  let weights: readonly number[] | null = null;
  if (opts.classWeights !== undefined) {
    const w = opts.classWeights;
    if (!Array.isArray(w) || w.length !== lay.c)
      throw new PulmoError(`${op}: option 'classWeights' must have one weight per class (${lay.c}), got ${Array.isArray(w) ? w.length : String(w)}`);
    w.forEach((v, i) => expectNumber(op, `classWeights[${i}]`, v, 0, Infinity));
    weights = w;
  }
  const ignore = opts.ignoreIndex ?? null;
  if (ignore !== null && (typeof ignore !== "number" || !Number.isInteger(ignore)))
    throw new PulmoError(`${op}: option 'ignoreIndex' must be an integer, got ${String(ignore)}`);
  return softmaxLossOp(op, logits, target, lay, { mode: 0, weights, ignoreIndex: ignore, smooth: 0 });
}

/** nnU-Net's DC_and_CE loss (batch_dice, do_bg = False, weights 1:1) on logits [N, C, ...spatial]
 * (C >= 2) with class-index targets as in `softmaxCrossEntropy`: p = softmax(z, dim 1),
 * CE = mean over voxels of -log p[target], and for every foreground class c >= 1
 * Dice_c = (2*sum(p_c*t_c) + s) / (sum p_c + sum t_c + s) with sums over the batch and all voxels;
 * L = CE + 1 - mean_c Dice_c (nnU-Net reports CE - Dice: the same gradient). */
export function diceCeLoss(logits: Tensor, target: Tensor, opts: { smooth?: number } = {}): Tensor {
  const op = "dice_ce_loss";
  const smooth = opts.smooth ?? 1e-5;
  expectNumber(op, "smooth", smooth, 0, Infinity);
  const lay = validateClasses(op, logits, target, 2);
  return softmaxLossOp(op, logits, target, lay, { mode: 1, weights: null, ignoreIndex: null, smooth });
}

/** Weighted sum of scalar losses, sum_i w_i * L_i, as one autograd op (deep supervision:
 * nnU-Net's MultipleOutputLoss2). Every loss must have one element (shape [1]). */
export function deepSupervisionLoss(losses: readonly Tensor[], weights: readonly number[]): Tensor {
  const op = "deep_supervision_loss";
  if (!Array.isArray(losses) || losses.length === 0) throw new PulmoError(`${op}: 'losses' must be a non-empty array`);
  if (!Array.isArray(weights) || weights.length !== losses.length)
    throw new PulmoError(`${op}: 'weights' must have one weight per loss (${losses.length}), got ${Array.isArray(weights) ? weights.length : String(weights)}`);
  losses.forEach((l, i) => {
    expectFloat(op, `losses[${i}]`, l);
    if (l.size !== 1) throw new PulmoError(`${op}: 'losses[${i}]' must be a scalar loss of shape [1], got ${shapeStr(l.shape)}`);
  });
  weights.forEach((w, i) => {
    if (typeof w !== "number" || !Number.isFinite(w)) throw new PulmoError(`${op}: 'weights[${i}]' must be a finite number, got ${w}`);
  });
  const device = expectSameDevice(op, ...losses);
  let acc: Tensor | null = null;
  losses.forEach((l, i) => {
    const y = Tensor.empty(device, [1], "f32", op);
    device.dispatch({
      kernel: "loss/weighted_sum",
      bindings: { x: l, acc: acc ?? l, y },
      uniforms: { w: weights[i]!, first: acc ? 0 : 1 },
      workgroups: 1,
      label: label(op, l),
    });
    acc?.dispose();
    acc = y;
  });
  const ws = [...weights];
  return record(op, acc!, [...losses], [], (dy) =>
    ws.map((w) => {
      const dx = Tensor.empty(device, [1], "f32", `${op} grad`);
      device.dispatch({
        kernel: "loss/weighted_sum",
        entry: "scale",
        bindings: { dy, dx },
        uniforms: { w, first: 0 },
        workgroups: 1,
        label: label(`${op}_backward`, dy),
      });
      return dx;
    }),
  );
}

/** Deep-supervision weights for n outputs (highest resolution first): w_i ∝ 1/2^i, normalised to
 * sum 1 — e.g. n = 4 gives [8, 4, 2, 1]/15, the form the CoTr golden uses (default).
 * `zeroLowest: true` is nnU-Net's own trainer rule: the lowest-resolution weight is set to 0 when
 * n > 1 before normalising (n = 4 gives [4, 2, 1, 0]/7). */
export function deepSupervisionWeights(n: number, opts: { zeroLowest?: boolean } = {}): number[] {
  if (!Number.isInteger(n) || n < 1) throw new PulmoError(`deep_supervision_weights: 'n' must be a positive integer, got ${n}`);
  const w = Array.from({ length: n }, (_, i) => 1 / 2 ** i);
  if (opts.zeroLowest && n > 1) w[n - 1] = 0;
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((v) => v / total);
}

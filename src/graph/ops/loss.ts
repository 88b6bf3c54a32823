import { PulmoError, Tensor, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, expectSameDevice, groups1d, label } from "../launch.ts";

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
    uniforms: { slots, count, smoothing: params.smooth, alpha: params.alpha },
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

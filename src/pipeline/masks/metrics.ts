// Segmentation metrics between two binary masks: overlap ratios and surface distances.
import { squaredDistanceTransform } from "./edt.ts";
import { erode6 } from "./morphology.ts";
import { checkSameShape, checkSpacing, checkVolume, toBits, type Mask, type Spacing3, type Volume } from "./volume.ts";

export interface MaskMetrics {
  /** 2TP / (2TP + FP + FN); 1 when both masks are empty */
  dice: number;
  /** TP / (TP + FP + FN); 1 when both masks are empty */
  jaccard: number;
  /** TP / (TP + FP); NaN when `pred` is empty */
  precision: number;
  /** TP / (TP + FN) (sensitivity); NaN when `target` is empty */
  recall: number;
  /** FP / (FP + TN); NaN when `target` fills the whole volume */
  fpr: number;
  /** max over both directed surface-distance sets (mm) */
  hausdorff: number;
  /** max of the two directed 95th percentiles (numpy 'linear') (mm) */
  hausdorff95: number;
  /** mean of both directed distance sets pooled (mm) */
  meanSurfaceDistance: number;
  /** median of both directed distance sets pooled (mm) */
  medianSurfaceDistance: number;
}

/** The surface of a mask: the mask minus its 6-connected erosion (outside the volume is background). */
export function surface(mask: Volume): Mask {
  const shape = checkVolume(mask, "surface");
  const m = toBits(mask);
  const e = erode6({ data: m, shape }).data;
  for (let i = 0; i < m.length; i++) if (e[i]) m[i] = 0;
  return { data: m, shape };
}

/**
 * Directed surface distances (mm): from every surface voxel of `pred` to the nearest surface voxel
 * of `target` (`predToTarget`, in raster order of the pred surface voxels), and the reverse.
 * Distances are to the other mask's *surface*, not to the mask itself, so a surface voxel of one
 * mask lying inside the other mask still has a positive distance unless it is also on the other's
 * surface. When the other surface is empty every distance is `Infinity`.
 */
export function surfaceDistances(pred: Volume, target: Volume, spacing: Spacing3): { predToTarget: Float64Array; targetToPred: Float64Array } {
  const shape = checkVolume(pred, "surfaceDistances pred");
  checkSameShape(shape, checkVolume(target, "surfaceDistances target"), "surfaceDistances target");
  checkSpacing(spacing, "surfaceDistances");
  const sp = surface(pred);
  const st = surface(target);
  const directed = (from: Mask, to: Mask): Float64Array => {
    const d2 = squaredDistanceTransform(to, spacing);
    const out: number[] = [];
    for (let i = 0; i < d2.length; i++) if (from.data[i]) out.push(Math.sqrt(d2[i]!));
    return Float64Array.from(out);
  };
  return { predToTarget: directed(sp, st), targetToPred: directed(st, sp) };
}

/**
 * numpy's `percentile(values, q)` with the default 'linear' method, on values sorted ascending:
 * virtual index (n − 1)·q/100, linear interpolation between its neighbours (numpy's lerp,
 * including its `t >= 0.5` form). NaN for an empty array.
 */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const virt = (q / 100) * (n - 1);
  const lo = Math.min(Math.max(Math.floor(virt), 0), n - 1);
  const hi = Math.min(lo + 1, n - 1);
  const t = virt - lo;
  const a = sorted[lo]!,
    b = sorted[hi]!;
  if (a === b) return a; // also keeps Infinity from turning into NaN
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

function median(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = n >> 1;
  return n % 2 ? sorted[h]! : (sorted[h - 1]! + sorted[h]!) / 2;
}

/**
 * All metrics between `pred` and `target` ([D, H, W] masks, non-zero = set) with voxel `spacing`
 * in mm (D, H, W). Empty masks: Dice and Jaccard of two empty masks are 1; any other ratio with a
 * zero denominator is NaN. Surface distances: if both surfaces are empty all four distance metrics
 * are NaN; if exactly one is empty they are `Infinity` (the other surface's points have no nearest
 * point), so an empty prediction never scores a finite Hausdorff distance.
 */
export function maskMetrics(pred: Volume, target: Volume, spacing: Spacing3): MaskMetrics {
  const shape = checkVolume(pred, "maskMetrics pred");
  checkSameShape(shape, checkVolume(target, "maskMetrics target"), "maskMetrics target");
  checkSpacing(spacing, "maskMetrics");
  let tp = 0,
    fp = 0,
    fn = 0,
    tn = 0;
  const p = pred.data,
    t = target.data;
  for (let i = 0; i < p.length; i++) {
    const a = p[i] !== 0,
      b = t[i] !== 0;
    if (a && b) tp++;
    else if (a) fp++;
    else if (b) fn++;
    else tn++;
  }
  const ratio = (num: number, den: number) => (den === 0 ? NaN : num / den);
  const bothEmpty = tp + fp + fn === 0;

  const { predToTarget, targetToPred } = surfaceDistances(pred, target, spacing);
  predToTarget.sort();
  targetToPred.sort();
  const pooled = new Float64Array(predToTarget.length + targetToPred.length);
  pooled.set(predToTarget);
  pooled.set(targetToPred, predToTarget.length);
  pooled.sort();
  let sum = 0;
  for (let i = 0; i < pooled.length; i++) sum += pooled[i]!;
  const directed95 = [predToTarget, targetToPred].filter((d) => d.length > 0).map((d) => percentileSorted(d, 95));

  return {
    dice: bothEmpty ? 1 : (2 * tp) / (2 * tp + fp + fn),
    jaccard: bothEmpty ? 1 : tp / (tp + fp + fn),
    precision: ratio(tp, tp + fp),
    recall: ratio(tp, tp + fn),
    fpr: ratio(fp, fp + tn),
    hausdorff: pooled.length ? pooled[pooled.length - 1]! : NaN,
    hausdorff95: directed95.length ? Math.max(...directed95) : NaN,
    meanSurfaceDistance: pooled.length ? sum / pooled.length : NaN,
    medianSurfaceDistance: median(pooled),
  };
}

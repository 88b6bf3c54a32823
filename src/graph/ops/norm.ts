import { type Device, PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { isGradEnabled, needsGrad, noGrad, record } from "../tape.ts";
import { expectFloat, expectSameDevice, expectShape, groups1d, label } from "../launch.ts";
import { mean, sumMiddle } from "./reduce.ts";
import { add, addScalar, mul, mulScalar, powScalar, sub } from "./elementwise.ts";
import { overBindingLimit, splitChannels, splitRows } from "./split.ts";
import { reshape as reshapeOp } from "./layout.ts";

// Instance, batch and layer normalisation (kernels/norm/):
//   seg.wgsl        instance and batch norm (train and eval) with more than SMALL_GROUP values
//                   per group: a workgroup per (group, chunk) walks the group's contiguous
//                   segments; stats (one read of x) + apply forward, gsum + bwd backward
//   rows.wgsl       layer norm (rows of >= 4 features): a team of invocations per row, stats and
//                   apply in one dispatch; dx in one, the weight/bias column sums in another
//   rows_subgroup.wgsl  the same stats/apply and dx with a subgroup per row (devices with a fixed
//                   subgroup size; no barrier)
//   running.wgsl    batch norm's in-place running-statistics update (from seg.wgsl's chunk
//                   partials: `from_part`)
// and, for short groups (one thread per group) and layer norm over < 4 features, the generic
// path: stats_partial.wgsl + stats_merge.wgsl (mean and biased variance per group), apply.wgsl
// (y = xhat * weight + bias, and dx), grad_sums.wgsl (per-group sum(g), sum(g * xhat)).
// A norm is described by which elements form a statistics group and which affine slot each
// element uses (the Layout below); nothing is permuted.

/** Which elements one reduction group covers: group g's element j is at
 * g*gstride + floor(j / seglen)*segstride + j % seglen, for j < count. */
interface Groups {
  groups: number;
  count: number;
  gstride: number;
  seglen: number;
  segstride: number;
}

/** A statistics grouping plus where each element finds its statistics and affine parameters:
 * element i uses statistics (i / sdiv) % smod and weight/bias (i / adiv) % amod. */
interface Layout extends Groups {
  sdiv: number;
  smod: number;
  adiv: number;
  amod: number;
}

/** Elements per tree-reduction workgroup; longer groups are split and merged in a second pass. */
const CHUNK = 4096;
/** Groups at most this long get one thread each instead of a workgroup (e.g. layer norm over a
 * few features). */
const SMALL_GROUP = 64;

function splitsOf(count: number): { splits: number; chunk: number } {
  const splits = Math.max(1, Math.ceil(count / CHUNK));
  return { splits, chunk: Math.max(1, Math.ceil(count / splits)) };
}

/** Mean and biased variance of every group (both [groups]). */
function groupStats(op: string, x: Tensor, L: Layout): { mean: Tensor; var_: Tensor } {
  const mean = Tensor.empty(x.device, [L.groups]);
  const var_ = Tensor.empty(x.device, [L.groups]);
  const shape = { groups: L.groups, count: L.count, gstride: L.gstride, seglen: L.seglen, segstride: L.segstride };
  if (L.count <= SMALL_GROUP) {
    x.device.dispatch({
      kernel: "norm/stats_merge",
      entry: "small",
      bindings: { src: x, mean, var_ },
      uniforms: { ...shape, splits: 1 },
      workgroups: groups1d(L.groups),
      label: label(`${op} stats`, x),
    });
    return { mean, var_ };
  }
  const { splits, chunk } = splitsOf(L.count);
  const part = Tensor.empty(x.device, [L.groups * splits * 3]);
  x.device.dispatch({
    kernel: "norm/stats_partial",
    bindings: { x, part },
    uniforms: { groups: L.groups, splits, chunk, count: L.count, gstride: L.gstride, seglen: L.seglen, segstride: L.segstride },
    workgroups: L.groups * splits,
    label: label(`${op} stats`, x),
  });
  x.device.dispatch({
    kernel: "norm/stats_merge",
    bindings: { src: part, mean, var_ },
    uniforms: { ...shape, splits },
    workgroups: L.groups,
    label: label(`${op} stats merge`, x),
  });
  part.dispose();
  return { mean, var_ };
}

interface ApplyArgs {
  op: string;
  x: Tensor;
  mean: Tensor;
  var_: Tensor;
  weight: Tensor | null;
  L: Layout;
  eps: number;
}

function applyForward(a: ApplyArgs, bias: Tensor | null): Tensor {
  const { x, L } = a;
  const y = Tensor.empty(x.device, x.shape);
  x.device.dispatch({
    kernel: "norm/apply",
    constants: { HAS_W: a.weight ? 1 : 0, HAS_B: bias ? 1 : 0 },
    bindings: { x, mean: a.mean, var_: a.var_, weight: a.weight ?? x, bias: bias ?? x, out: y },
    uniforms: { n: x.size, groups: L.groups, sdiv: L.sdiv, smod: L.smod, adiv: L.adiv, amod: L.amod, eps: a.eps, inv_count: 0 },
    workgroups: groups1d(x.size),
    label: label(a.op, x, a.weight, bias),
  });
  return y;
}

/** dx. mode 0: batch statistics, sums of dy; 1: batch statistics, sums of dy*weight; 2: fixed
 * statistics (sums unused). */
function applyBackward(a: ApplyArgs, dy: Tensor, sums: Tensor | null, mode: 0 | 1 | 2): Tensor {
  const { x, L } = a;
  const dx = Tensor.empty(x.device, x.shape);
  x.device.dispatch({
    kernel: "norm/apply",
    entry: "backward",
    constants: { HAS_W: a.weight ? 1 : 0, HAS_B: 0, MODE: mode },
    bindings: { x, mean: a.mean, var_: a.var_, weight: a.weight ?? x, bias: x, dy, sums: sums ?? x, out: dx },
    uniforms: { n: x.size, groups: L.groups, sdiv: L.sdiv, smod: L.smod, adiv: L.adiv, amod: L.amod, eps: a.eps, inv_count: 1 / L.count },
    workgroups: groups1d(x.size),
    label: label(`${a.op}_backward`, x),
  });
  return dx;
}

/** [2, G.groups]: sum(g) then sum(g * xhat) over each group of G, g = dy*weight when the weight is
 * passed (layer-norm rows) or dy. */
function gradSums(a: ApplyArgs, dy: Tensor, G: Groups, weightInside: Tensor | null): Tensor {
  const { x, L } = a;
  const small = G.count <= SMALL_GROUP;
  const { splits, chunk } = small ? { splits: 1, chunk: G.count } : splitsOf(G.count);
  const part = Tensor.empty(x.device, [2 * G.groups * splits]);
  x.device.dispatch({
    kernel: "norm/grad_sums",
    entry: small ? "small" : "main",
    constants: { WSUM: weightInside ? 1 : 0 },
    bindings: { x, mean: a.mean, var_: a.var_, weight: weightInside ?? x, dy, part },
    uniforms: {
      groups: G.groups, splits, chunk, count: G.count, gstride: G.gstride, seglen: G.seglen, segstride: G.segstride,
      sdiv: L.sdiv, smod: L.smod, adiv: L.adiv, amod: L.amod, eps: a.eps,
    },
    workgroups: small ? groups1d(G.groups) : G.groups * splits,
    label: label(`${a.op}_backward sums`, x),
  });
  if (splits === 1) return part;
  const sums = sumMiddle(part, 2 * G.groups, splits, 1);
  part.dispose();
  return sums;
}

/** A new [n] tensor holding elements [start, start+n) of t (a buffer copy: chunk() views need
 * 256-byte alignment). */
function copyRange(t: Tensor, start: number, n: number, shape: readonly number[] = [n]): Tensor {
  const y = Tensor.empty(t.device, shape);
  t.device.copy(t.buffer, t.byteOffset + start * 4, y.buffer, y.byteOffset, n * 4);
  return y;
}

/** Weight and bias gradients from per-channel sums [2, C] (sum dy, sum dy*xhat). */
function affineGrads(sums: Tensor, c: number, needW: boolean, needB: boolean): [Tensor | null, Tensor | null] {
  return [needW ? copyRange(sums, c, c) : null, needB ? copyRange(sums, 0, c) : null];
}

function checkAffine(op: string, x: Tensor, weight: Tensor | null, bias: Tensor | null, shape: readonly number[]): void {
  for (const [name, t] of [["weight", weight], ["bias", bias]] as const) {
    if (!t) continue;
    expectFloat(op, name, t);
    expectShape(op, name, t, shape);
  }
  expectSameDevice(op, x, weight, bias);
}

function checkEps(op: string, eps: number): void {
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new PulmoError(`${op}: eps must be a finite number >= 0, got ${eps}`);
}

function checkNonEmpty(op: string, x: Tensor): void {
  if (x.size === 0) throw new PulmoError(`${op}: 'x' ${shapeStr(x.shape)} is empty`);
}

/** Forward and backward of a norm normalised with the statistics of its own input (instance
 * norm, batch norm in training, layer norm). `rowWeight`: the weight varies inside a group (layer
 * norm), so dx needs sums of dy*weight and the weight/bias gradients need their own column sums;
 * otherwise the weight is constant per group and `channelSums` folds the per-group sums to [2, C]. */
function batchStatsNorm(
  op: string,
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  L: Layout,
  stats: { mean: Tensor; var_: Tensor },
  backwardPlan: { rowWeight: false; channelSums: (sums: Tensor) => Tensor } | { rowWeight: true; columns: Groups },
): Tensor {
  const fwd: ApplyArgs = { op, x, mean: stats.mean, var_: stats.var_, weight, L, eps };
  const y = applyForward(fwd, bias);
  const [needX, needW, needB] = [x, weight, bias].map((t) => !!t?.requiresGrad);
  const save = weight ? [x, stats.mean, stats.var_, weight] : [x, stats.mean, stats.var_];
  record(op, y, [x, weight, bias], save, (dy, [xs, mean, var_, ws]) => {
    const a: ApplyArgs = { op, x: xs!, mean: mean!, var_: var_!, weight: ws ?? null, L, eps };
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (!backwardPlan.rowWeight) {
      const sums = gradSums(a, dy, L, null);
      if (needX) dx = applyBackward(a, dy, sums, 0);
      if (needW || needB) {
        const cs = backwardPlan.channelSums(sums);
        [dw, db] = affineGrads(cs, cs.size / 2, needW, needB);
        if (cs !== sums) cs.dispose();
      }
      sums.dispose();
    } else {
      if (needX) {
        const rows = gradSums(a, dy, L, a.weight);
        dx = applyBackward(a, dy, rows, 1);
        rows.dispose();
      }
      if (needW || needB) {
        const cols = gradSums(a, dy, backwardPlan.columns, null);
        [dw, db] = affineGrads(cols, backwardPlan.columns.groups, needW, needB);
        cols.dispose();
      }
    }
    return [dx, dw, db];
  });
  stats.mean.dispose();
  stats.var_.dispose();
  return y;
}

export interface NormOptions {
  /** added to the variance before the square root (default 1e-5) */
  eps?: number;
}

/** F.instance_norm: each (n, c) instance of x [N, C, *spatial] is normalised over its spatial
 * elements with its own mean and biased variance, then scaled by weight[c] and shifted by
 * bias[c] (either may be null). Backward for x, weight and bias. */
export function instanceNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, opts: NormOptions = {}): Tensor {
  const op = "instance_norm";
  const eps = opts.eps ?? 1e-5;
  expectFloat(op, "x", x);
  if (x.rank < 3) throw new PulmoError(`${op}: 'x' must have rank >= 3 (N, C, spatial...), got ${shapeStr(x.shape)}`);
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  const s = numel(x.shape.slice(2));
  checkAffine(op, x, weight, bias, [c]);
  checkEps(op, eps);
  checkNonEmpty(op, x);
  if (s < 2) throw new PulmoError(`${op}: expected more than 1 spatial element per instance, got 'x' ${shapeStr(x.shape)}`);
  if (overBindingLimit(x.device, x.bytes)) {
    // per (sample, channel range): each instance is normalised on its own
    return splitChannels(op, [x, weight, bias], x.shape, ([xs, ws, bs]) => instanceNorm(xs!, ws, bs, { eps }));
  }
  const L: Layout = { groups: n * c, count: s, gstride: s, seglen: s, segstride: 0, sdiv: s, smod: n * c, adiv: s, amod: c };
  // [2, N, C] → [2, C]: the weight gradient of channel c sums over the batch's instances
  const P = segPlan(L, c, x);
  if (P) return segTrain(op, x, weight, bias, eps, P, (sums) => (n === 1 ? sums : sumMiddle(sums, 2, n, c)), null, null, 0, 1);
  return batchStatsNorm(op, x, weight, bias, eps, L, groupStats(op, x, L), {
    rowWeight: false,
    // [2, N, C] → [2, C]: the weight gradient of channel c sums over the batch's instances
    channelSums: (sums) => (n === 1 ? sums : sumMiddle(sums, 2, n, c)),
  });
}

export interface BatchNormOptions extends NormOptions {
  /** batch statistics (and running-statistics update) when true, running statistics when false */
  training: boolean;
  /** weight of the new batch statistic in the running average (default 0.1, as PyTorch) */
  momentum?: number;
  /** [C]; updated in place when training, required when not */
  runningMean?: Tensor | null;
  /** [C]; updated in place (with the unbiased batch variance) when training, required when not */
  runningVar?: Tensor | null;
}

function copyOf(t: Tensor): Tensor {
  return copyRange(t, 0, t.size, t.shape);
}

/** F.batch_norm on x [N, C, *] (any rank >= 2): per-channel normalisation over the batch and
 * spatial elements, scaled by weight[c] and shifted by bias[c] (either may be null).
 * Training: normalises with the batch mean and biased variance and, when running tensors are
 * given, updates them IN PLACE on the GPU: running = (1-momentum)*running + momentum*batch, using
 * the unbiased batch variance for runningVar. Eval: normalises with runningMean/runningVar.
 * Backward for x, weight and bias in both modes (eval: a per-channel scale). */
export function batchNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, opts: BatchNormOptions): Tensor {
  const op = "batch_norm";
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const rm = opts.runningMean ?? null;
  const rv = opts.runningVar ?? null;
  expectFloat(op, "x", x);
  if (x.rank < 2) throw new PulmoError(`${op}: 'x' must have rank >= 2 (N, C, ...), got ${shapeStr(x.shape)}`);
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  const s = numel(x.shape.slice(2));
  checkAffine(op, x, weight, bias, [c]);
  checkEps(op, eps);
  if (typeof opts.training !== "boolean") throw new PulmoError(`${op}: option 'training' must be true or false`);
  if (!(momentum >= 0 && momentum <= 1)) throw new PulmoError(`${op}: momentum must be in [0, 1], got ${momentum}`);
  if (!rm !== !rv) throw new PulmoError(`${op}: pass both runningMean and runningVar, or neither`);
  for (const [name, t] of [["runningMean", rm], ["runningVar", rv]] as const) {
    if (!t) continue;
    expectFloat(op, name, t);
    expectShape(op, name, t, [c]);
  }
  expectSameDevice(op, x, rm, rv);
  if (rm && rv && rm.buffer === rv.buffer && rm.byteOffset === rv.byteOffset)
    throw new PulmoError(`${op}: runningMean and runningVar must be different tensors`);
  checkNonEmpty(op, x);
  const L: Layout = { groups: c, count: n * s, gstride: s, seglen: s, segstride: c * s, sdiv: s, smod: c, adiv: s, amod: c };

  if (opts.training && overBindingLimit(x.device, x.bytes) && n * s * 4 > x.device.limits.maxBindingBytes)
    return batchNormAcrossSlabs(x, weight, bias, eps, momentum, rm, rv);
  if (opts.training && overBindingLimit(x.device, x.bytes)) {
    // per channel range over every sample: each piece holds its channels' whole N·D·H·W, so its
    // batch statistics (and running-statistics update, copied back) are the full ones; the
    // backward recomputes the pieces without touching the running statistics
    const xb = x.rank === 2 ? reshapeOp(x, [n, c, 1]) : x;
    const y = splitChannels(op, [xb, weight, bias, rm, rv], xb.shape, ([xs, ws, bs, ms, vs], q) => {
      const recompute = isGradEnabled();
      const ys = batchNorm(xs!, ws, bs, { training: true, eps, momentum, runningMean: recompute ? null : ms, runningVar: recompute ? null : vs });
      if (!recompute && ms && vs)
        for (const [part, whole] of [[ms, rm!], [vs, rv!]] as const)
          if (part.buffer !== whole.buffer) x.device.copy(part.buffer, part.byteOffset, whole.buffer, whole.byteOffset + q.c0 * 4, part.bytes); // else a view: updated in place
      return ys;
    }, true);
    if (xb === x) return y;
    const y2 = reshapeOp(y, x.shape);
    [xb, y].forEach((t) => t.dispose());
    return y2;
  }
  if (opts.training) {
    if (n * s < 2)
      throw new PulmoError(`${op}: expected more than 1 value per channel when training, got 'x' ${shapeStr(x.shape)}`);
    const P = segPlan(L, c, x);
    if (P) return segTrain(op, x, weight, bias, eps, P, (sums) => sums, rm, rv, momentum, (n * s) / (n * s - 1));
    const stats = groupStats(op, x, L);
    if (rm && rv)
      x.device.dispatch({
        kernel: "norm/running",
        bindings: { mean: stats.mean, var_: stats.var_, running_mean: rm, running_var: rv },
        uniforms: { c, momentum, unbias: (n * s) / (n * s - 1), splits: 1 },
        workgroups: groups1d(c),
        label: label(`${op} running stats`, x, rm, rv),
      });
    return batchStatsNorm(op, x, weight, bias, eps, L, stats, { rowWeight: false, channelSums: (sums) => sums });
  }

  if (!rm || !rv) throw new PulmoError(`${op}: eval mode (training: false) needs runningMean and runningVar`);
  if (overBindingLimit(x.device, x.bytes)) {
    // eval: a per-channel affine map with fixed statistics, split per (sample, channel range)
    const xb = x.rank === 2 ? reshapeOp(x, [n, c, 1]) : x;
    const y = splitChannels(op, [xb, weight, bias, rm, rv], xb.shape, ([xs, ws, bs, ms, vs]) =>
      batchNorm(xs!, ws, bs, { training: false, eps, runningMean: ms, runningVar: vs }),
    );
    if (xb === x) return y;
    const y2 = reshapeOp(y, x.shape);
    [xb, y].forEach((t) => t.dispose());
    return y2;
  }
  const P = segPlan(L, c, x);
  if (P) return segEval(x, weight, bias, eps, P, rm, rv);
  const fwd: ApplyArgs = { op, x, mean: rm, var_: rv, weight, L, eps };
  const y = applyForward(fwd, bias);
  if (!needsGrad(x, weight, bias)) return y;
  const [needX, needW, needB] = [x, weight, bias].map((t) => !!t?.requiresGrad);
  // Copies: the running tensors may be updated in place before this backward runs.
  const mean = copyOf(rm);
  const var_ = copyOf(rv);
  const save = weight ? [x, mean, var_, weight] : [x, mean, var_];
  record(op, y, [x, weight, bias], save, (dy, [xs, ms, vs, ws]) => {
    const a: ApplyArgs = { op, x: xs!, mean: ms!, var_: vs!, weight: ws ?? null, L, eps };
    const dx = needX ? applyBackward(a, dy, null, 2) : null;
    let [dw, db]: (Tensor | null)[] = [null, null];
    if (needW || needB) {
      const sums = gradSums(a, dy, L, null);
      [dw, db] = affineGrads(sums, c, needW, needB);
      sums.dispose();
    }
    return [dx, dw, db];
  });
  mean.dispose();
  var_.dispose();
  return y;
}

/** Training batch norm when even one channel over every sample exceeds a binding: composed from
 * ops that split themselves (reductions in partial sums over slabs, broadcasting arithmetic in
 * slabs), so the statistics span N·D·H·W across the slabs and autograd derives the backward.
 * Running statistics are updated in place as PyTorch does (unbiased batch variance). */
function batchNormAcrossSlabs(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, momentum: number, rm: Tensor | null, rv: Tensor | null): Tensor {
  const c = x.shape[1]!;
  const count = x.size / c;
  if (count < 2) throw new PulmoError(`batch_norm: expected more than 1 value per channel when training, got 'x' ${shapeStr(x.shape)}`);
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const bshape = x.shape.map((d, i) => (i === 1 ? d : 1));
  const temps: Tensor[] = [];
  const t = (v: Tensor) => (temps.push(v), v);
  const mu = t(mean(x, axes, true));
  const xc = t(sub(x, mu));
  const var_ = t(mean(t(mul(xc, xc)), axes, true));
  let y = mul(xc, t(powScalar(t(addScalar(var_, eps)), -0.5)));
  if (weight) y = mul(t(y), t(reshapeOp(weight, bshape)));
  if (bias) y = add(t(y), t(reshapeOp(bias, bshape)));
  if (rm && rv)
    noGrad(() => {
      // running = (1 - m) * running + m * batch, copied into the running tensors
      const update = (run: Tensor, batch: Tensor, scale: number) => {
        const b = batch.reshape([c]);
        const [r1, b1] = [mulScalar(run, 1 - momentum), mulScalar(b, momentum * scale)];
        const v = add(r1, b1);
        x.device.copy(v.buffer, v.byteOffset, run.buffer, run.byteOffset, c * 4);
        [b, r1, b1, v].forEach((u) => u.dispose());
      };
      update(rm, mu, 1);
      update(rv, var_, count / (count - 1));
    });
  temps.forEach((u) => u.dispose());
  return y;
}

export interface LayerNormOptions extends NormOptions {
  /** trailing dims normalised together (default: the last dimension); weight and bias have this shape */
  normalizedShape?: readonly number[];
}

/** F.layer_norm over the trailing `normalizedShape` dims (default the last dim): each row is
 * normalised with its own mean and biased variance, then y = xhat * weight + bias elementwise
 * (weight, bias of shape normalizedShape; either may be null). Backward for x, weight and bias. */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, opts: LayerNormOptions = {}): Tensor {
  const op = "layer_norm";
  const eps = opts.eps ?? 1e-5;
  expectFloat(op, "x", x);
  if (x.rank < 1) throw new PulmoError(`${op}: 'x' must have rank >= 1, got ${shapeStr(x.shape)}`);
  const ns = opts.normalizedShape ?? [x.shape.at(-1)!];
  const tail = x.shape.slice(x.rank - ns.length);
  if (ns.length < 1 || ns.length > x.rank || tail.some((d, i) => d !== ns[i]))
    throw new PulmoError(`${op}: normalizedShape ${shapeStr(ns)} must match the trailing dims of 'x' ${shapeStr(x.shape)}`);
  checkAffine(op, x, weight, bias, ns);
  checkEps(op, eps);
  checkNonEmpty(op, x);
  const d = numel(ns);
  const m = x.size / d;
  if (overBindingLimit(x.device, x.bytes))
    // over one storage binding: runs of whole rows (tokens), weight and bias whole (split.ts)
    return splitRows(op, x, d, [weight, bias], x.shape, ([xs, ws, bs]) => {
      const r = xs!.shape[0]!;
      const y = layerNorm(ns.length === 1 ? xs! : reshapeOp(xs!, [r, ...ns]), ws, bs, { eps, normalizedShape: ns });
      if (ns.length === 1) return y;
      const y2 = reshapeOp(y, [r, d]);
      y.dispose();
      return y2;
    });
  const plan = 8 * d <= x.device.limits.maxBindingBytes ? rowsPlan(d) : null; // + the column partials
  if (plan) return layerNormRows(x, weight, bias, eps, m, d, plan);
  const L: Layout = { groups: m, count: d, gstride: d, seglen: d, segstride: 0, sdiv: d, smod: m, adiv: 1, amod: d };
  return batchStatsNorm(op, x, weight, bias, eps, L, groupStats(op, x, L), {
    rowWeight: true,
    // feature k's weight/bias gradient sums column k over the m rows
    columns: { groups: d, count: m, gstride: 1, seglen: 1, segstride: d },
  });
}

/** Invocations per row (tpr: about 64 values each, at most 256) and per workgroup (wg: at least
 * 32, several rows at a time) for the row kernels (kernels/norm/rows.wgsl, softmax/rows.wgsl),
 * or null when a row is too short for them (a binding under 16 bytes). Few invocations per row
 * keep the per-row merge short (one barrier, tpr slots). */
export function rowsPlan(d: number): { tpr: number; wg: number } | null {
  if (d < 4) return null;
  let tpr = 1;
  while (tpr * 64 < d && tpr < 256) tpr *= 2;
  return { tpr, wg: Math.max(32, tpr) };
}

/** The row kernel for `m` rows of a norm or softmax: `<family>/rows_subgroup` (a workgroup is
 * one subgroup and one team, no barrier) when the device has a fixed subgroup size, else `<family>/rows` (a
 * team of plan.tpr invocations per row, several teams per workgroup, one barrier per row); with
 * its override constants and the rows each workgroup walks (≈ 256–1024 workgroups or more). */
export function rowKernel(dev: Device, family: "norm" | "softmax", m: number, plan: { tpr: number; wg: number }): { kernel: string; constants: Record<string, number>; rpw: number } {
  const sg = dev.subgroupSize;
  if (sg) return { kernel: `${family}/rows_subgroup`, constants: { TPR: sg, WG: sg }, rpw: clamp(Math.floor(m / 1024), 1, 8) };
  const rpp = plan.wg / plan.tpr; // rows at a time
  return { kernel: `${family}/rows`, constants: { TPR: plan.tpr, WG: plan.wg }, rpw: rpp * clamp(Math.floor(m / rpp / 256), 1, family === "norm" ? 8 : 16) };
}

/** Vec4s per invocation a register entry (fwd4r in kernels/norm/rows_body.wgsl and
 * softmax/rows_body.wgsl) holds at most: rows of up to 4 · REG_CAP · TPR values. */
const REG_CAP = 16;

/** The forward's register entry (fwd4r) for rows of `nv` vec4s, or null where the row does not fit
 * (then fwd4 loops over it, reading it twice). Only on the subgroup kernel: in rows.wgsl the arrays
 * would live across barriers. VPL vec4s per invocation, FULL where no lane has a short tail; each
 * workgroup walks up to 32 rows (the weight and bias are loaded once per workgroup). */
export function registerEntry(rk: ReturnType<typeof rowKernel>, nv: number, m: number): { constants: Record<string, number>; rpw: number } | null {
  const tpr = rk.constants.TPR!;
  const vpl = Math.ceil(nv / tpr);
  if (!rk.kernel.endsWith("_subgroup") || vpl > REG_CAP) return null;
  return { constants: { ...rk.constants, VPL: vpl, FULL: nv % tpr === 0 ? 1 : 0 }, rpw: clamp(Math.floor(m / 256), 1, 32) };
}

/** vec4 entries need d % 4 == 0 and every vec4-bound tensor 16-byte aligned. */
export function vec4Ok(d: number, ...ts: (Tensor | null | undefined)[]): boolean {
  return d % 4 === 0 && ts.every((t) => !t || t.byteOffset % 16 === 0);
}

const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

/** Layer norm over rows (kernels/norm/rows_subgroup.wgsl or rows.wgsl, see rowKernel): statistics and apply in
 * one dispatch (from registers where registerEntry allows), dx in one more, the weight/bias column partials in the
 * same (bwd4r with COLS, where dx is needed) or a separate one (cols4/cols1), plus their sum. */
function layerNormRows(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, m: number, d: number, plan: { tpr: number; wg: number }): Tensor {
  const op = "layer_norm";
  const dev = x.device;
  const y = Tensor.empty(dev, x.shape);
  const mean = Tensor.empty(dev, [m]);
  const var_ = Tensor.empty(dev, [m]);
  const v4 = vec4Ok(d, x, weight, bias);
  const rk = rowKernel(dev, "norm", m, plan);
  const reg = v4 ? registerEntry(rk, d / 4, m) : null;
  const fwd = reg ?? rk;
  dev.dispatch({
    kernel: rk.kernel,
    entry: reg ? "fwd4r" : v4 ? "fwd4" : "fwd1",
    constants: { ...fwd.constants, HAS_W: weight ? 1 : 0, HAS_B: bias ? 1 : 0 },
    bindings: v4
      ? { xv: x, wv: weight ?? x, bv: bias ?? x, smean: mean, svar: var_, outv: y }
      : { x, weight: weight ?? x, bias: bias ?? x, smean: mean, svar: var_, out: y },
    uniforms: { rows: m, d, rpw: fwd.rpw, eps },
    workgroups: Math.ceil(m / fwd.rpw),
    label: label(op, x, weight, bias),
  });
  const [needX, needW, needB] = [x, weight, bias].map((t) => !!t?.requiresGrad);
  const save = weight ? [x, mean, var_, weight] : [x, mean, var_];
  record(op, y, [x, weight, bias], save, (dy, [xs, ms, vs, ws]) => {
    const cols = needW || needB;
    const b4 = vec4Ok(d, xs, ws, dy);
    const breg = b4 ? registerEntry(rk, d / 4, m) : null;
    const bk = breg ?? rk;
    const dx = needX ? Tensor.empty(dev, xs!.shape) : null;
    // bwd4r with COLS also writes the weight/bias column partials, one row block per workgroup
    const fused = !!(dx && breg && cols && 8 * Math.ceil(m / breg.rpw) * d <= dev.limits.maxBindingBytes);
    let part: Tensor | null = null;
    let nb = 0;
    if (fused) {
      nb = Math.ceil(m / bk.rpw);
      part = Tensor.empty(dev, [2 * nb * d]);
    }
    const noPart = breg && !part ? Tensor.empty(dev, [4]) : null; // bwd4r binds partv (unwritten without COLS)
    if (dx)
      dev.dispatch({
        kernel: rk.kernel,
        entry: breg ? "bwd4r" : b4 ? "bwd4" : "bwd1",
        constants: { ...bk.constants, HAS_W: ws ? 1 : 0, ...(fused ? { COLS: 1 } : {}) },
        bindings: b4
          ? { xv: xs!, wv: ws ?? xs!, dyv: dy, mean: ms!, var_: vs!, outv: dx, ...(breg ? { partv: part ?? noPart! } : {}) }
          : { x: xs!, weight: ws ?? xs!, dy, mean: ms!, var_: vs!, out: dx },
        uniforms: { rows: m, d, rpw: bk.rpw, eps },
        workgroups: Math.ceil(m / bk.rpw),
        label: label(`${op}_backward`, xs!),
      });
    noPart?.dispose();
    // otherwise the weight/bias column partials over row blocks: ≈ 256 blocks, within the launch and binding limits
    if (cols && !fused) {
      const crpw = Math.max(Math.ceil(m / 256), Math.ceil(m / dev.limits.maxWorkgroupsPerDim), Math.ceil(m / Math.floor(dev.limits.maxBindingBytes / (8 * d))));
      nb = Math.ceil(m / crpw);
      part = Tensor.empty(dev, [2 * nb * d]);
      dev.dispatch({
        kernel: "norm/rows",
        entry: b4 ? "cols4" : "cols1",
        constants: { TPR: 1, WG: 64 },
        bindings: b4 ? { xv: xs!, dyv: dy, mean: ms!, var_: vs!, partv: part } : { x: xs!, dy, mean: ms!, var_: vs!, part },
        uniforms: { rows: m, d, rpw: crpw, eps },
        workgroups: [Math.ceil((b4 ? d / 4 : d) / 64), nb, 1],
        label: label(`${op}_backward weight/bias sums`, xs!),
      });
    }
    let [dw, db]: (Tensor | null)[] = [null, null];
    if (part) {
      let sums: Tensor;
      if (b4) {
        // fold4: an invocation per vec4 column walks the nb blocks (a tree reduction per column is slower)
        sums = Tensor.empty(dev, [2 * d]);
        dev.dispatch({
          kernel: "norm/rows",
          entry: "fold4",
          constants: { TPR: 1, WG: 64 },
          bindings: { partv: part, outv: sums },
          uniforms: { rows: nb, d, rpw: 1, eps },
          workgroups: Math.ceil(d / 2 / 64),
          label: label(`${op}_backward weight/bias sums`, xs!),
        });
      } else sums = sumMiddle(part, 2, nb, d);
      part.dispose();
      [dw, db] = affineGrads(sums, d, needW, needB);
      sums.dispose();
    }
    return [dx, dw, db];
  });
  mean.dispose();
  var_.dispose();
  return y;
}

// ---------- instance / batch norm on kernels/norm/seg.wgsl ----------

/** A norm whose groups are runs of contiguous segments (Groups) with the affine slot group % c,
 * cut into chunks of about CHUNK elements, one workgroup each. */
interface SegPlan extends Groups {
  splits: number;
  chunk: number;
  c: number;
  /** strides, segment length and chunk are multiples of 4 (tensor alignment checked per launch) */
  v4: boolean;
}

/** Stats of one seg-kernel norm: the chunk partials of the stats pass, or fixed mean/variance. */
type SegStats = { part: Tensor } | { mean: Tensor; var_: Tensor };

function segPlan(L: Groups, c: number, x: Tensor): SegPlan | null {
  if (L.count <= SMALL_GROUP) return null; // one thread per group (stats_merge `small`) is better
  const v4 = [L.gstride, L.seglen, L.segstride].every((v) => v % 4 === 0) && x.byteOffset % 16 === 0;
  let chunk = Math.ceil(L.count / Math.ceil(L.count / CHUNK));
  if (v4) chunk = Math.ceil(chunk / 4) * 4;
  const { groups, count, gstride, seglen, segstride } = L;
  return { groups, count, gstride, seglen, segstride, c, chunk, splits: Math.ceil(count / chunk), v4 };
}

function segUniforms(P: SegPlan, eps: number) {
  const { groups, splits, chunk, count, gstride, seglen, segstride, c } = P;
  return { groups, splits, chunk, count, gstride, seglen, segstride, c, eps };
}

function statsBindings(st: SegStats, dummy: Tensor) {
  return "part" in st ? { spart: st.part, mean: dummy, var_: dummy } : { spart: dummy, mean: st.mean, var_: st.var_ };
}

/** seg_subgroup.wgsl (a workgroup is one subgroup, no barrier) where the device has a fixed
 * subgroup size, else seg.wgsl (workgroup trees of 64). */
function segKernel(dev: Device): { kernel: string; wg: number } {
  const sg = dev.subgroupSize;
  return sg ? { kernel: "norm/seg_subgroup", wg: sg } : { kernel: "norm/seg", wg: 64 };
}

function segStats(op: string, x: Tensor, P: SegPlan): Tensor {
  const part = Tensor.empty(x.device, [P.groups * P.splits * 3]);
  const sk = segKernel(x.device);
  x.device.dispatch({
    kernel: sk.kernel,
    entry: "stats",
    constants: { WG: sk.wg, V4: P.v4 ? 1 : 0 },
    bindings: { x, xv: x, part },
    uniforms: segUniforms(P, 0),
    workgroups: P.groups * P.splits,
    label: label(`${op} stats`, x),
  });
  return part;
}

function segApply(op: string, x: Tensor, P: SegPlan, st: SegStats, weight: Tensor | null, bias: Tensor | null, eps: number): Tensor {
  const y = Tensor.empty(x.device, x.shape);
  const v4 = P.v4 && x.byteOffset % 16 === 0;
  const sk = segKernel(x.device);
  x.device.dispatch({
    kernel: sk.kernel,
    entry: v4 ? "apply4" : "apply1",
    constants: { WG: sk.wg, FIXED: "part" in st ? 0 : 1, HAS_W: weight ? 1 : 0, HAS_B: bias ? 1 : 0 },
    bindings: { x, xv: x, ...statsBindings(st, x), weight: weight ?? x, bias: bias ?? x, out: y, outv: y },
    uniforms: segUniforms(P, eps),
    workgroups: P.groups * P.splits,
    label: label(op, x, weight, bias),
  });
  return y;
}

/** [2, groups, splits]: per chunk sum(dy), sum(dy * xhat). */
function segGsum(op: string, x: Tensor, dy: Tensor, P: SegPlan, st: SegStats, eps: number): Tensor {
  const gpart = Tensor.empty(x.device, [2 * P.groups * P.splits]);
  const v4 = P.v4 && x.byteOffset % 16 === 0 && dy.byteOffset % 16 === 0;
  const sk = segKernel(x.device);
  x.device.dispatch({
    kernel: sk.kernel,
    entry: "gsum",
    constants: { WG: sk.wg, V4: v4 ? 1 : 0, FIXED: "part" in st ? 0 : 1 },
    bindings: { x, xv: x, dy, dyv: dy, ...statsBindings(st, x), gpart },
    uniforms: segUniforms(P, eps),
    workgroups: P.groups * P.splits,
    label: label(`${op}_backward sums`, x),
  });
  return gpart;
}

function segBwd(op: string, x: Tensor, dy: Tensor, P: SegPlan, st: SegStats, weight: Tensor | null, gsp: Tensor | null, eps: number): Tensor {
  const dx = Tensor.empty(x.device, x.shape);
  const v4 = P.v4 && x.byteOffset % 16 === 0 && dy.byteOffset % 16 === 0;
  const sk = segKernel(x.device);
  x.device.dispatch({
    kernel: sk.kernel,
    entry: v4 ? "bwd4" : "bwd1",
    constants: { WG: sk.wg, FIXED: gsp ? 0 : 1, HAS_W: weight ? 1 : 0 },
    bindings: { x, xv: x, dy, dyv: dy, ...statsBindings(st, x), weight: weight ?? x, gsp: gsp ?? x, out: dx, outv: dx },
    uniforms: segUniforms(P, eps),
    workgroups: P.groups * P.splits,
    label: label(`${op}_backward`, x),
  });
  return dx;
}

/** Instance norm or training batch norm on the seg kernels: stats (one read of x) + apply
 * forward; gsum + bwd backward. `channelSums` folds per-group sums [2, groups] to [2, C]. */
function segTrain(
  op: string, x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, P: SegPlan,
  channelSums: (sums: Tensor) => Tensor, rm: Tensor | null, rv: Tensor | null, momentum: number, unbias: number,
): Tensor {
  const part = segStats(op, x, P);
  if (rm && rv)
    x.device.dispatch({
      kernel: "norm/running",
      entry: "from_part",
      bindings: { part, running_mean: rm, running_var: rv },
      uniforms: { c: P.groups, momentum, unbias, splits: P.splits },
      workgroups: groups1d(P.groups),
      label: label(`${op} running stats`, x, rm, rv),
    });
  const y = segApply(op, x, P, { part }, weight, bias, eps);
  const [needX, needW, needB] = [x, weight, bias].map((t) => !!t?.requiresGrad);
  record(op, y, [x, weight, bias], weight ? [x, part, weight] : [x, part], (dy, [xs, ps, ws]) => {
    const st = { part: ps! };
    const gp = segGsum(op, xs!, dy, P, st, eps);
    const dx = needX ? segBwd(op, xs!, dy, P, st, ws ?? null, gp, eps) : null;
    let [dw, db]: (Tensor | null)[] = [null, null];
    if (needW || needB) {
      const sums = P.splits === 1 ? gp : sumMiddle(gp, 2 * P.groups, P.splits, 1);
      const cs = channelSums(sums);
      [dw, db] = affineGrads(cs, cs.size / 2, needW, needB);
      if (cs !== sums) cs.dispose();
      if (sums !== gp) sums.dispose();
    }
    gp.dispose();
    return [dx, dw, db];
  });
  part.dispose();
  return y;
}

/** Eval batch norm on the seg kernels: fixed statistics (copied for the backward, as the
 * running tensors may be updated in place before it runs). */
function segEval(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number, P: SegPlan, rm: Tensor, rv: Tensor): Tensor {
  const op = "batch_norm";
  const y = segApply(op, x, P, { mean: rm, var_: rv }, weight, bias, eps);
  if (!needsGrad(x, weight, bias)) return y;
  const [needX, needW, needB] = [x, weight, bias].map((t) => !!t?.requiresGrad);
  const mean = copyOf(rm);
  const var_ = copyOf(rv);
  record(op, y, [x, weight, bias], weight ? [x, mean, var_, weight] : [x, mean, var_], (dy, [xs, ms, vs, ws]) => {
    const st = { mean: ms!, var_: vs! };
    const dx = needX ? segBwd(op, xs!, dy, P, st, ws ?? null, null, eps) : null;
    let [dw, db]: (Tensor | null)[] = [null, null];
    if (needW || needB) {
      const gp = segGsum(op, xs!, dy, P, st, eps);
      const sums = P.splits === 1 ? gp : sumMiddle(gp, 2 * P.groups, P.splits, 1);
      [dw, db] = affineGrads(sums, P.c, needW, needB);
      if (sums !== gp) sums.dispose();
      gp.dispose();
    }
    return [dx, dw, db];
  });
  mean.dispose();
  var_.dispose();
  return y;
}

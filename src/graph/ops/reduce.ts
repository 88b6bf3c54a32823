import { PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, groups1d, label, normAxis } from "../launch.ts";
import { reshape } from "./layout.ts";
import { mulScalar } from "./elementwise.ts";
import { overBindingLimit, splitReduce } from "./split.ts";

// Reductions as autograd ops: sum, mean, max (with argmax). Every reduction is planned on x viewed
// as [outer, r, inner] (r = the product of a contiguous run of reduced axes), so no permute is
// needed; a non-contiguous axis set is reduced one contiguous run at a time.
//   kernels/reduce/reduce.wgsl   sum/mean passes and the backward of sum, mean and max
//   kernels/reduce/argmax.wgsl   max with its index

/** Axes at most this long are reduced by one thread per output (a loop), longer ones by a
 * workgroup tree per output (and chunk). */
const SMALL_R = 64;
/** With this many outputs a loop per output keeps every core busy up to LOOP_R. */
const MANY_OUTPUTS = 16384;
const LOOP_R = 2048;
/** Elements one workgroup reduces in a tree pass; longer axes are split over several workgroups
 * and their partials reduced again (two or more passes). */
const CHUNK = 4096;

function plan(r: number, outputs: number): { splits: number; chunk: number } | null {
  if (r <= SMALL_R || (outputs >= MANY_OUTPUTS && r <= LOOP_R)) return null;
  const splits = Math.ceil(r / CHUNK);
  return { splits, chunk: Math.ceil(r / splits) };
}

/** Sum over the middle axis of x viewed as [outer, r, inner], times `scale`, into a new tensor of
 * `shape` (outer*inner elements). No autograd: the building block other ops (norms, losses) use
 * for sums inside their own forward or backward. */
export function sumMiddle(x: Tensor, outer: number, r: number, inner: number, scale = 1, shape: readonly number[] = [outer * inner]): Tensor {
  if (outer * r * inner !== x.size)
    throw new PulmoError(`sum: cannot view ${shapeStr(x.shape)} as [${outer}, ${r}, ${inner}]`);
  const y = Tensor.empty(x.device, shape);
  const lbl = label("sum", x);
  const p = plan(r, outer * inner);
  if (!p) {
    x.device.dispatch({
      kernel: "reduce/reduce",
      entry: "small",
      bindings: { x, idx: x, y },
      uniforms: { outer, r, inner, splits: 1, chunk: r, scale },
      workgroups: groups1d(outer * inner),
      label: lbl,
    });
    return y;
  }
  const part = p.splits === 1 ? y : Tensor.empty(x.device, [outer * p.splits * inner]);
  x.device.dispatch({
    kernel: "reduce/reduce",
    bindings: { x, idx: x, y: part },
    uniforms: { outer, r, inner, splits: p.splits, chunk: p.chunk, scale: p.splits === 1 ? scale : 1 },
    workgroups: outer * p.splits * inner,
    label: lbl,
  });
  if (part === y) return y;
  y.dispose();
  const out = sumMiddle(part, outer, p.splits, inner, scale, shape);
  part.dispose();
  return out;
}

/** Max and its index (first occurrence; NaN wins) over the middle axis of [outer, r, inner]. */
function maxMiddle(x: Tensor, xi: Tensor | null, outer: number, r: number, inner: number, shape: readonly number[]): { values: Tensor; indices: Tensor } {
  const p = plan(r, outer * inner);
  const splits = p?.splits ?? 1;
  const values = Tensor.empty(x.device, splits === 1 ? shape : [outer * splits * inner]);
  const indices = Tensor.empty(x.device, values.shape, "i32");
  x.device.dispatch({
    kernel: "reduce/argmax",
    entry: p ? "main" : "small",
    constants: { FIRST: xi ? 0 : 1 },
    bindings: { x, xi: xi ?? x, y: values, yi: indices },
    uniforms: { outer, r, inner, splits, chunk: p?.chunk ?? r },
    workgroups: p ? outer * splits * inner : groups1d(outer * inner),
    label: label("max", x),
  });
  if (splits === 1) return { values, indices };
  const out = maxMiddle(values, indices, outer, splits, inner, shape);
  values.dispose();
  indices.dispose();
  return out;
}

/** dx [outer, r, inner] from dy [outer, inner]: scale*dy broadcast (sum, mean) or dy routed to
 * the argmax (max). */
function spreadBack(dy: Tensor, idx: Tensor | null, outer: number, r: number, inner: number, scale: number, shape: readonly number[]): Tensor {
  const dx = Tensor.empty(dy.device, shape);
  dy.device.dispatch({
    kernel: "reduce/reduce",
    entry: "backward",
    constants: { OP: idx ? 1 : 0 },
    bindings: { x: dy, idx: idx ?? dy, y: dx },
    uniforms: { outer, r, inner, splits: 1, chunk: r, scale },
    workgroups: groups1d(dx.size),
    label: label(idx ? "max_backward" : "sum_backward", dy),
  });
  return dx;
}

function normAxes(op: string, x: Tensor, axes: readonly number[] | undefined): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  const out: number[] = [];
  for (const a of axes) {
    if (!Number.isInteger(a) || a < -x.rank || a >= Math.max(x.rank, 1))
      throw new PulmoError(`${op}: axis ${a} is out of range for 'x' of shape ${shapeStr(x.shape)}`);
    const n = a < 0 ? a + x.rank : a;
    if (out.includes(n)) throw new PulmoError(`${op}: axis ${a} appears more than once in [${axes.join(", ")}]`);
    out.push(n);
  }
  return out.filter((a) => a < x.rank).sort((a, b) => a - b);
}

/** Contiguous runs of sorted axes, e.g. [0, 2, 3] → [[0, 1], [2, 4]] as half-open ranges. */
function runs(axes: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const a of axes) {
    const last = out.at(-1);
    if (last && last[1] === a) last[1] = a + 1;
    else out.push([a, a + 1]);
  }
  return out;
}

function reducedShape(shape: readonly number[], axes: number[], keepDim: boolean): number[] {
  if (keepDim) return shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const s = shape.filter((_, i) => !axes.includes(i));
  return s.length ? s : [1];
}

/** One contiguous run [a0, a1) of axes, keeping them as size-1 dims; an autograd op. */
function reduceRun(op: "sum" | "mean", x: Tensor, a0: number, a1: number): Tensor {
  const outer = numel(x.shape.slice(0, a0));
  const r = numel(x.shape.slice(a0, a1));
  const inner = numel(x.shape.slice(a1));
  const scale = op === "mean" ? 1 / r : 1;
  const kept = x.shape.map((d, i) => (i >= a0 && i < a1 ? 1 : d));
  if (overBindingLimit(x.device, x.bytes)) {
    // over one storage binding: runs of outer rows, or partial sums over runs of r (split.ts)
    const y3 = splitReduce(op, x, outer, r, inner, (xs) => {
      const part = reduceRun("sum", xs, 1, 2);
      if (op === "sum") return part;
      const scaled = mulScalar(part, scale);
      part.dispose();
      return scaled;
    });
    const y = reshape(y3, kept);
    y3.dispose();
    return y;
  }
  const y = sumMiddle(x, outer, r, inner, scale, kept);
  const xShape = x.shape;
  return record(op, y, [x], [], (dy) => [spreadBack(dy, null, outer, r, inner, scale, xShape)]);
}

function reduceAxes(op: "sum" | "mean", x: Tensor, axes: readonly number[] | undefined, keepDim: boolean): Tensor {
  expectFloat(op, "x", x);
  const ax = normAxes(op, x, axes);
  const finalShape = reducedShape(x.shape, ax, keepDim);
  const rs = runs(ax);
  if (rs.length === 0) {
    // nothing to reduce: a copy (still an autograd op, so the result is a fresh tensor)
    const y = reduceRun(op, x, 0, 0);
    return y.shape.join() === finalShape.join() ? y : reshapeOwned(y, finalShape);
  }
  // Last run first so earlier axis numbers stay valid (the runs keep size-1 dims).
  let cur = x;
  for (let k = rs.length - 1; k >= 0; k--) {
    const [a0, a1] = rs[k]!;
    const next = reduceRun(op, cur, a0, a1);
    if (cur !== x) cur.dispose();
    cur = next;
  }
  return cur.shape.join() === finalShape.join() ? cur : reshapeOwned(cur, finalShape);
}

/** Autograd reshape of an intermediate this module owns; the intermediate handle is released. */
function reshapeOwned(t: Tensor, shape: readonly number[]): Tensor {
  const y = reshape(t, shape);
  t.dispose();
  return y;
}

/** Sum over `axes` (all when omitted; negative axes count from the end). A full reduction without
 * keepDim has shape [1]. Backward broadcasts the gradient back. */
export function sum(x: Tensor, axes?: readonly number[], keepDim = false): Tensor {
  return reduceAxes("sum", x, axes, keepDim);
}

/** Mean over `axes` (all when omitted), shapes as for sum. The mean of an empty axis is NaN. */
export function mean(x: Tensor, axes?: readonly number[], keepDim = false): Tensor {
  return reduceAxes("mean", x, axes, keepDim);
}

function checkAxis(op: string, x: Tensor, axis: number): number {
  expectFloat(op, "x", x);
  if (x.rank === 0) throw new PulmoError(`${op}: 'x' must have rank >= 1, got ${shapeStr(x.shape)}`);
  const a = normAxis(op, "axis", axis, x.rank, `'x' of shape ${shapeStr(x.shape)}`);
  if (x.shape[a] === 0) throw new PulmoError(`${op}: cannot reduce the empty axis ${axis} of ${shapeStr(x.shape)}`);
  return a;
}

function maxWithIndices(op: string, x: Tensor, axis: number, keepDim: boolean) {
  const a = checkAxis(op, x, axis);
  const outer = numel(x.shape.slice(0, a));
  const r = x.shape[a]!;
  const inner = numel(x.shape.slice(a + 1));
  return { ...maxMiddle(x, null, outer, r, inner, reducedShape(x.shape, [a], keepDim)), outer, r, inner };
}

/** torch.max(x, dim).values: the largest value along `axis` (NaN if the slice has one). The
 * gradient goes to the first maximal element only, like PyTorch's max(dim). */
export function max(x: Tensor, axis: number, keepDim = false): Tensor {
  const { values, indices, outer, r, inner } = maxWithIndices("max", x, axis, keepDim);
  const xShape = x.shape;
  record("max", values, [x], [indices], (dy, [idx]) => [spreadBack(dy, idx!, outer, r, inner, 1, xShape)]);
  indices.dispose();
  return values;
}

/** torch.argmax(x, dim): index of the first maximal element along `axis`, as an i32 tensor. */
export function argmax(x: Tensor, axis: number, keepDim = false): Tensor {
  const { values, indices } = maxWithIndices("argmax", x, axis, keepDim);
  values.dispose();
  return indices;
}

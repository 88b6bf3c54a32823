// Element-wise binary ops with NumPy/PyTorch broadcasting (kernels/elementwise/binary.wgsl),
// the gradient "sum to shape" reduction they share with matmul, and tensor-scalar ops
// (kernels/elementwise/scalar.wgsl).
import { PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { overBindingLimit, splitBroadcast } from "./split.ts";
import { coalesceDims, expectFloat, expectSameDevice, groups1d, label, type StridedDim } from "../launch.ts";
import { gridGroups, vec4Launch } from "./activation.ts";

/** Binary ops of kernels/elementwise/binary.wgsl: name → OP code. */
const BINARY = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, broadcast_to: 6 } as const;
type BinaryOp = keyof typeof BINARY;
/** Code of the plain sum in the grad entry (the partial of "copy a" is the gradient itself). */
const SUM = BINARY.broadcast_to;

/** Dims the kernels take after coalescing (two vec4s of the uniform). */
const MAX_RANK = 8;

/** NumPy/PyTorch broadcast of two shapes (aligned at the trailing dim); null if incompatible. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | null {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Element strides of a contiguous `shape` seen through the dims of `out` (right-aligned),
 * 0 where `shape` is broadcast (missing or extent 1 against a larger extent). */
function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const r = out.length;
  const strides = new Array<number>(r).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = r - shape.length + i;
    strides[d] = shape[i] === 1 && out[d] !== 1 ? 0 : s;
    s *= shape[i]!;
  }
  return strides;
}

function pad8(v: readonly number[], fill: number): number[] {
  return [...v, ...new Array(MAX_RANK - v.length).fill(fill)];
}

interface Dim extends StridedDim {
  /** grad: true where this dim is summed over */
  reduced: boolean;
}

/** coalesceDims, merging only neighbours that agree on being reduced. */
function coalesce(dims: Dim[]): Dim[] {
  return coalesceDims(dims, (prev, d) => prev.reduced === d.reduced);
}

function checkRank(op: string, dims: Dim[], ...ts: Tensor[]): void {
  if (dims.length > MAX_RANK)
    throw new PulmoError(`${op}: broadcast of ${ts.map((t) => shapeStr(t.shape)).join(", ")} needs ${dims.length} dims after merging, more than ${MAX_RANK}`);
}

/** Forward: y[out] = a OP b with broadcasting; no autograd. */
function launchBinary(op: BinaryOp, a: Tensor, b: Tensor, out: readonly number[]): Tensor {
  const y = Tensor.empty(a.device, out);
  const sa = broadcastStrides(a.shape, out);
  const sb = broadcastStrides(b.shape, out);
  const dims = coalesce(out.map((extent, d) => ({ extent, reduced: false, strides: [sa[d]!, sb[d]!] })));
  checkRank(op, dims, a, b);
  const zeros = new Array(MAX_RANK).fill(0);
  if (dims.length === 1 && dims[0]!.strides.every((st) => st === 1)) {
    // same shape, no broadcast: vec4 bulk and a scalar tail (as a rank-1 contiguous loop)
    vec4Launch({ a, b, y }, (v4, bindings, n) =>
      a.device.dispatch({
        kernel: "elementwise/binary",
        entry: v4 ? "main4" : "main",
        constants: { OP: BINARY[op] },
        bindings,
        uniforms: { n, rank: 1, count: 0, chunk: 0, shape: pad8([n], 1), rshape: pad8([], 1), ostr: zeros, astr: pad8([1], 0), bstr: pad8([1], 0) },
        workgroups: v4 ? gridGroups(n) : groups1d(n),
        label: label(op, a, b),
      }),
    );
    return y;
  }
  a.device.dispatch({
    kernel: "elementwise/binary",
    constants: { OP: BINARY[op] },
    bindings: { a, b, dy: a, y },
    uniforms: {
      n: y.size,
      rank: dims.length,
      count: 0,
      chunk: 0,
      shape: pad8(dims.map((d) => d.extent), 1),
      rshape: pad8([], 1),
      ostr: zeros,
      astr: pad8(dims.map((d) => d.strides[0]!), 0),
      bstr: pad8(dims.map((d) => d.strides[1]!), 0),
    },
    workgroups: groups1d(y.size),
    label: label(op, a, b),
  });
  return y;
}

/** Largest loop per invocation before the reduction is split in two passes. */
const SPLIT_CHUNK = 256;
/** Invocations the first pass aims for when the target is small. */
const SPLIT_TARGET = 8192;

/** Gradient of `op` w.r.t. one operand (side 0 = a, 1 = b), summed over the dims where that
 * operand was broadcast: target[t] = sum over broadcast positions of partial(dy, a, b).
 * With op "broadcast_to" this is a plain sum of dy to `target` (a and b unused). */
function launchGrad(op: BinaryOp, side: 0 | 1, dy: Tensor, a: Tensor, b: Tensor, target: readonly number[]): Tensor {
  const out = dy.shape;
  const so = broadcastStrides(out, out);
  const sa = broadcastStrides(a.shape, out);
  const sb = broadcastStrides(b.shape, out);
  const st = broadcastStrides(target, out);
  const dims = coalesce(
    out.map((extent, d) => ({ extent, reduced: st[d] === 0 && extent !== 1, strides: [so[d]!, sa[d]!, sb[d]!] })),
  );
  checkRank(`${op}_backward`, dims, dy);
  if (dims.length === 1 && !dims[0]!.reduced && dims[0]!.strides.every((st) => st === 1)) {
    // same shape, nothing summed: vec4 bulk and a scalar tail (rank 1, one position per target)
    const y = Tensor.empty(dy.device, target);
    const one = pad8([1], 0);
    vec4Launch({ a, b, dy, y }, (v4, bindings, n) =>
      dy.device.dispatch({
        kernel: "elementwise/binary",
        entry: v4 ? "grad4" : "grad",
        constants: { OP: BINARY[op], SIDE: side },
        bindings,
        uniforms: { n, rank: 1, count: 1, chunk: 1, shape: pad8([n], 1), rshape: pad8([], 1), ostr: one, astr: one, bstr: one },
        workgroups: v4 ? gridGroups(n) : groups1d(n),
        label: label(`${op}_backward`, dy),
      }),
    );
    return y;
  }
  const tn = dims.reduce((n, d) => (d.reduced ? n : n * d.extent), 1);
  const count = dims.reduce((n, d) => (d.reduced ? n * d.extent : n), 1);
  // Split a long reduction over a small target into partial sums, then sum the partials.
  let split = 1;
  if (count > SPLIT_CHUNK && tn < SPLIT_TARGET) split = Math.min(Math.ceil(count / SPLIT_CHUNK), Math.ceil(SPLIT_TARGET / Math.max(tn, 1)));
  const chunk = Math.ceil(count / split);
  split = Math.ceil(count / chunk) || 1;
  const partial = Tensor.empty(dy.device, split === 1 ? target : [split, tn]);
  dy.device.dispatch({
    kernel: "elementwise/binary",
    entry: "grad",
    constants: { OP: BINARY[op], SIDE: side },
    bindings: { a, b, dy, y: partial },
    uniforms: {
      n: tn * split,
      rank: dims.length,
      count,
      chunk: Math.max(chunk, 1),
      shape: pad8(dims.map((d) => (d.reduced ? 1 : d.extent)), 1),
      rshape: pad8(dims.map((d) => (d.reduced ? d.extent : 1)), 1),
      ostr: pad8(dims.map((d) => d.strides[0]!), 0),
      astr: pad8(dims.map((d) => d.strides[1]!), 0),
      bstr: pad8(dims.map((d) => d.strides[2]!), 0),
    },
    workgroups: groups1d(tn * split),
    label: label(`${op}_backward`, dy),
  });
  if (split === 1) return partial;
  const summed = launchGrad("broadcast_to", 0, partial, partial, partial, [1, tn]);
  partial.dispose();
  const shaped = summed.reshape(target);
  summed.dispose();
  return shaped;
}

/** Sum of `x` over the dims where `shape` broadcasts onto x.shape: the gradient of a
 * broadcast (leading dims summed away, extent-1 dims kept). No autograd: a raw helper for
 * backward rules. Returns a new handle even when nothing is summed. */
export function sumToShape(x: Tensor, shape: readonly number[]): Tensor {
  const b = broadcastShapes(shape, x.shape);
  if (!b || b.length !== x.rank || b.some((d, i) => d !== x.shape[i]))
    throw new PulmoError(`sum_to_shape: ${shapeStr(shape)} does not broadcast to ${shapeStr(x.shape)}`);
  if (shape.length === x.rank && shape.every((d, i) => d === x.shape[i])) return x.reshape(shape);
  return launchGrad("broadcast_to", 0, x, x, x, shape);
}

function validateBinary(op: string, a: Tensor, b: Tensor): number[] {
  expectFloat(op, "a", a);
  expectFloat(op, "b", b);
  expectSameDevice(op, a, b);
  const out = broadcastShapes(a.shape, b.shape);
  if (!out) throw new PulmoError(`${op}: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} do not broadcast`);
  return out;
}

function binary(op: Exclude<BinaryOp, "broadcast_to">, a: Tensor, b: Tensor): Tensor {
  const out = validateBinary(op, a, b);
  // over one storage binding: slabs along the leading output dim (split.ts)
  if (overBindingLimit(a.device, a.bytes, b.bytes, numel(out) * 4)) return splitBroadcast(op, a, b, out, ([ap, bp]) => binary(op, ap!, bp!));
  const y = launchBinary(op, a, b, out);
  const needA = a.requiresGrad;
  const needB = b.requiresGrad;
  // add/sub gradients do not read the operands: save nothing for them.
  const reads = op !== "add" && op !== "sub";
  const aShape = a.shape;
  const bShape = b.shape;
  return record(op, y, [a, b], reads ? [a, b] : [], (dy, saved) => {
    const as = reads ? saved[0]! : dy;
    const bs = reads ? saved[1]! : dy;
    const grad = (side: 0 | 1, shape: readonly number[]) => {
      const sameShape = shape.length === dy.rank && shape.every((d, i) => d === dy.shape[i]);
      if (sameShape && (op === "add" || (op === "sub" && side === 0))) return dy.reshape(shape);
      // The grad kernel reads operands by their shapes; for add/sub they are unread dummies.
      return launchGrad(op, side, dy, reads ? as : dy, reads ? bs : dy, shape);
    };
    return [needA ? grad(0, aShape) : null, needB ? grad(1, bShape) : null];
  });
}

/** a + b with broadcasting. */
export const add = (a: Tensor, b: Tensor): Tensor => binary("add", a, b);
/** a - b with broadcasting. */
export const sub = (a: Tensor, b: Tensor): Tensor => binary("sub", a, b);
/** a * b with broadcasting. */
export const mul = (a: Tensor, b: Tensor): Tensor => binary("mul", a, b);
/** a / b with broadcasting (IEEE: x/0 = ±inf, 0/0 = NaN). */
export const div = (a: Tensor, b: Tensor): Tensor => binary("div", a, b);
/** Element-wise max with broadcasting; ties split the gradient evenly (PyTorch). */
export const maximum = (a: Tensor, b: Tensor): Tensor => binary("maximum", a, b);
/** Element-wise min with broadcasting; ties split the gradient evenly (PyTorch). */
export const minimum = (a: Tensor, b: Tensor): Tensor => binary("minimum", a, b);

/** x expanded to `shape` (broadcasting rules; a copy); backward sums back to x's shape. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  expectFloat("broadcast_to", "x", x);
  const b = broadcastShapes(x.shape, shape);
  if (!b || b.length !== shape.length || b.some((d, i) => d !== shape[i]))
    throw new PulmoError(`broadcast_to: 'x' ${shapeStr(x.shape)} does not broadcast to ${shapeStr(shape)}`);
  const y = launchBinary("broadcast_to", x, x, shape);
  const xShape = x.shape;
  return record("broadcast_to", y, [x], [], (dy) => [sumToShape(dy, xShape)]);
}

/** Ops of kernels/elementwise/scalar.wgsl: name → OP code. */
const SCALAR = { add_scalar: 0, mul_scalar: 1, pow_scalar: 2, clamp: 3 } as const;
type ScalarOp = keyof typeof SCALAR;

interface ScalarArgs {
  s: number;
  hi: number;
  hasLo: boolean;
  hasHi: boolean;
}

function launchScalar(op: ScalarOp, entry: "main" | "backward", x: Tensor, dy: Tensor | null, args: ScalarArgs): Tensor {
  const y = Tensor.empty(x.device, x.shape);
  vec4Launch(dy ? { x, dy, y } : { x, y }, (v4, bindings, n) =>
    x.device.dispatch({
      kernel: "elementwise/scalar",
      entry: v4 ? `${entry}4` : entry,
      constants: { OP: SCALAR[op] },
      bindings,
      uniforms: { n, s: args.s, hi: args.hi, has_lo: args.hasLo ? 1 : 0, has_hi: args.hasHi ? 1 : 0 },
      workgroups: v4 ? gridGroups(n) : groups1d(n),
      label: label(entry === "main" ? op : `${op}_backward`, x),
    }),
  );
  return y;
}

function expectNumber(op: string, name: string, v: number): void {
  if (typeof v !== "number" || Number.isNaN(v)) throw new PulmoError(`${op}: '${name}' must be a number, got ${v}`);
}

function scalarOp(op: ScalarOp, x: Tensor, args: ScalarArgs, savesX: boolean): Tensor {
  expectFloat(op, "x", x);
  const y = launchScalar(op, "main", x, null, args);
  return record(op, y, [x], savesX ? [x] : [], (dy, saved) => {
    if (op === "add_scalar") return [dy.reshape(dy.shape)];
    return [launchScalar(op, "backward", savesX ? saved[0]! : dy, dy, args)];
  });
}

/** x + s. */
export function addScalar(x: Tensor, s: number): Tensor {
  expectNumber("add_scalar", "s", s);
  return scalarOp("add_scalar", x, { s, hi: 0, hasLo: false, hasHi: false }, false);
}

/** x * s. */
export function mulScalar(x: Tensor, s: number): Tensor {
  expectNumber("mul_scalar", "s", s);
  return scalarOp("mul_scalar", x, { s, hi: 0, hasLo: false, hasHi: false }, false);
}

/** x ** p (PyTorch `torch.pow(x, p)`): integral p works for negative x; fractional p gives NaN
 * there. Backward p * x^(p-1) (0 when p = 0). */
export function powScalar(x: Tensor, p: number): Tensor {
  expectNumber("pow_scalar", "p", p);
  return scalarOp("pow_scalar", x, { s: p, hi: 0, hasLo: false, hasHi: false }, true);
}

/** Clamps x to [lo, hi] (either bound may be omitted with undefined/null). The gradient passes
 * where lo <= x <= hi, as PyTorch's clamp backward. */
export function clamp(x: Tensor, lo?: number | null, hi?: number | null): Tensor {
  const hasLo = lo !== undefined && lo !== null;
  const hasHi = hi !== undefined && hi !== null;
  if (hasLo) expectNumber("clamp", "lo", lo);
  if (hasHi) expectNumber("clamp", "hi", hi);
  if (!hasLo && !hasHi) throw new PulmoError("clamp: at least one of 'lo' and 'hi' must be given");
  return scalarOp("clamp", x, { s: hasLo ? lo : 0, hi: hasHi ? hi : 0, hasLo, hasHi }, true);
}


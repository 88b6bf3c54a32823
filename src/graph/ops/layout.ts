// Layout ops: reshape (a view), and copies through kernels/layout/copy.wgsl (permute, transpose,
// concat, stack) and kernels/layout/pad.wgsl (pad, slice, and both their backwards).
import { PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { concatByCopies, overBindingLimit, padByCopies, sliceByCopies, splitPermute } from "./split.ts";
import { coalesceDims, contiguousStrides, expectFloat, expectSameDevice, groups1d, label, normAxis } from "../launch.ts";

/** reshape as an autograd op: a view forward, the gradient reshaped back. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const y = x.reshape(shape);
  return record("reshape", y, [x], [], (dy) => [dy.reshape(x.shape)]);
}

/** Dims the kernels take after coalescing (two vec4s of the uniform). */
const MAX_RANK = 8;

/** axis in [-rank, rank) → [0, rank), out of range reported against `shape`. */
function axisOf(op: string, name: string, axis: number, rank: number, shape: readonly number[]): number {
  return normAxis(op, `'${name}'`, axis, rank, `shape ${shapeStr(shape)} (rank ${rank})`);
}

function pad8(v: readonly number[], fill: number): number[] {
  return [...v, ...new Array(MAX_RANK - v.length).fill(fill)];
}

/** y[obase + c·ostr] = x[ibase + c·istr] over the coordinates c of `shape`. */
function launchCopy(
  op: string,
  x: Tensor,
  y: Tensor,
  shape: readonly number[],
  istr: readonly number[],
  ostr: readonly number[],
  ibase: number,
  obase: number,
): void {
  const n = numel(shape);
  if (n === 0) return;
  const dims = coalesceDims(shape.map((extent, d) => ({ extent, strides: [istr[d]!, ostr[d]!] })));
  if (dims.length > MAX_RANK)
    throw new PulmoError(`${op}: ${shapeStr(x.shape)} needs ${dims.length} dims after merging, more than ${MAX_RANK}`);
  x.device.dispatch({
    kernel: "layout/copy",
    bindings: { x, y },
    uniforms: {
      n,
      rank: dims.length,
      ibase,
      obase,
      shape: pad8(dims.map((d) => d.extent), 1),
      istr: pad8(dims.map((d) => d.strides[0]!), 0),
      ostr: pad8(dims.map((d) => d.strides[1]!), 0),
    },
    workgroups: groups1d(n),
    label: label(op, x),
  });
}

/** Constant padding with per-dim [before, after] (negative values crop); no autograd. */
function padRaw(op: string, x: Tensor, pads: readonly (readonly [number, number])[], value: number): Tensor {
  const outShape = x.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]);
  const y = Tensor.empty(x.device, outShape);
  if (y.size === 0) return y;
  const istr = contiguousStrides(x.shape);
  interface PadDim {
    o: number;
    i: number;
    before: number;
    istr: number;
  }
  const dims: PadDim[] = [];
  for (let d = 0; d < x.rank; d++) {
    const cur: PadDim = { o: outShape[d]!, i: x.shape[d]!, before: pads[d]![0], istr: istr[d]! };
    const plain = cur.before === 0 && cur.o === cur.i;
    if (plain && cur.o === 1) continue; // a unit dim copied as is adds nothing
    const prev = dims.at(-1);
    // Merge unpadded neighbours that are contiguous in x.
    if (plain && prev && prev.before === 0 && prev.o === prev.i && prev.istr === cur.istr * cur.i)
      dims[dims.length - 1] = { o: prev.o * cur.o, i: prev.i * cur.i, before: 0, istr: cur.istr };
    else dims.push(cur);
  }
  if (dims.length > MAX_RANK)
    throw new PulmoError(`${op}: ${shapeStr(x.shape)} needs ${dims.length} dims after merging, more than ${MAX_RANK}`);
  x.device.dispatch({
    kernel: "layout/pad",
    bindings: { x, y },
    uniforms: {
      n: y.size,
      rank: dims.length,
      value,
      oshape: pad8(dims.map((d) => d.o), 1),
      ishape: pad8(dims.map((d) => d.i), 1),
      before: pad8(dims.map((d) => d.before), 0),
      istr: pad8(dims.map((d) => d.istr), 0),
    },
    workgroups: groups1d(y.size),
    label: label(op, x),
  });
  return y;
}

/** x[..., start:end, ...] along `axis` (already normalised and clamped); no autograd. */
function sliceRaw(x: Tensor, axis: number, start: number, end: number): Tensor {
  const pads = x.shape.map((d, i): [number, number] => (i === axis ? [-start, -(d - end)] : [0, 0]));
  return padRaw("slice", x, pads, 0);
}

function permuteRaw(x: Tensor, dims: readonly number[]): Tensor {
  const outShape = dims.map((d) => x.shape[d]!);
  const y = Tensor.empty(x.device, outShape);
  const xs = contiguousStrides(x.shape);
  launchCopy("permute", x, y, outShape, dims.map((d) => xs[d]!), contiguousStrides(outShape), 0, 0);
  return y;
}

/** Reorders dims: y.shape[i] = x.shape[dims[i]] (torch.permute); a copy. Negative dims allowed. */
export function permute(x: Tensor, dims: number[]): Tensor {
  expectFloat("permute", "x", x);
  if (!Array.isArray(dims) || dims.length !== x.rank)
    throw new PulmoError(`permute: 'dims' must list ${x.rank} dims for 'x' ${shapeStr(x.shape)}, got [${dims}]`);
  const norm = dims.map((d) => axisOf("permute", "dims", d, x.rank, x.shape));
  if (new Set(norm).size !== norm.length)
    throw new PulmoError(`permute: 'dims' [${dims}] is not a permutation of the dims of ${shapeStr(x.shape)}`);
  // over one storage binding: slabs along the longest dim (split.ts)
  if (overBindingLimit(x.device, x.bytes)) return splitPermute("permute", x, norm, ([xs]) => permute(xs!, norm));
  const y = permuteRaw(x, norm);
  const inverse = new Array<number>(norm.length);
  norm.forEach((d, i) => (inverse[d] = i));
  return record("permute", y, [x], [], (dy) => [permuteRaw(dy, inverse)]);
}

/** Swaps two dims (torch.transpose); a copy. */
export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  expectFloat("transpose", "x", x);
  const a = axisOf("transpose", "d0", d0, x.rank, x.shape);
  const b = axisOf("transpose", "d1", d1, x.rank, x.shape);
  const dims = x.shape.map((_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, dims);
}

function expectList(op: string, tensors: Tensor[]): void {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new PulmoError(`${op}: 'tensors' must be a non-empty array`);
  tensors.forEach((t, i) => expectFloat(op, `tensors[${i}]`, t));
  expectSameDevice(op, ...tensors);
}

/** Joins tensors along an existing axis (torch.cat); all other dims must match. Backward:
 * each input gets its slice of the gradient. */
export function concat(tensors: Tensor[], axis: number): Tensor {
  expectList("concat", tensors);
  const first = tensors[0]!;
  if (first.rank === 0) throw new PulmoError("concat: tensors must have rank >= 1, got a scalar");
  const ax = axisOf("concat", "axis", axis, first.rank, first.shape);
  tensors.forEach((t, i) => {
    if (t.rank !== first.rank || t.shape.some((d, k) => k !== ax && d !== first.shape[k]))
      throw new PulmoError(
        `concat: 'tensors[${i}]' ${shapeStr(t.shape)} does not match 'tensors[0]' ${shapeStr(first.shape)} outside axis ${ax}`,
      );
  });
  const outShape = [...first.shape];
  outShape[ax] = tensors.reduce((s, t) => s + t.shape[ax]!, 0);
  const y = Tensor.empty(first.device, outShape);
  const ostr = contiguousStrides(outShape);
  const offsets: number[] = [];
  let off = 0;
  for (const t of tensors) {
    offsets.push(off);
    off += t.shape[ax]!;
  }
  // Over one storage binding: contiguous buffer copies, which bind nothing (split.ts).
  const split = overBindingLimit(first.device, y.bytes);
  if (split) concatByCopies(tensors, ax, y);
  else tensors.forEach((t, i) => launchCopy("concat", t, y, t.shape, contiguousStrides(t.shape), ostr, 0, offsets[i]! * ostr[ax]!));
  const need = tensors.map((t) => t.requiresGrad);
  const lengths = tensors.map((t) => t.shape[ax]!);
  const cut = split ? sliceByCopies : sliceRaw;
  return record("concat", y, tensors, [], (dy) =>
    need.map((n, i) => (n ? cut(dy, ax, offsets[i]!, offsets[i]! + lengths[i]!) : null)),
  );
}

/** Joins same-shaped tensors along a new axis in [-(rank+1), rank] (torch.stack). */
export function stack(tensors: Tensor[], axis: number): Tensor {
  expectList("stack", tensors);
  const first = tensors[0]!;
  const ax = axisOf("stack", "axis", axis, first.rank + 1, [...first.shape, 1]);
  tensors.forEach((t, i) => {
    if (t.rank !== first.rank || t.shape.some((d, k) => d !== first.shape[k]))
      throw new PulmoError(`stack: 'tensors[${i}]' ${shapeStr(t.shape)} does not match 'tensors[0]' ${shapeStr(first.shape)}`);
  });
  const outShape = [...first.shape.slice(0, ax), tensors.length, ...first.shape.slice(ax)];
  const region = [...first.shape.slice(0, ax), 1, ...first.shape.slice(ax)];
  const y = Tensor.empty(first.device, outShape);
  const ostr = contiguousStrides(outShape);
  const istr = contiguousStrides(region);
  tensors.forEach((t, i) => launchCopy("stack", t, y, region, istr, ostr, 0, i * ostr[ax]!));
  const need = tensors.map((t) => t.requiresGrad);
  const shape = first.shape;
  return record("stack", y, tensors, [], (dy) =>
    need.map((n, i) => {
      if (!n) return null;
      const s = sliceRaw(dy, ax, i, i + 1);
      const g = s.reshape(shape);
      s.dispose();
      return g;
    }),
  );
}

/** x[start:end] along `axis` (Python slicing: negative indices count from the end, bounds
 * clamp, end <= start gives an empty slice; step 1). Backward zero-pads the gradient back. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  expectFloat("slice", "x", x);
  if (x.rank === 0) throw new PulmoError("slice: 'x' must have rank >= 1, got a scalar");
  const ax = axisOf("slice", "axis", axis, x.rank, x.shape);
  if (!Number.isInteger(start) || !Number.isInteger(end))
    throw new PulmoError(`slice: 'start' and 'end' must be integers, got ${start}, ${end}`);
  const n = x.shape[ax]!;
  const s = Math.min(Math.max(start < 0 ? start + n : start, 0), n);
  const e = Math.max(Math.min(Math.max(end < 0 ? end + n : end, 0), n), s);
  if (overBindingLimit(x.device, x.bytes)) {
    // over one storage binding: contiguous buffer copies both ways (split.ts)
    const xShape = x.shape;
    return record("slice", sliceByCopies(x, ax, s, e), [x], [], (dy) => [padByCopies(dy, xShape, ax, s)]);
  }
  const y = sliceRaw(x, ax, s, e);
  const pads = x.shape.map((d, i): [number, number] => (i === ax ? [s, d - e] : [0, 0]));
  return record("slice", y, [x], [], (dy) => [padRaw("slice_backward", dy, pads, 0)]);
}

/** Constant padding: pads[d] = [before, after] for every dim d of x, in dim order (NumPy
 * np.pad style, not F.pad's reversed flat list); negative amounts crop. Backward: the
 * gradient cropped back (padding positions get none). */
export function pad(x: Tensor, pads: [number, number][], value = 0): Tensor {
  expectFloat("pad", "x", x);
  if (!Array.isArray(pads) || pads.length !== x.rank)
    throw new PulmoError(`pad: 'pads' must give [before, after] for each of the ${x.rank} dims of 'x' ${shapeStr(x.shape)}, got ${pads?.length} pairs`);
  pads.forEach((pr, d) => {
    if (!Array.isArray(pr) || pr.length !== 2 || !pr.every(Number.isInteger))
      throw new PulmoError(`pad: 'pads[${d}]' must be a pair of integers, got ${JSON.stringify(pr)}`);
    if (x.shape[d]! + pr[0] + pr[1] < 0)
      throw new PulmoError(`pad: 'pads[${d}]' [${pr}] crops dim ${d} of 'x' ${shapeStr(x.shape)} below zero`);
  });
  if (typeof value !== "number") throw new PulmoError(`pad: 'value' must be a number, got ${value}`);
  const y = padRaw("pad", x, pads, value);
  const back = pads.map(([b, a]): [number, number] => [-b, -a]);
  return record("pad", y, [x], [], (dy) => [padRaw("pad_backward", dy, back, 0)]);
}

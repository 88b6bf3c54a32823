// Splitting ops whose tensors exceed one storage binding (maxStorageBufferBindingSize: 128 MiB
// on lavapipe; docs/ops/split.md). A buffer may be larger than a binding; only what one dispatch
// binds is limited, and buffer copies (device.copy) have no binding limit at all. Two strategies:
//   splitChannels   ops independent per (sample, channel): instance norm, batch norm in eval,
//                   max pooling, upsampling. Runs of whole channels of one sample are processed
//                   as [1, c, ...] tensors (chunk() views when 256-byte aligned, else gathered with
//                   a copy) and copied into the big output.
//   convDepthSlabs  convolutions (direct and transposed): runs of output depth rows are computed
//                   from the input rows they read, gathered per (n, c) into a zero-filled slab
//                   (rows outside the volume stay zero: the depth padding) and scattered back per
//                   (n, c) with buffer copies, so neither big tensor is ever bound.
// Concatenation over the limit is a set of contiguous buffer copies (layout.ts).
// These paths are forward (inference) only: the backward of a split op throws a PulmoError.
import { PulmoError, Tensor, numel, shapeStr, type Device } from "../../runtime/index.ts";
import { noGrad, record } from "../tape.ts";

/** True when any of the byte counts is over the device's storage binding limit. */
export function overBindingLimit(device: Device, ...bytes: number[]): boolean {
  const limit = device.limits.maxBindingBytes;
  return bytes.some((b) => b > limit);
}

/** Records `op` on an output computed in pieces: its backward is refused with a clear error. */
export function recordSplitForward(op: string, y: Tensor, inputs: (Tensor | null | undefined)[], shape: readonly number[]): Tensor {
  const limit = y.device.limits.maxBindingBytes;
  return record(op, y, inputs, [], () => {
    throw new PulmoError(
      `${op}: backward is not supported for tensors over the ${limit}-byte storage binding limit ('x' ${shapeStr(shape)} was split in the forward pass; split ops are inference-only, see docs/ops/split.md)`,
    );
  });
}

/** Elements [start, start + numel(shape)) of t as a tensor of `shape`: a view when the start is
 * 256-byte aligned, else a copy. */
function piece(t: Tensor, start: number, shape: readonly number[]): Tensor {
  if ((t.byteOffset + start * 4) % 256 === 0) return t.chunk(start, shape);
  const p = Tensor.empty(t.device, shape, t.dtype, "split piece");
  t.device.copy(t.buffer, t.byteOffset + start * 4, p.buffer, p.byteOffset, p.bytes);
  return p;
}

/** Channels [c0, c1) of a per-channel parameter [C] (a copy), or null. */
export function channelSlice(t: Tensor | null | undefined, c0: number, c1: number): Tensor | null {
  if (!t) return null;
  const s = Tensor.empty(t.device, [c1 - c0], t.dtype, "split parameter");
  t.device.copy(t.buffer, t.byteOffset + c0 * 4, s.buffer, s.byteOffset, (c1 - c0) * 4);
  return s;
}

/** y [N, C, ...outSpatial] from x [N, C, ...] for an op independent per (sample, channel): `run`
 * maps x[n, c0:c1] (shape [1, c1 - c0, ...]) to y[n, c0:c1]. Each piece holds as many whole
 * channels as fit one binding on both sides. Runs with recording off; the caller records. */
export function splitChannels(op: string, x: Tensor, yShape: readonly number[], run: (xs: Tensor, c0: number, c1: number) => Tensor): Tensor {
  const device = x.device;
  const limit = device.limits.maxBindingBytes;
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  if (yShape[0] !== n || yShape[1] !== c) throw new PulmoError(`${op}: internal error, split output ${shapeStr(yShape)} vs 'x' ${shapeStr(x.shape)}`);
  const sx = numel(x.shape.slice(2));
  const sy = numel(yShape.slice(2));
  const perChannel = Math.max(sx, sy) * 4;
  if (perChannel > limit)
    throw new PulmoError(
      `${op}: one channel of 'x' ${shapeStr(x.shape)} → ${shapeStr(yShape)} (${perChannel} bytes) does not fit the ${limit}-byte storage binding limit`,
    );
  const step = Math.min(c, Math.floor(limit / perChannel));
  const y = Tensor.empty(device, yShape, "f32", op);
  noGrad(() => {
    for (let b = 0; b < n; b++)
      for (let c0 = 0; c0 < c; c0 += step) {
        const c1 = Math.min(c, c0 + step);
        const xs = piece(x, (b * c + c0) * sx, [1, c1 - c0, ...x.shape.slice(2)]);
        const ys = run(xs, c0, c1);
        device.copy(ys.buffer, ys.byteOffset, y.buffer, y.byteOffset + (b * c + c0) * sy * 4, ys.bytes);
        xs.dispose();
        ys.dispose();
      }
  });
  return y;
}

/** Depth geometry of a convolution: kernel, stride, padding, dilation. */
export interface DepthGeometry {
  k: number;
  s: number;
  p: number;
  dil: number;
}

/** Input rows [first, first + count) a run of output rows [d0, d0 + r) reads, and the depth
 * padding the slab is convolved with. Direct: a = d0*s - p, count (r-1)*s + dil*(k-1) + 1, pad 0.
 * Transposed (output o gathers input i where i*s = o + p - k*dil): i from
 * max(0, floor((d0 + p - dil*(k-1)) / s)) to floor((d0 + r - 1 + p) / s); the slab is convolved
 * with padding p + d0 - first*s, which is >= 0. */
function slabRows(transposed: boolean, g: DepthGeometry, d0: number, r: number): { first: number; count: number; pad: number } {
  if (!transposed) return { first: d0 * g.s - g.p, count: (r - 1) * g.s + g.dil * (g.k - 1) + 1, pad: 0 };
  const first = Math.max(0, Math.floor((d0 + g.p - g.dil * (g.k - 1)) / g.s));
  const last = Math.max(first, Math.floor((d0 + r - 1 + g.p) / g.s));
  return { first, count: last - first + 1, pad: g.p + d0 - first * g.s };
}

/** y [N, cout, oD, oH, oW] from x [N, cin, D, H, W] in depth slabs: for each sample, runs of
 * output depth rows whose input slab and output rows fit a binding. `run(slab, outShape, padD)`
 * convolves a [1, cin, rows, H, W] slab into [1, cout, r, oH, oW] with depth padding padD (the
 * other dims' geometry unchanged). */
export function convDepthSlabs(
  op: string,
  transposed: boolean,
  x: Tensor,
  outShape: readonly number[],
  g: DepthGeometry,
  run: (slab: Tensor, outShape: number[], padD: number) => Tensor,
): Tensor {
  const device = x.device;
  const limit = device.limits.maxBindingBytes;
  const [batch, cin, D, H, W] = x.shape as [number, number, number, number, number];
  const [, cout, oD, oH, oW] = outShape as [number, number, number, number, number];
  const [plane, oPlane] = [H * W * 4, oH * oW * 4];
  // the most input rows any run of r output rows reads (transposed: bounded over every start)
  const maxInRows = (r: number) =>
    transposed ? Math.floor((r - 1 + g.dil * (g.k - 1)) / g.s) + 2 : (r - 1) * g.s + g.dil * (g.k - 1) + 1;
  const fits = (r: number) => cin * maxInRows(r) * plane <= limit && cout * r * oPlane <= limit;
  if (!fits(1))
    throw new PulmoError(
      `${op}: one output depth row of 'x' ${shapeStr(x.shape)} → ${shapeStr(outShape)} does not fit the ${limit}-byte storage binding limit`,
    );
  let [lo, hi] = [1, oD]; // largest r that fits (fits is monotonic in r)
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  const rows = lo;
  const y = Tensor.empty(device, outShape, "f32", op);
  noGrad(() => {
    for (let n = 0; n < batch; n++)
      for (let d0 = 0; d0 < oD; d0 += rows) {
        const r = Math.min(rows, oD - d0);
        const { first, count, pad } = slabRows(transposed, g, d0, r);
        const [from, to] = [Math.max(first, 0), Math.min(first + count, D)];
        const slab = Tensor.zeros(device, [1, cin, count, H, W]);
        if (to > from)
          for (let c = 0; c < cin; c++)
            device.copy(x.buffer, x.byteOffset + ((n * cin + c) * D + from) * plane, slab.buffer, slab.byteOffset + (c * count + from - first) * plane, (to - from) * plane);
        const part = run(slab, [1, cout, r, oH, oW], pad);
        for (let c = 0; c < cout; c++)
          device.copy(part.buffer, part.byteOffset + c * r * oPlane, y.buffer, y.byteOffset + ((n * cout + c) * oD + d0) * oPlane, r * oPlane);
        slab.dispose();
        part.dispose();
      }
  });
  return y;
}

/** torch.cat along `axis` as contiguous buffer copies (no binding): each input contributes one run
 * of shape[axis] * inner elements per outer index. */
export function concatByCopies(tensors: Tensor[], axis: number, y: Tensor): void {
  const inner = numel(y.shape.slice(axis + 1));
  const outer = numel(y.shape.slice(0, axis));
  const outRun = y.shape[axis]! * inner;
  let off = 0;
  for (const t of tensors) {
    const run = t.shape[axis]! * inner;
    for (let o = 0; o < outer; o++)
      t.device.copy(t.buffer, t.byteOffset + o * run * 4, y.buffer, y.byteOffset + (o * outRun + off) * 4, run * 4);
    off += run;
  }
}

/** x[..., start:end, ...] along `axis` as contiguous buffer copies (concat's backward over the limit). */
export function sliceByCopies(x: Tensor, axis: number, start: number, end: number): Tensor {
  const shape = [...x.shape];
  shape[axis] = end - start;
  const y = Tensor.empty(x.device, shape);
  const inner = numel(x.shape.slice(axis + 1));
  const outer = numel(x.shape.slice(0, axis));
  const run = (end - start) * inner;
  for (let o = 0; o < outer; o++)
    x.device.copy(x.buffer, x.byteOffset + (o * x.shape[axis]! * inner + start * inner) * 4, y.buffer, y.byteOffset + o * run * 4, run * 4);
  return y;
}

// Splitting ops whose tensors exceed one storage binding (maxStorageBufferBindingSize: 128 MiB
// on lavapipe; docs/ops/split.md). A buffer may be larger than a binding; only what one dispatch
// binds is limited, and buffer copies (device.copy) have no binding limit at all.
//
// One mechanism serves forward and backward: a SplitPlan lists pieces, and for each piece the
// Region of every big tensor it reads or writes (runs of elements copied between the big tensor
// and a small one that fits a binding). The forward gathers each piece's inputs, runs the op's
// ordinary path on them and scatters the piece's output. The backward recomputes each piece with
// its inputs as fresh leaves, back-propagates the piece's slice of the output gradient through
// that small graph (the ops' own backward rules), and scatters (or, where pieces overlap, adds)
// each piece's input gradients into the big gradients; whole inputs (weights) sum their
// gradients over the pieces. Recomputing trades one extra forward per piece for not keeping the
// pieces' intermediates alive.
//   channelPlan   ops independent per (sample, channel): instance norm, batch norm in eval,
//                 max pooling, upsampling; runs of whole channels of one sample.
//   batchChannelPlan  batch norm in training: runs of whole channels over every sample, so each
//                 piece holds the channel's full N·D·H·W statistics.
//   convSlabPlan  convolutions (direct and transposed): runs of output depth rows computed from
//                 the input rows they read, gathered per (n, c) into a zero-filled slab (rows
//                 outside the volume stay zero: the depth padding). Slabs overlap by the kernel's
//                 halo, so input gradients are added, and the weight gradient sums over slabs.
//   rowPlan       row-wise ops on [..., K] (linear/matmul rows, layer norm, softmax over the last
//                 dim): runs of whole rows.
// Concatenation over the limit is a set of contiguous buffer copies (layout.ts).
import { PulmoError, Tensor, numel, shapeStr, type Device } from "../../runtime/index.ts";
import { enableGrad, needsGrad, noGrad, record } from "../tape.ts";
import { backward as backwardOf } from "../autograd.ts";
import { addSame } from "../launch.ts";
import { conv3d, convTranspose3d } from "./conv.ts";
import { reshape, slice } from "./layout.ts";

/** True when any of the byte counts is over the device's storage binding limit. */
export function overBindingLimit(device: Device, ...bytes: number[]): boolean {
  const limit = device.limits.maxBindingBytes;
  return bytes.some((b) => b > limit);
}

/** The error for a tensor an op cannot split: names op, tensor and limit. */
export function unsplittable(op: string, what: string, t: { shape: readonly number[] } | readonly number[], limit: number, why: string): PulmoError {
  const shape = Array.isArray(t) ? (t as readonly number[]) : (t as { shape: readonly number[] }).shape;
  return new PulmoError(`${op}: '${what}' ${shapeStr(shape)} (${numel(shape) * 4} bytes) exceeds the ${limit}-byte storage binding limit and ${why} (see docs/ops/split.md)`);
}

/** Where a piece's tensor lives in a big one: runs of [bigStart, pieceStart, length] elements.
 * Elements of the piece that no run covers are zero (a conv slab's depth padding). */
export interface Region {
  shape: number[];
  runs: [number, number, number][];
}

/** Pieces of a split op and, per piece, the region of each input (null: passed whole, e.g. a
 * weight) and of the output. */
export interface SplitPlan {
  count: number;
  input(i: number, piece: number): Region | null;
  output(piece: number): Region;
  /** input i's regions tile it exactly (disjoint, covering): gradients are copied, not added */
  tiles(i: number): boolean;
  /** the pieces' outputs are partial sums of the same region, added up (a reduction split
   * along its reduced axis) */
  outputAdds?: boolean;
}

const covered = (r: Region) => r.runs.reduce((s, [, , n]) => s + n, 0) === numel(r.shape);

/** The piece of `big` a region names: a view when it is one aligned run, else a copy. */
function gather(big: Tensor, r: Region): Tensor {
  const [first] = r.runs;
  if (r.runs.length === 1 && first![1] === 0 && covered(r) && ((big.byteOffset + first![0] * 4) % 256 === 0)) return big.chunk(first![0], r.shape);
  const p = covered(r) ? Tensor.empty(big.device, r.shape, big.dtype, "split piece") : Tensor.zeros(big.device, r.shape);
  for (const [b, s, n] of r.runs) big.device.copy(big.buffer, big.byteOffset + b * 4, p.buffer, p.byteOffset + s * 4, n * 4);
  return p;
}

function scatter(piece: Tensor, big: Tensor, r: Region): void {
  for (const [b, s, n] of r.runs) big.device.copy(piece.buffer, piece.byteOffset + s * 4, big.buffer, big.byteOffset + b * 4, n * 4);
}

/** big[region] += piece (gathered, added by an ordinary launch, scattered back). */
function scatterAdd(piece: Tensor, big: Tensor, r: Region): void {
  const cur = gather(big, { shape: [piece.size], runs: r.runs });
  const sum = addSame(cur, piece.reshape([piece.size]));
  scatter(sum, big, { shape: r.shape, runs: r.runs });
  cur.dispose();
  sum.dispose();
}

/** Runs `run` on every piece of `plan` (recording off) and assembles the output. */
export function splitForward(plan: SplitPlan, inputs: (Tensor | null)[], yShape: readonly number[], run: (parts: (Tensor | null)[], piece: number) => Tensor): Tensor {
  const device = inputs.find((t) => t)!.device;
  const y = plan.outputAdds ? Tensor.zeros(device, yShape) : Tensor.empty(device, yShape, "f32", "split output");
  noGrad(() => {
    for (let p = 0; p < plan.count; p++) {
      const parts = inputs.map((t, i) => {
        const r = t && plan.input(i, p);
        return t && r ? gather(t, r) : t;
      });
      const ys = run(parts, p);
      (plan.outputAdds ? scatterAdd : scatter)(ys, y, plan.output(p));
      ys.dispose();
      parts.forEach((t, i) => t !== inputs[i] && t?.dispose());
    }
  });
  return y;
}

/** Records the backward of a split op: per piece, `run` (differentiable, on leaves gathered from
 * the saved inputs) is recomputed and back-propagated with the piece's slice of dy. */
export function recordSplit(op: string, y: Tensor, inputs: (Tensor | null)[], plan: SplitPlan, run: (parts: (Tensor | null)[], piece: number) => Tensor): Tensor {
  if (!needsGrad(...inputs)) return y;
  const need = inputs.map((t) => !!t?.requiresGrad);
  const present = inputs.map((t) => !!t);
  return record(op, y, inputs, inputs.filter((t): t is Tensor => !!t), (dy, saved) => {
    let k = 0;
    const xs = present.map((p) => (p ? saved[k++]! : null));
    const device = dy.device;
    const grads = xs.map((t, i) => (need[i] ? (plan.tiles(i) ? Tensor.empty(device, t!.shape) : Tensor.zeros(device, t!.shape)) : null));
    for (let p = 0; p < plan.count; p++) {
      const regions = xs.map((t, i) => (t ? plan.input(i, p) : null));
      // fresh leaves: gradients stop at the piece, and a whole input's leaf is an alias
      const parts = xs.map((t, i) => {
        if (!t) return null;
        const leaf = regions[i] ? gather(t, regions[i]!) : t.retain();
        leaf.requiresGrad = need[i]!;
        return leaf;
      });
      const dys = gather(dy, plan.output(p));
      const ys = enableGrad(() => run(parts, p));
      backwardOf(ys, [dys.reshape(ys.shape)]);
      parts.forEach((leaf, i) => {
        const g = leaf?.grad;
        if (g && grads[i]) {
          const r = regions[i];
          if (!r) {
            const sum = addSame(grads[i]!, g);
            grads[i]!.dispose();
            grads[i] = sum;
          } else if (plan.tiles(i)) scatter(g, grads[i]!, r);
          else scatterAdd(g, grads[i]!, r);
        }
        g?.dispose();
        if (leaf) leaf.grad = null;
        leaf?.dispose();
      });
      ys.dispose();
      dys.dispose();
    }
    return grads;
  });
}

/** A split op, forward and (when an input needs it) backward: `run` must be differentiable. */
export function splitOp(op: string, inputs: (Tensor | null)[], yShape: readonly number[], plan: SplitPlan, run: (parts: (Tensor | null)[], piece: number) => Tensor): Tensor {
  return recordSplit(op, splitForward(plan, inputs, yShape, run), inputs, plan, run);
}

/** Channels [c0, c1) of a per-channel parameter [C] (a copy), or null. */
export function channelSlice(t: Tensor | null | undefined, c0: number, c1: number): Tensor | null {
  if (!t) return null;
  const s = Tensor.empty(t.device, [c1 - c0], t.dtype, "split parameter");
  t.device.copy(t.buffer, t.byteOffset + c0 * 4, s.buffer, s.byteOffset, (c1 - c0) * 4);
  return s;
}

/** A piece's channel range and sample (-1: every sample). */
export interface ChannelPiece {
  n: number;
  c0: number;
  c1: number;
}

/** Pieces of whole channels of x [N, C, ...] (→ y [N, C, ...ySpatial]): per sample, or (allSamples)
 * over every sample at once. Inputs: 0 is x; any other input is a per-channel parameter [C]
 * (null where absent). */
export function channelPlan(op: string, xShape: readonly number[], yShape: readonly number[], limit: number, allSamples = false): SplitPlan & { pieces: ChannelPiece[] } {
  const [n, c] = [xShape[0]!, xShape[1]!];
  if (yShape[0] !== n || yShape[1] !== c) throw new PulmoError(`${op}: internal error, split output ${shapeStr(yShape)} vs 'x' ${shapeStr(xShape)}`);
  const sx = numel(xShape.slice(2));
  const sy = numel(yShape.slice(2));
  const batch = allSamples ? n : 1;
  const perChannel = Math.max(sx, sy) * 4 * batch;
  if (perChannel > limit)
    throw new PulmoError(
      `${op}: one channel of 'x' ${shapeStr(xShape)} → ${shapeStr(yShape)} (${perChannel} bytes${allSamples ? " over all samples" : ""}) does not fit the ${limit}-byte storage binding limit`,
    );
  const step = Math.min(c, Math.floor(limit / perChannel));
  const pieces: ChannelPiece[] = [];
  for (let b = 0; b < (allSamples ? 1 : n); b++)
    for (let c0 = 0; c0 < c; c0 += step) pieces.push({ n: allSamples ? -1 : b, c0, c1: Math.min(c, c0 + step) });
  const region = (q: ChannelPiece, s: number, spatial: readonly number[]): Region => {
    const w = q.c1 - q.c0;
    const samples = q.n < 0 ? [...Array(n).keys()] : [q.n];
    return { shape: [samples.length, w, ...spatial], runs: samples.map((b, j) => [(b * c + q.c0) * s, j * w * s, w * s]) };
  };
  return {
    pieces,
    count: pieces.length,
    input: (i, p) => (i === 0 ? region(pieces[p]!, sx, xShape.slice(2)) : { shape: [pieces[p]!.c1 - pieces[p]!.c0], runs: [[pieces[p]!.c0, 0, pieces[p]!.c1 - pieces[p]!.c0]] }),
    output: (p) => region(pieces[p]!, sy, yShape.slice(2)),
    tiles: (i) => i === 0 || allSamples || n === 1,
  };
}

/** An op independent per (sample, channel) over x [N, C, ...] → y [N, C, ...ySpatial], split into
 * channel runs: `run([xs, ...params sliced], piece)` is the op's ordinary (differentiable) path. */
export function splitChannels(op: string, inputs: (Tensor | null)[], yShape: readonly number[], run: (parts: (Tensor | null)[], q: ChannelPiece) => Tensor, allSamples = false): Tensor {
  const x = inputs[0]!;
  const plan = channelPlan(op, x.shape, yShape, x.device.limits.maxBindingBytes, allSamples);
  return splitOp(op, inputs, yShape, plan, (parts, p) => run(parts, plan.pieces[p]!));
}

/** Runs of whole rows of x [..., K] → y [..., M]: inputs 0 (and any other input with `rowInputs`)
 * are split by rows; the rest are passed whole. */
export function rowPlan(op: string, xShape: readonly number[], yShape: readonly number[], limit: number, rowInputs: number[] = [0]): SplitPlan {
  const k = xShape.at(-1)!;
  const m = yShape.at(-1)!;
  const rows = numel(xShape.slice(0, -1));
  const perRow = Math.max(k, m) * 4;
  if (perRow > limit)
    throw new PulmoError(`${op}: one row of 'x' ${shapeStr(xShape)} → ${shapeStr(yShape)} (${perRow} bytes) does not fit the ${limit}-byte storage binding limit`);
  const step = Math.floor(limit / perRow);
  const count = Math.ceil(rows / step);
  const region = (p: number, w: number): Region => {
    const r0 = p * step;
    const r = Math.min(step, rows - r0);
    return { shape: [r, w], runs: [[r0 * w, 0, r * w]] };
  };
  return {
    count,
    input: (i, p) => (rowInputs.includes(i) ? region(p, k) : null),
    output: (p) => region(p, m),
    tiles: (i) => rowInputs.includes(i),
  };
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
 * with padding p + d0 - first*s, which is >= 0. A transposed slab gets zero rows at its end until
 * torch's output size (count-1)*s - 2*pad + dil*(k-1) + 1 reaches r, so the same slab also runs
 * through the public convTranspose op (whose first r output rows are the run). */
function slabRows(transposed: boolean, g: DepthGeometry, d0: number, r: number): { first: number; count: number; pad: number } {
  if (!transposed) return { first: d0 * g.s - g.p, count: (r - 1) * g.s + g.dil * (g.k - 1) + 1, pad: 0 };
  const first = Math.max(0, Math.floor((d0 + g.p - g.dil * (g.k - 1)) / g.s));
  const last = Math.max(first, Math.floor((d0 + r - 1 + g.p) / g.s));
  const pad = g.p + d0 - first * g.s;
  let count = last - first + 1;
  const outRows = (c: number) => (c - 1) * g.s - 2 * pad + g.dil * (g.k - 1) + 1;
  if (outRows(count) < r) count += Math.ceil((r - outRows(count)) / g.s);
  return { first, count, pad };
}

export interface SlabPiece {
  n: number;
  d0: number;
  r: number;
  /** depth padding the slab is convolved with */
  pad: number;
}

/** Depth slabs of a convolution x [N, cin, D, H, W] → y [N, cout, oD, oH, oW]: for each sample,
 * runs of output depth rows whose input slab and output rows fit a binding (the longest such run,
 * by bisection). Inputs: 0 is x (slabs), any other (weight, bias) is passed whole. */
export function convSlabPlan(op: string, transposed: boolean, xShape: readonly number[], outShape: readonly number[], g: DepthGeometry, limit: number): SplitPlan & { pieces: SlabPiece[] } {
  const [batch, cin, D, H, W] = xShape as [number, number, number, number, number];
  const [, cout, oD, oH, oW] = outShape as [number, number, number, number, number];
  const [plane, oPlane] = [H * W, oH * oW];
  // the most input rows a slab of the pieces [d0, d0 + r) reads, and the most output rows its
  // convolution produces (a transposed slab through the public op may give more than r)
  const fits = (r: number) => {
    let [inRows, outRows] = [0, 0];
    for (let d0 = 0; d0 < oD; d0 += r) {
      const rr = Math.min(r, oD - d0);
      const { count, pad } = slabRows(transposed, g, d0, rr);
      inRows = Math.max(inRows, count);
      outRows = Math.max(outRows, transposed ? (count - 1) * g.s - 2 * pad + g.dil * (g.k - 1) + 1 : rr);
    }
    return cin * inRows * plane * 4 <= limit && cout * outRows * oPlane * 4 <= limit;
  };
  if (!fits(1))
    throw new PulmoError(
      `${op}: one output depth row of 'x' ${shapeStr(xShape)} → ${shapeStr(outShape)} does not fit the ${limit}-byte storage binding limit`,
    );
  let [lo, hi] = [1, oD]; // a long run that fits, by bisection (lo always fits)
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  const rows = lo;
  const pieces: SlabPiece[] = [];
  for (let n = 0; n < batch; n++)
    for (let d0 = 0; d0 < oD; d0 += rows) {
      const r = Math.min(rows, oD - d0);
      pieces.push({ n, d0, r, pad: slabRows(transposed, g, d0, r).pad });
    }
  return {
    pieces,
    count: pieces.length,
    input: (i, p) => {
      if (i !== 0) return null;
      const { n, d0, r } = pieces[p]!;
      const { first, count } = slabRows(transposed, g, d0, r);
      const [from, to] = [Math.max(first, 0), Math.min(first + count, D)];
      const runs: [number, number, number][] = [];
      if (to > from) for (let c = 0; c < cin; c++) runs.push([((n * cin + c) * D + from) * plane, (c * count + from - first) * plane, (to - from) * plane]);
      return { shape: [1, cin, count, H, W], runs };
    },
    output: (p) => {
      const { n, d0, r } = pieces[p]!;
      const runs: [number, number, number][] = [];
      for (let c = 0; c < cout; c++) runs.push([((n * cout + c) * oD + d0) * oPlane, c * r * oPlane, r * oPlane]);
      return { shape: [1, cout, r, oH, oW], runs };
    },
    tiles: () => false,
  };
}

/** y [N, cout, oD, oH, oW] from x [N, cin, D, H, W] in depth slabs (forward only; the caller
 * records the backward with recordSplit over the same plan). `run(slab, outShape, padD)`
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
  const plan = convSlabPlan(op, transposed, x.shape, outShape, g, x.device.limits.maxBindingBytes);
  return splitForward(plan, [x], outShape, ([slab], p) => {
    const q = plan.pieces[p]!;
    return run(slab!, [1, outShape[1]!, q.r, outShape[3]!, outShape[4]!], q.pad);
  });
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

/** The gradient of a slice over the limit: dy placed at [start, start + dy.shape[axis]) along
 * `axis` of a zero tensor of `shape`, by contiguous buffer copies. */
export function padByCopies(dy: Tensor, shape: readonly number[], axis: number, start: number): Tensor {
  const y = Tensor.zeros(dy.device, shape);
  const inner = numel(shape.slice(axis + 1));
  const outer = numel(shape.slice(0, axis));
  const run = dy.shape[axis]! * inner;
  for (let o = 0; o < outer; o++)
    dy.device.copy(dy.buffer, dy.byteOffset + o * run * 4, y.buffer, y.byteOffset + (o * shape[axis]! * inner + start * inner) * 4, run * 4);
  return y;
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

/** What recordConvSplit needs of a convolution's geometry (conv.ts Geometry: spatial dims always
 * 3, D = 1 for 2D). */
export interface ConvSplitGeometry {
  groups: number;
  k: readonly number[];
  stride: readonly number[];
  pad: readonly number[];
  dil: readonly number[];
}

/** Records the backward of a convolution computed in depth slabs (conv.ts convForwardSplit): the
 * same slab plan, each slab recomputed by the public conv3d / convTranspose3d (batch 1, the
 * slab's depth padding) and back-propagated; input gradients are added where slabs overlap, the
 * weight and bias gradients sum over slabs. 2D runs as 3D over [N, C, H, W, 1]. */
export function recordConvSplit(op: string, transposed: boolean, y: Tensor, x: Tensor, weight: Tensor, bias: Tensor | null, g: ConvSplitGeometry): Tensor {
  if (!needsGrad(x, weight, bias)) return y;
  const is2d = x.rank === 4;
  const to5 = (v: readonly number[], fill: number) => (is2d ? [v[1]!, v[2]!, fill] : [...v]);
  const [k, stride, pad, dil] = [to5(g.k, 1), to5(g.stride, 1), to5(g.pad, 0), to5(g.dil, 1)];
  const x5 = is2d ? [...x.shape, 1] : [...x.shape];
  const y5 = is2d ? [...y.shape, 1] : [...y.shape];
  const depth = { k: k[0]!, s: stride[0]!, p: pad[0]!, dil: dil[0]! };
  const plan = convSlabPlan(op, transposed, x5, y5, depth, x.device.limits.maxBindingBytes);
  // torch's transposed output size is (i-1)*s - 2p + dil*(k-1) + outputPadding + 1: recover the
  // output padding of H and W from the output shape
  const outPad = [0, 1, 2].map((d) => (d === 0 || !transposed ? 0 : y5[d + 2]! - ((x5[d + 2]! - 1) * stride[d]! - 2 * pad[d]! + dil[d]! * (k[d]! - 1) + 1)));
  return recordSplit(op, y, [x, weight, bias], plan, ([slab, w, b], p) => {
    const q = plan.pieces[p]!;
    const w5 = is2d ? reshape(w!, [...w!.shape, 1]) : w!;
    const opts = { stride, padding: [q.pad, pad[1]!, pad[2]!], dilation: dil, groups: g.groups };
    const out = transposed ? convTranspose3d(slab!, w5, b, { ...opts, outputPadding: outPad }) : conv3d(slab!, w5, b, opts);
    return out.shape[2] === q.r ? out : slice(out, 2, 0, q.r);
  });
}

/** Row pieces of a row-wise op on x viewed as [rows, k] (k = `rowLength`) → y viewed as
 * [rows, m]: `run([xs [r, k], ...whole])` is the op's ordinary differentiable path giving
 * [r, m]; inputs after x (weights) are passed whole and must fit one binding. Returns `yShape`. */
export function splitRows(op: string, x: Tensor, rowLength: number, whole: (Tensor | null)[], yShape: readonly number[], run: (parts: (Tensor | null)[]) => Tensor): Tensor {
  const limit = x.device.limits.maxBindingBytes;
  for (const [i, t] of whole.entries())
    if (t && t.bytes > limit) throw unsplittable(op, `input ${i + 1}`, t, limit, "is passed whole to every row piece (only the rows of 'x' split)");
  const k = rowLength;
  const rows = x.size / k;
  const m = numel(yShape) / rows;
  const x2 = reshape(x, [rows, k]);
  const plan = rowPlan(op, [rows, k], [rows, m], limit);
  const y2 = splitOp(op, [x2, ...whole], [rows, m], plan, run);
  const y = reshape(y2, yShape);
  [x2, y2].forEach((t) => t.dispose());
  return y;
}

/** Multi-scale deformable attention over the limit, in pieces of (sample, query range): each
 * piece reads its sample's whole value [1, S, nH, Dh] (which must fit one binding; value
 * gradients add over the pieces), its queries' sampling locations and attention weights, and
 * writes its queries' output rows. `run([value, loc, attn])` is the ordinary op. */
export function splitDeformAttn(op: string, value: Tensor, loc: Tensor, attn: Tensor, run: (parts: (Tensor | null)[]) => Tensor): Tensor {
  const limit = value.device.limits.maxBindingBytes;
  const [N, S, nH, Dh] = value.shape as [number, number, number, number];
  const [, Lq, , nL, nP] = loc.shape as [number, number, number, number, number];
  const perSample = S * nH * Dh;
  if (perSample * 4 > limit) throw unsplittable(op, "value", [1, S, nH, Dh], limit, "one sample's value is read whole by every query (queries split, keys do not)");
  const samples = nH * nL * nP; // per query
  // per query: locations (3 per sample), the backward's 8 entry keys per sample, the output row
  const perQuery = Math.max(3 * samples, 8 * samples, nH * Dh) * 4;
  if (perQuery > limit) throw unsplittable(op, "sampling_locations", loc, limit, "one query's samples do not fit");
  const q = Math.max(1, Math.min(Lq, Math.floor(limit / perQuery)));
  const pieces: { n: number; q0: number; q1: number }[] = [];
  for (let n = 0; n < N; n++) for (let q0 = 0; q0 < Lq; q0 += q) pieces.push({ n, q0, q1: Math.min(Lq, q0 + q) });
  const rows = (p: number, per: number, tail: number[]): Region => {
    const { n, q0, q1 } = pieces[p]!;
    return { shape: [1, q1 - q0, ...tail], runs: [[(n * Lq + q0) * per, 0, (q1 - q0) * per]] };
  };
  const plan: SplitPlan = {
    count: pieces.length,
    input: (i, p) => {
      if (i === 0) return { shape: [1, S, nH, Dh], runs: [[pieces[p]!.n * perSample, 0, perSample]] };
      return i === 1 ? rows(p, samples * 3, [nH, nL, nP, 3]) : rows(p, samples, [nH, nL, nP]);
    },
    output: (p) => rows(p, nH * Dh, [nH * Dh]),
    tiles: (i) => i !== 0 || q >= Lq,
  };
  return splitOp(op, [value, loc, attn], [N, Lq, nH * Dh], plan, run);
}

/** x[..., a0:a1, ...] along `axis` as a region of a contiguous tensor of `shape`. */
function axisRegion(shape: readonly number[], axis: number, a0: number, a1: number): Region {
  const outer = numel(shape.slice(0, axis));
  const inner = numel(shape.slice(axis + 1));
  const [n, r] = [shape[axis]!, a1 - a0];
  const runs: [number, number, number][] = [];
  for (let o = 0; o < outer; o++) runs.push([(o * n + a0) * inner, o * r * inner, r * inner]);
  const s = [...shape];
  s[axis] = r;
  return { shape: s, runs };
}

/** A permutation (y.shape[i] = x.shape[dims[i]]) over the limit, in slabs along x's longest dim
 * (the same slab of y's matching dim): `run(xs)` is the ordinary permute of a slab. */
export function splitPermute(op: string, x: Tensor, dims: readonly number[], run: (parts: (Tensor | null)[]) => Tensor): Tensor {
  const limit = x.device.limits.maxBindingBytes;
  const ax = x.shape.indexOf(Math.max(...x.shape));
  const yShape = dims.map((d) => x.shape[d]!);
  const yAx = dims.indexOf(ax);
  const perIndex = (x.size / x.shape[ax]!) * 4;
  if (perIndex > limit) throw unsplittable(op, "x", x, limit, `one slab along its longest dim (${perIndex} bytes) does not fit`);
  const step = Math.floor(limit / perIndex);
  const starts: number[] = [];
  for (let a = 0; a < x.shape[ax]!; a += step) starts.push(a);
  const end = (p: number) => Math.min(x.shape[ax]!, starts[p]! + step);
  const plan: SplitPlan = {
    count: starts.length,
    input: (_, p) => axisRegion(x.shape, ax, starts[p]!, end(p)),
    output: (p) => axisRegion(yShape, yAx, starts[p]!, end(p)),
    tiles: () => true,
  };
  return splitOp(op, [x], yShape, plan, run);
}

/** A broadcasting binary op whose output is over the limit, in slabs along its longest dim:
 * operands that vary along that dim are sliced with it, operands broadcast over it are passed
 * whole. `run([ap, bp])` is the ordinary op. */
export function splitBroadcast(op: string, a: Tensor, b: Tensor, out: readonly number[], run: (parts: (Tensor | null)[]) => Tensor): Tensor {
  const limit = a.device.limits.maxBindingBytes;
  const ax = out.indexOf(Math.max(...out));
  const operands = [a, b];
  // the operand's own axis matching output axis ax, or -1 when it broadcasts over it
  const own = operands.map((t) => {
    const i = ax - (out.length - t.rank);
    return i >= 0 && t.shape[i] === out[ax] ? i : -1;
  });
  const perIndex = (numel(out) / out[ax]!) * 4;
  if (perIndex > limit) throw unsplittable(op, "output", out, limit, `one slab along dim ${ax} (${perIndex} bytes) does not fit`);
  operands.forEach((t, i) => {
    if (own[i]! < 0 && t.bytes > limit) throw unsplittable(op, i === 0 ? "a" : "b", t, limit, `is broadcast along dim ${ax} and read whole by every slab`);
  });
  const step = Math.floor(limit / perIndex);
  const starts: number[] = [];
  for (let s = 0; s < out[ax]!; s += step) starts.push(s);
  const end = (p: number) => Math.min(out[ax]!, starts[p]! + step);
  const plan: SplitPlan = {
    count: starts.length,
    input: (i, p) => (own[i]! < 0 ? null : axisRegion(operands[i]!.shape, own[i]!, starts[p]!, end(p))),
    output: (p) => axisRegion(out, ax, starts[p]!, end(p)),
    tiles: (i) => own[i]! >= 0,
  };
  return splitOp(op, [a, b], out, plan, run);
}

/** sum (or mean, `scale` 1/r) over the middle axis of x viewed as [outer, r, inner], giving
 * [outer, 1, inner] (reduce.ts reduceRun) over the limit. When one outer row [r, inner] fits,
 * runs of whole outer rows (independent outputs); otherwise runs of the reduced axis, each giving
 * partial sums of the whole output, which are added. `run(xs)` reduces a piece [k, r', inner]
 * over its axis 1 with the ordinary op (scaled by the full r for a mean). */
export function splitReduce(op: string, x: Tensor, outer: number, r: number, inner: number, run: (xs: Tensor) => Tensor): Tensor {
  const limit = x.device.limits.maxBindingBytes;
  const x3 = reshape(x, [outer, r, inner]);
  let y: Tensor;
  if (r * inner * 4 <= limit) {
    const plan = rowPlan(op, [outer, r * inner], [outer, inner], limit);
    y = splitOp(op, [x3], [outer, 1, inner], plan, ([xs]) => {
      const k = xs!.shape[0]!;
      return reshape(run(reshape(xs!, [k, r, inner])), [k, inner]);
    });
  } else {
    if (outer * inner * 4 > limit)
      throw unsplittable(op, "x", x, limit, `neither one row [${r}, ${inner}] nor the output [${outer}, ${inner}] fits`);
    const step = Math.max(1, Math.floor(limit / (outer * inner * 4)));
    const starts: number[] = [];
    for (let a = 0; a < r; a += step) starts.push(a);
    const plan: SplitPlan = {
      count: starts.length,
      input: (_, p) => axisRegion([outer, r, inner], 1, starts[p]!, Math.min(r, starts[p]! + step)),
      output: () => ({ shape: [outer, 1, inner], runs: [[0, 0, outer * inner]] }),
      tiles: () => true,
      outputAdds: true,
    };
    y = splitOp(op, [x3], [outer, 1, inner], plan, ([xs]) => run(xs!));
  }
  x3.dispose();
  return y;
}

import { PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, expectRank, groups1d, label } from "../launch.ts";
import { overBindingLimit, splitChannels } from "./split.ts";
import { reshape as reshapeOp } from "./layout.ts";

/** A per-spatial-dim setting: one number for every dim, or one per dim. */
type SpatialArg = number | readonly number[];

export interface MaxPoolOptions {
  kernel: SpatialArg;
  /** default: the kernel (PyTorch's stride=None) */
  stride?: SpatialArg | null;
  /** implicit -inf padding on both sides; at most half the kernel */
  padding?: SpatialArg;
  dilation?: SpatialArg;
  /** not supported: output sizes are floored; passing true throws */
  ceilMode?: boolean;
}

/** Expands a per-dim argument to `dims` integers >= min, or throws naming it. */
function spatialArg(op: string, name: string, v: SpatialArg, dims: number, min: number): number[] {
  const a = typeof v === "number" ? new Array<number>(dims).fill(v) : [...v];
  if (a.length !== dims || a.some((d) => !Number.isInteger(d) || d < min))
    throw new PulmoError(
      `${op}: '${name}' must be an integer >= ${min} or ${dims} of them, got ${Array.isArray(v) ? shapeStr(v) : String(v)}`,
    );
  return a;
}

/** Left-pads a spatial tuple to the kernels' three dims (D, H, W). */
const to3 = (a: number[], fill: number) => [...new Array<number>(3 - a.length).fill(fill), ...a];

/** main_q's and scatter_q's launch: about this many output quads per invocation (paired A/B at
 * 1×32×64³: 4 and 8 alike, 2 and 16 slower; docs/ops/pool.md). */
const QUADS_PER_LANE = 8;

function maxPool(op: string, x: Tensor, dims: 2 | 3, opts: MaxPoolOptions): Tensor {
  expectFloat(op, "x", x);
  expectRank(op, "x", x, [dims + 1, dims + 2]);
  if (!opts || opts.kernel === undefined) throw new PulmoError(`${op}: 'kernel' is required`);
  if (opts.ceilMode) throw new PulmoError(`${op}: ceilMode=true is not supported (output sizes are floored)`);
  const k = spatialArg(op, "kernel", opts.kernel, dims, 1);
  const s = opts.stride == null || (Array.isArray(opts.stride) && opts.stride.length === 0) ? k : spatialArg(op, "stride", opts.stride, dims, 1);
  const pad = spatialArg(op, "padding", opts.padding ?? 0, dims, 0);
  const dil = spatialArg(op, "dilation", opts.dilation ?? 1, dims, 1);
  pad.forEach((p, d) => {
    if (p > Math.floor(k[d]! / 2))
      throw new PulmoError(`${op}: padding ${shapeStr(pad)} must be at most half the kernel ${shapeStr(k)}`);
  });
  const lead = x.shape.slice(0, -dims);
  const spatial = x.shape.slice(-dims);
  if (x.shape.slice(x.rank === dims + 2 ? 1 : 0).some((d) => d === 0))
    throw new PulmoError(`${op}: 'x' ${shapeStr(x.shape)} has an empty channel or spatial dim`);
  const out = spatial.map((n, d) => Math.floor((n + 2 * pad[d]! - dil[d]! * (k[d]! - 1) - 1) / s[d]!) + 1);
  if (out.some((o) => o < 1))
    throw new PulmoError(
      `${op}: output size ${shapeStr(out)} is too small for 'x' ${shapeStr(x.shape)} with kernel ${shapeStr(k)}, ` +
        `stride ${shapeStr(s)}, padding ${shapeStr(pad)}, dilation ${shapeStr(dil)}`,
    );
  const device = x.device;
  const yShape = [...lead, ...out];
  const geometry = {
    ind: to3(spatial, 1),
    outd: to3(out, 1),
    k: to3(k, 1),
    s: to3(s, 1),
    pad: to3(pad, 0),
    dil: to3(dil, 1),
  };
  if (overBindingLimit(device, x.bytes, numel(yShape) * 4)) {
    // per (sample, channel range); an unbatched x is one sample
    const xb = x.rank === dims + 1 ? reshapeOp(x, [1, ...x.shape]) : x;
    const yb = splitChannels(op, [xb], [...xb.shape.slice(0, 2), ...out], ([xs]) => maxPool(op, xs!, dims, opts));
    if (xb === x) return yb;
    const y = reshapeOp(yb, yShape);
    [xb, yb].forEach((t) => t.dispose());
    return y;
  }
  const y = Tensor.empty(device, yShape);
  const idx = Tensor.empty(device, yShape, "u32", "argmax");
  const g = geometry;
  // KD×2×2 windows at stride KD×2×2, no padding or dilation, rows a multiple of 8 long: whole
  // output quads from aligned vec4s (main_q); W windows of 2 at stride 2 over rows a multiple of 4
  // long: each aligned vec4 holds two windows (main_w2); anything else one output per invocation
  const quads =
    g.k[1] === 2 && g.s[1] === 2 && g.k[2] === 2 && g.s[2] === 2 && g.s[0] === g.k[0] &&
    g.pad.every((v) => v === 0) && g.dil[1] === 1 && g.dil[2] === 1 && (g.dil[0] === 1 || g.k[0] === 1) &&
    g.ind[2]! % 8 === 0;
  const w2 = g.k[2] === 2 && g.s[2] === 2 && g.dil[2] === 1 && g.pad[2] === 0 && g.ind[2]! % 4 === 0;
  if (quads) {
    const n4 = y.size / 4;
    device.dispatch({
      kernel: "pool/max_pool",
      entry: "main_q",
      constants: { KD: g.k[0]! },
      bindings: { src4: x, idx4: idx, dst4: y },
      uniforms: { ...geometry, n: n4 },
      workgroups: Math.ceil(n4 / (64 * QUADS_PER_LANE)),
      label: label(op, x),
    });
  } else {
    const threads = w2 ? y.size / 2 : y.size;
    device.dispatch({
      kernel: "pool/max_pool",
      entry: w2 ? "main_w2" : "main",
      bindings: w2 ? { src4: x, idx, dst: y } : { src: x, idx, dst: y },
      uniforms: { ...geometry, n: threads },
      workgroups: groups1d(threads),
      label: label(op, x),
    });
  }
  const xShape = x.shape;
  // no input in two windows: scatter dy into the argmaxes of a zero-filled dx
  const disjoint = geometry.s.every((st, d) => st >= geometry.dil[d]! * (geometry.k[d]! - 1) + 1);
  const result = record(op, y, [x], [idx], (dy, [argmax]) => {
    if (quads) {
      // whole windows written from the quads; a floored D/H tail is in no window and stays 0
      const tail = g.ind[0] !== g.outd[0]! * g.k[0]! || g.ind[1] !== 2 * g.outd[1]!;
      const dx = tail ? Tensor.zeros(device, xShape) : Tensor.empty(device, xShape);
      const n4 = dy.size / 4;
      device.dispatch({
        kernel: "pool/max_pool",
        entry: "scatter_q",
        constants: { KD: g.k[0]! },
        bindings: { src4: dy, idx4: argmax!, dst4: dx },
        uniforms: { ...geometry, n: n4 },
        workgroups: Math.ceil(n4 / (64 * QUADS_PER_LANE)),
        label: label(`${op}_backward`, dy),
      });
      return [dx];
    }
    const dx = disjoint ? Tensor.zeros(device, xShape) : Tensor.empty(device, xShape);
    device.dispatch({
      kernel: "pool/max_pool",
      entry: disjoint ? "scatter" : "backward",
      bindings: { src: dy, idx: argmax!, dst: dx },
      uniforms: { ...geometry, n: disjoint ? dy.size : numel(xShape) },
      workgroups: groups1d(disjoint ? dy.size : dx.size),
      label: label(`${op}_backward`, dy),
    });
    return [dx];
  });
  idx.dispose(); // the tape retained its own handle if a backward needs it
  return result;
}

/** F.max_pool3d: x [N, C, D, H, W] or [C, D, H, W]; -inf padding, floored output size. */
export function maxPool3d(x: Tensor, opts: MaxPoolOptions): Tensor {
  return maxPool("max_pool3d", x, 3, opts);
}

/** F.max_pool2d: x [N, C, H, W] or [C, H, W]; -inf padding, floored output size. */
export function maxPool2d(x: Tensor, opts: MaxPoolOptions): Tensor {
  return maxPool("max_pool2d", x, 2, opts);
}

// Winograd F(2×2, 3×3) convolution (Lavin & Gray 2015) for conv2d with a 3×3 kernel, stride 1,
// dilation 1, groups 1, f32, padding 0 or 1 per dim: 16 multiplies per 2×2 output tile instead of
// 36, and those 16 are one batched GEMM (the register-tiled matmul.wgsl) instead of the direct
// gather kernel. Four steps, each its own differentiable op (kernels/conv/winograd2d.wgsl):
//   U = filterTransform(weight)   [16, Cin, Cout]    adjoint: Gᵀ dU G
//   V = inputTransform(x)         [16, P, Cin]       adjoint: gather of B dV Bᵀ over overlapping tiles
//   M = tileGemm(V, U)            [16, P, Cout]      batched GEMM (matmul.wgsl), backward below
//   y = outputTransform(M, bias)  [N, Cout, OH, OW]  adjoint: A dy Aᵀ; grad bias = sum of dy
// P = N * ceil(OH / 2) * ceil(OW / 2) tiles. The transforms are linear, so each backward is the
// transposed transform of the incoming gradient and saves nothing; autograd through the chain
// yields dx, dw and db. (Deriving dx as a Winograd conv of dy with the flipped weight would need
// its own padding 2 - pad: more cases than the adjoint chain, which reuses the forward's GEMM
// shapes, transposed.)
// Numerics: the transforms are exact-ish sums of ±1, ±½ terms, so the result matches the direct
// conv within a few ulps of the summed magnitudes (test/ops/winograd.test.ts).
import { PulmoError, Tensor, shapeStr, type Device } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, expectRank, expectSameDevice, groups1d, label } from "../launch.ts";
import { gemm } from "./matmul.ts";
import { sumToShape } from "./elementwise.ts";
import { permute } from "./layout.ts";

/** The smallest min(Cin, Cout) at which the Winograd path beats conv_direct on lavapipe
 * (measured, /work/notes/hw.md → bench/NOTES.md); below it the transform traffic and the
 * GEMM's mostly empty tiles cost more than the 2.25× fewer multiplies save. */
export const WINOGRAD_MIN_CHANNELS = 32;

interface Geo {
  /** output tile MT (2: F(2×2,3×3), 4: F(4×4,3×3)); the input tile is AL = MT + 2 */
  mt: 2 | 4;
  /** AL², the transformed tile's entries: the GEMM batch */
  e: number;
  cin: number;
  cout: number;
  tiles: number;
  th: number;
  tw: number;
  ih: number;
  iw: number;
  oh: number;
  ow: number;
  pad_h: number;
  pad_w: number;
}

const KERNEL = "conv/winograd2d";

function geometry(xShape: readonly number[], cout: number, padding: readonly [number, number], mt: 2 | 4): Geo {
  const [n, cin, ih, iw] = xShape as [number, number, number, number];
  const oh = ih + 2 * padding[0] - 2;
  const ow = iw + 2 * padding[1] - 2;
  const th = Math.ceil(oh / mt);
  const tw = Math.ceil(ow / mt);
  return { mt, e: (mt + 2) ** 2, cin, cout, tiles: n * th * tw, th, tw, ih, iw, oh, ow, pad_h: padding[0], pad_w: padding[1] };
}

/** Bytes of the largest intermediate (U, V or M), each one storage binding. */
function largestBytes(g: Geo): number {
  return g.e * 4 * Math.max(g.cin * g.cout, g.tiles * g.cin, g.tiles * g.cout);
}

/** One transform launch; `bias` only for output_fwd (bound to src there when absent). */
function launch(device: Device, entry: string, src: Tensor, dst: Tensor, g: Geo, count: number, bias: Tensor | null = null): void {
  device.dispatch({
    kernel: KERNEL,
    entry,
    constants: { MT: g.mt },
    bindings: entry === "output_fwd" ? { src, bias: bias ?? src, dst } : { src, dst },
    uniforms: { count, cin: g.cin, cout: g.cout, tiles: g.tiles, th: g.th, tw: g.tw, ih: g.ih, iw: g.iw, oh: g.oh, ow: g.ow, pad_h: g.pad_h, pad_w: g.pad_w, use_bias: bias ? 1 : 0 },
    workgroups: groups1d(count),
    label: label(`winograd ${entry}`, src),
  });
}

/** U [16, Cin, Cout] = G g Gᵀ of every (oc, ic) filter; backward Gᵀ dU G. */
function filterTransform(w: Tensor, g: Geo): Tensor {
  const device = w.device;
  const u = Tensor.empty(device, [g.e, g.cin, g.cout], "f32", "winograd U");
  launch(device, "filter_fwd", w, u, g, g.cin * g.cout);
  const wShape = [...w.shape];
  return record("winograd_filter", u, [w], [], (du) => {
    const dw = Tensor.empty(device, wShape, "f32", "winograd grad weight");
    launch(device, "filter_adj", du, dw, g, g.cin * g.cout);
    return [dw];
  });
}

/** V [16, P, Cin] = Bᵀ d B of every 4×4 input tile (stride 2); backward: per input element, the
 * sum over the tiles holding it of B dV Bᵀ. */
function inputTransform(x: Tensor, g: Geo): Tensor {
  const device = x.device;
  const v = Tensor.empty(device, [g.e, g.tiles, g.cin], "f32", "winograd V");
  launch(device, "input_fwd", x, v, g, g.tiles * g.cin);
  const xShape = [...x.shape];
  return record("winograd_input", v, [x], [], (dv) => {
    const dx = Tensor.empty(device, xShape, "f32", "winograd grad x");
    launch(device, "input_adj", dv, dx, g, dx.size);
    return [dx];
  });
}

/** M [16, P, Cout] = V @ U per e. Its own node rather than matmul()'s: matmul's dA = dY @ Bᵀ
 * reads B transposed in place (TRANS_B), which on lavapipe is ~2.5× slower than the plain
 * layout (per-lane reads K apart; /work/notes/hw.md), so dV = dM @ Uᵀ takes a materialised
 * Uᵀ [16, Cout, Cin] instead (a permute, 16·Cin·Cout floats); dU = Vᵀ @ dM reads V transposed
 * (TRANS_A: workgroup-uniform reads, as fast as the plain layout). */
function tileGemm(v: Tensor, u: Tensor): Tensor {
  const m = gemm("winograd_gemm", v, false, u, false);
  const needV = v.requiresGrad;
  const needU = u.requiresGrad;
  const save = [...(needU ? [v] : []), ...(needV ? [u] : [])];
  return record("winograd_gemm", m, [v, u], save, (dm, saved) => {
    let dv: Tensor | null = null;
    let du: Tensor | null = null;
    if (needV) {
      const ut = permute(saved[needU ? 1 : 0]!, [0, 2, 1]);
      dv = gemm("winograd_gemm_grad_v", dm, false, ut, false);
      ut.dispose();
    }
    if (needU) du = gemm("winograd_gemm_grad_u", saved[0]!, true, dm, false);
    return [dv, du];
  });
}

/** y [N, Cout, OH, OW] = Aᵀ m A (+ bias), cropped at odd sizes; backward A dy Aᵀ and the sum of
 * dy per channel. */
function outputTransform(m: Tensor, bias: Tensor | null, n: number, g: Geo): Tensor {
  const device = m.device;
  const y = Tensor.empty(device, [n, g.cout, g.oh, g.ow], "f32", "winograd y");
  launch(device, "output_fwd", m, y, g, g.tiles * g.cout, bias);
  const needB = !!bias?.requiresGrad;
  const needM = m.requiresGrad;
  return record("winograd_output", y, [m, bias], [], (dy) => {
    let dm: Tensor | null = null;
    if (needM) {
      dm = Tensor.empty(device, [g.e, g.tiles, g.cout], "f32", "winograd grad M");
      launch(device, "output_adj", dy, dm, g, g.tiles * g.cout);
    }
    let db: Tensor | null = null;
    if (needB) {
      const s = sumToShape(dy, [1, g.cout, 1, 1]);
      db = s.reshape([g.cout]);
      s.dispose();
    }
    return [dm, db];
  });
}

/** The output tile where none is asked for: F(4×4,3×3) (36 products per 16 outputs instead of
 * 64) where the output is at least 4×4, else F(2×2,3×3). */
export function defaultTile(oh: number, ow: number): 2 | 4 {
  return Math.min(oh, ow) >= 4 ? 4 : 2;
}

/** Padding given as one number or two. */
const pad2 = (padding: number | readonly number[] | undefined): [number, number] | null => {
  const p = padding === undefined ? [0] : typeof padding === "number" ? [padding] : [...padding];
  const v = p.length === 1 ? [p[0]!, p[0]!] : p;
  return v.length === 2 ? [v[0]!, v[1]!] : null;
};
const allOnes = (v: number | readonly number[] | undefined) => v === undefined || (typeof v === "number" ? v === 1 : v.every((d) => d === 1));

/** Whether conv2d(x, weight, bias, opts) can take winogradConv2d (the geometry it supports and
 * each intermediate within one storage binding) and should (min(Cin, Cout) >=
 * WINOGRAD_MIN_CHANNELS, below which conv_direct is faster). */
export function winogradEligible(
  x: Tensor,
  weight: Tensor,
  opts: { stride?: number | number[]; padding?: number | number[]; dilation?: number | number[]; groups?: number } = {},
): boolean {
  if (x.dtype !== "f32" || weight.dtype !== "f32" || x.rank !== 4 || weight.rank !== 4) return false;
  if ((opts.groups ?? 1) !== 1 || !allOnes(opts.stride) || !allOnes(opts.dilation)) return false;
  const [cout, cin, kh, kw] = weight.shape as [number, number, number, number];
  if (kh !== 3 || kw !== 3 || x.shape[1] !== cin) return false;
  const pad = pad2(opts.padding);
  if (!pad || pad.some((p) => p !== 0 && p !== 1)) return false;
  if (x.shape[2]! + 2 * pad[0] < 3 || x.shape[3]! + 2 * pad[1] < 3) return false;
  if (Math.min(cin, cout) < WINOGRAD_MIN_CHANNELS) return false;
  const g = geometry(x.shape, cout, pad, 2);
  return largestBytes(g) <= x.device.limits.maxBindingBytes && x.bytes <= x.device.limits.maxBindingBytes;
}

/**
 * conv2d(x, weight, bias, { padding }) by Winograd F(2×2, 3×3): x [N, Cin, H, W] f32, weight
 * [Cout, Cin, 3, 3], bias [Cout] or null, padding 0 or 1 per dim (stride 1, dilation 1,
 * groups 1). Differentiable in x, weight and bias. Any channel count works; winogradEligible
 * says where it pays.
 */
export function winogradConv2d(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, padding: [number, number], tile?: 2 | 4): Tensor {
  const op = "winograd_conv2d";
  expectFloat(op, "x", x);
  expectFloat(op, "weight", weight);
  if (bias) expectFloat(op, "bias", bias);
  for (const [name, t] of [["x", x], ["weight", weight], ["bias", bias]] as const)
    if (t && t.dtype !== "f32") throw new PulmoError(`${op}: '${name}' must be f32, got ${t.dtype}`);
  expectSameDevice(op, x, weight, bias);
  expectRank(op, "x", x, 4);
  expectRank(op, "weight", weight, 4);
  const [n, cin, ih, iw] = x.shape as [number, number, number, number];
  const [cout, wcin, kh, kw] = weight.shape as [number, number, number, number];
  if (kh !== 3 || kw !== 3 || wcin !== cin)
    throw new PulmoError(`${op}: 'weight' must be [Cout, ${cin}, 3, 3] for 'x' ${shapeStr(x.shape)}, got ${shapeStr(weight.shape)}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== cout))
    throw new PulmoError(`${op}: 'bias' must have shape [${cout}], got ${shapeStr(bias.shape)}`);
  if (padding.length !== 2 || padding.some((p) => p !== 0 && p !== 1))
    throw new PulmoError(`${op}: 'padding' must be 0 or 1 per dim, got ${JSON.stringify(padding)}`);
  if (ih + 2 * padding[0] < 3 || iw + 2 * padding[1] < 3)
    throw new PulmoError(`${op}: 'x' ${shapeStr(x.shape)} padded by ${shapeStr(padding)} is smaller than the 3×3 kernel`);
  if (tile !== undefined && tile !== 2 && tile !== 4) throw new PulmoError(`${op}: 'tile' must be 2 or 4, got ${tile}`);
  const g = geometry(x.shape, cout, padding, tile ?? defaultTile(ih + 2 * padding[0] - 2, iw + 2 * padding[1] - 2));
  const limit = x.device.limits.maxBindingBytes;
  if (largestBytes(g) > limit || x.bytes > limit)
    throw new PulmoError(`${op}: an intermediate of ${shapeStr(x.shape)} → ${cout} channels exceeds the ${limit}-byte storage binding limit; use conv2d`);
  if (n === 0 || cin === 0 || cout === 0) throw new PulmoError(`${op}: empty 'x' ${shapeStr(x.shape)} or 'weight' ${shapeStr(weight.shape)}`);
  const u = filterTransform(weight, g);
  const v = inputTransform(x, g);
  const m = tileGemm(v, u);
  u.dispose();
  v.dispose();
  const y = outputTransform(m, bias ?? null, n, g);
  m.dispose();
  return y;
}

// Winograd convolution (Lavin & Gray 2015) for conv2d with a 3×3 kernel, stride 1, dilation 1,
// groups 1, f32, padding 0 or 1 per dim. F(MT×MT, 3×3) turns each MT×MT output tile into AL² =
// (MT + 2)² products of transformed tiles instead of 9·MT², and those products are one batched
// GEMM (the register-tiled matmul.wgsl) instead of the direct gather kernel:
//   MT = 2: 16 products per 4 outputs (2.25× fewer multiplies), MT = 4: 36 per 16 (4×).
// Steps (kernels/conv/winograd2d.wgsl, override MT):
//   U = filterTransform(weight)   [AL², Cin, Cout]     G g Gᵀ
//   V = inputTransform(x)         [AL², P, Cin]        Bᵀ d B, P = N·ceil(OH/MT)·ceil(OW/MT) tiles
//   M = V @ U                     [AL², P, Cout]       gemm, batched over the AL² entries
//   y = outputTransform(M, bias)  [N, Cout, OH, OW]    Aᵀ m A (+ bias), cropped at the last tile
// One recorded node; its backward is the adjoint chain (backwardChain), by default with MT = 2
// whatever the forward used: the gradients are the same exact quantities, and F(2×2)'s backward
// GEMMs are the faster ones on lavapipe (F(4×4)'s dU has K = P, 4× shorter; /work/notes/hw.md).
// Numerics: F(2×2) transforms are ±1, ±½ sums (a few ulps); F(4×4)'s constants reach 8 and 1/24,
// ~4× the direct conv's rounding error, growing like sqrt(Cin) (rel_l2 4.7e-6 at Cin 512), so the
// default takes F(4×4) only up to WINOGRAD_F4_MAX_CIN (test/ops/winograd.test.ts runs every
// forward/backward tile pairing against a float64 reference).
import { PulmoError, Tensor, shapeStr, type Device } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, expectRank, expectSameDevice, groups1d, label } from "../launch.ts";
import { gemm } from "./matmul.ts";
import { sumToShape } from "./elementwise.ts";

/** Where the Winograd path beats conv_direct on lavapipe (paired A/B, /work/notes/hw.md →
 * bench/NOTES.md): Cin·Cout >= WINOGRAD_MIN_CHANNEL_PRODUCT and min(Cin, Cout) >=
 * WINOGRAD_MIN_CHANNELS. Measured at 32² unless noted (forward / forward+backward):
 * 32→32 0.4× / 0.7×, 64→64 0.5× / 1.25× (64²: 1.3× / 1.1×), 128→128 2.5× / 2.0×,
 * 64→256 16² 1.8× / 4.1×, 512→1024 2.6× / 2.05× (the ConvLSTM gate at the bench size). Below it the ~8 dispatches' fixed cost and
 * the GEMM's mostly empty register tiles outweigh the fewer multiplies. */
export const WINOGRAD_MIN_CHANNELS = 64;
export const WINOGRAD_MIN_CHANNEL_PRODUCT = 128 * 128;

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

/** U [AL², Cin, Cout] = G g Gᵀ of every (oc, ic) filter, or (transposed) Uᵀ [AL², Cout, Cin]. */
function filterTransform(w: Tensor, g: Geo, transposed = false): Tensor {
  const shape = transposed ? [g.e, g.cout, g.cin] : [g.e, g.cin, g.cout];
  const u = Tensor.empty(w.device, shape, "f32", transposed ? "winograd Uᵀ" : "winograd U");
  launch(w.device, transposed ? "filter_fwd_t" : "filter_fwd", w, u, g, g.cin * g.cout);
  return u;
}

/** V [AL², P, Cin] = Bᵀ d B of every AL×AL input tile (stride MT). */
function inputTransform(x: Tensor, g: Geo): Tensor {
  const v = Tensor.empty(x.device, [g.e, g.tiles, g.cin], "f32", "winograd V");
  launch(x.device, "input_fwd", x, v, g, g.tiles * g.cin);
  return v;
}

/** y [N, Cout, OH, OW] = Aᵀ m A (+ bias) per tile, cropped at the last tile. */
function outputTransform(m: Tensor, bias: Tensor | null, n: number, g: Geo): Tensor {
  const y = Tensor.empty(m.device, [n, g.cout, g.oh, g.ow], "f32", "winograd y");
  launch(m.device, "output_fwd", m, y, g, g.tiles * g.cout, bias);
  return y;
}

/** The gradients of the conv by the adjoint chain of tile g.mt (any tile gives the same
 * gradients; F(2×2) is the faster backward on lavapipe, /work/notes/hw.md):
 *   dM = A dy Aᵀ;  dV = dM @ Uᵀ (Uᵀ written directly by filter_fwd_t: matmul's in-place TRANS_B
 *   read is ~2.4× slower there);  dx = the gather of B dV Bᵀ;
 *   dU = Vᵀ @ dM (TRANS_A reads are workgroup-uniform, as fast as the plain layout);
 *   dw = Gᵀ dU G;  db = sum of dy. U and V are recomputed from w and x (cheap next to the GEMMs). */
function backwardChain(dy: Tensor, x: Tensor | null, w: Tensor | null, needB: boolean, xShape: number[], wShape: number[], g: Geo): (Tensor | null)[] {
  const device = dy.device;
  let dx: Tensor | null = null;
  let dw: Tensor | null = null;
  let db: Tensor | null = null;
  if (w || x) {
    const dm = Tensor.empty(device, [g.e, g.tiles, g.cout], "f32", "winograd grad M");
    launch(device, "output_adj", dy, dm, g, g.tiles * g.cout);
    if (w) {
      const ut = filterTransform(w, g, true);
      const dv = gemm("winograd_grad_v", dm, false, ut, false);
      ut.dispose();
      dx = Tensor.empty(device, xShape, "f32", "winograd grad x");
      launch(device, "input_adj", dv, dx, g, dx.size);
      dv.dispose();
    }
    if (x) {
      const v = inputTransform(x, g);
      const du = gemm("winograd_grad_u", v, true, dm, false);
      v.dispose();
      dw = Tensor.empty(device, wShape, "f32", "winograd grad weight");
      launch(device, "filter_adj", du, dw, g, g.cin * g.cout);
      du.dispose();
    }
    dm.dispose();
  }
  if (needB) {
    const s = sumToShape(dy, [1, g.cout, 1, 1]);
    db = s.reshape([g.cout]);
    s.dispose();
  }
  return [dx, dw, db];
}

/** The largest Cin the default picks F(4×4) for: its forward error grows like sqrt(Cin) at ~4×
 * the direct conv's (uniform zero-mean data, vs float64: rel_l2 4.7e-6 at Cin 512, 9.8e-6 at
 * 2048, direct 1.2e-6 / 2.3e-6; F(2×2) 0.7e-6 / 1.5e-6), so above 512 it would come within 2× of
 * the conv tolerance (rel_l2 1e-5). */
export const WINOGRAD_F4_MAX_CIN = 512;

/** The forward tile where none is asked for: F(4×4,3×3) (36 products per 16 outputs instead of
 * 64) where the output is at least 4×4 and Cin <= WINOGRAD_F4_MAX_CIN, else F(2×2,3×3). */
export function defaultTile(oh: number, ow: number, cin: number): 2 | 4 {
  return Math.min(oh, ow) >= 4 && cin <= WINOGRAD_F4_MAX_CIN ? 4 : 2;
}

/** Padding given as one number or two. */
const pad2 = (padding: number | readonly number[] | undefined): [number, number] | null => {
  const p = padding === undefined ? [0] : typeof padding === "number" ? [padding] : [...padding];
  const v = p.length === 1 ? [p[0]!, p[0]!] : p;
  return v.length === 2 ? [v[0]!, v[1]!] : null;
};
const allOnes = (v: number | readonly number[] | undefined) => v === undefined || (typeof v === "number" ? v === 1 : v.every((d) => d === 1));

/** Whether conv2d(x, weight, bias, opts) can take winogradConv2d (the geometry it supports and
 * each intermediate within one storage binding) and should (enough channels, see
 * WINOGRAD_MIN_CHANNELS; below that conv_direct is faster). */
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
  if (Math.min(cin, cout) < WINOGRAD_MIN_CHANNELS || cin * cout < WINOGRAD_MIN_CHANNEL_PRODUCT) return false;
  const out = [x.shape[2]! + 2 * pad[0] - 2, x.shape[3]! + 2 * pad[1] - 2] as const;
  const bytes = Math.max(largestBytes(geometry(x.shape, cout, pad, 2)), largestBytes(geometry(x.shape, cout, pad, defaultTile(out[0], out[1], cin))));
  return bytes <= x.device.limits.maxBindingBytes && x.bytes <= x.device.limits.maxBindingBytes;
}

/**
 * conv2d(x, weight, bias, { padding }) by Winograd F(MT×MT, 3×3): x [N, Cin, H, W] f32, weight
 * [Cout, Cin, 3, 3], bias [Cout] or null, padding 0 or 1 per dim (stride 1, dilation 1,
 * groups 1). Differentiable in x, weight and bias. `tile` is the forward's MT (default
 * defaultTile()), `backwardTile` the backward's (default 2); every pairing gives the same
 * results within the conv tolerances. Any channel count works; winogradEligible says where it pays.
 */
export function winogradConv2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  padding: [number, number],
  tile?: 2 | 4,
  backwardTile?: 2 | 4,
): Tensor {
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
  for (const [name, t] of [["tile", tile], ["backwardTile", backwardTile]] as const)
    if (t !== undefined && t !== 2 && t !== 4) throw new PulmoError(`${op}: '${name}' must be 2 or 4, got ${t}`);
  const g = geometry(x.shape, cout, padding, tile ?? defaultTile(ih + 2 * padding[0] - 2, iw + 2 * padding[1] - 2, cin));
  const gb = geometry(x.shape, cout, padding, backwardTile ?? 2);
  const limit = x.device.limits.maxBindingBytes;
  if (Math.max(largestBytes(g), largestBytes(gb)) > limit || x.bytes > limit)
    throw new PulmoError(`${op}: an intermediate of ${shapeStr(x.shape)} → ${cout} channels exceeds the ${limit}-byte storage binding limit; use conv2d`);
  if (n === 0 || cin === 0 || cout === 0) throw new PulmoError(`${op}: empty 'x' ${shapeStr(x.shape)} or 'weight' ${shapeStr(weight.shape)}`);
  const u = filterTransform(weight, g);
  const v = inputTransform(x, g);
  const m = gemm(op, v, false, u, false);
  u.dispose();
  v.dispose();
  const y = outputTransform(m, bias ?? null, n, g);
  m.dispose();
  const [needX, needW, needB] = [x.requiresGrad, weight.requiresGrad, !!bias?.requiresGrad];
  const [xShape, wShape] = [[...x.shape], [...weight.shape]];
  // dx reads the weight, dw reads x: save only what the needed gradients read
  const save = [...(needW ? [x] : []), ...(needX ? [weight] : [])];
  return record(op, y, [x, weight, bias], save, (dy, saved) =>
    backwardChain(dy, needW ? saved[0]! : null, needX ? saved[needW ? 1 : 0]! : null, needB, xShape, wShape, gb),
  );
}

// Convolutions (PyTorch conv2d/conv3d, conv_transpose2d/3d) on NC(D)HW tensors. 2D runs as 3D
// with D = 1, so these kernels serve all four ops and their backward passes:
//   kernels/conv/conv_direct.wgsl      conv forward, conv-transpose grad input, stride-1 conv grad input
//   kernels/conv/conv_direct_sg.wgsl   its W-window loop with subgroup-spread weight reads (same uses)
//   kernels/conv/conv_flip.wgsl        the flipped weight for that stride-1 conv grad input
//   kernels/conv/conv_transposed.wgsl  conv-transpose forward, strided conv grad input (gather, no atomics)
//   kernels/conv/conv_grad_weight.wgsl weight gradient of both, partial sums over chunks
//   kernels/conv/conv_grad_weight_sg.wgsl  the same with subgroup-spread A reads (subgroups >= 8)
//   kernels/conv/conv_reduce.wgsl      bias-gradient partials and the chunk reduction
// and eligible 3×3 stride-1 conv2d layers (winogradEligible) go to winograd.ts instead.
// f16: conv2d/conv3d and conv_transpose2d/3d forward also take f16 x, weight and bias (all three
// f16, e.g. through cast()), on a device with 'shader-f16': the same two gather kernels in their
// "f16" variant (f16 loads and stores, f32 accumulation: src/runtime/kernels.ts), output f16.
// That path is forward-only (no gradient is recorded; an input that needs one is refused) and
// does not split over the storage-binding limit.
import { PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { winogradConv2d, winogradEligible } from "./winograd.ts";
import { kernelName, requireFeature } from "../../runtime/kernels.ts";
import { needsGrad, record } from "../tape.ts";
import { expectFloat, expectRank, expectSameDevice, groups1d, label, spreadsOverSubgroup } from "../launch.ts";
import { convDepthSlabs, recordConvSplit } from "./split.ts";
import { ksEligible, launchTransposeKs } from "./conv_transpose_ks.ts";
import { convUniforms, tapPeriod, withVolume } from "./conv_uniforms.ts";

export interface ConvOptions {
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  groups?: number;
}
export interface ConvTransposeOptions extends ConvOptions {
  outputPadding?: number | number[];
}

type V3 = [number, number, number];

/** Everything a kernel needs about one convolution, spatial dims always 3 (D = 1 for 2D). */
interface Geometry {
  batch: number;
  groups: number;
  k: V3;
  stride: V3;
  pad: V3;
  dil: V3;
}

/** Output channels per invocation in conv_direct / conv_grad_weight (override OCB, register
 * block): the smallest of 4, 8, 16 covering a group's output channels, so small groups waste
 * no lanes and wide ones load each input value once per 16 FMAs (capped at 8 where an invocation
 * also covers 4 outputs or columns). conv_transposed takes any 1..8. */
const channelBlock = (coutG: number) => (coutG <= 4 ? 4 : coutG <= 8 ? 8 : 16);
/** Outputs along W per invocation in conv_direct (consecutive) and conv_transposed (one W phase:
 * o, o + s, ...), override VOX. conv_direct takes DIRECT_VOX where the output row is that long. */
const VOXEL_BLOCK = 4;
const DIRECT_VOX = 8;
/** conv_direct's window loop (override KW): the inputs one invocation's W taps read, at most. */
const DIRECT_WINDOW = 24;
/** (b, k) columns per invocation in conv_grad_weight (override CPI). */
const COLUMN_BLOCK = 4;
/** conv_grad_weight_sg's columns per invocation where the columns fill a workgroup (16 × 8 accumulators). */
const SG_COLUMN_BLOCK = 8;
/** conv_grad_weight_sg main_win: W-tap window (columns) at most, and columns per invocation. */
const GW_WINDOW = 8;
const GW_WINDOW_COLUMNS = 16;
/** Positions (W tiles of VOX positions) per workgroup in the gather kernels. */
const TILE = 64;
/** Weight-gradient chunking: aim for this many workgroups in all (enough to fill a GPU), with at
 * most MAX_CHUNKS partial sums per element and PARTIAL_LIMIT partial-sum elements in all. The
 * bias gradient aims for TARGET_INVOCATIONS invocations, each reducing at least MIN_REDUCE. */
const GRAD_WEIGHT_WORKGROUPS = 512;
const TARGET_INVOCATIONS = 1 << 16;
const MIN_REDUCE = 256;
const MAX_CHUNKS = 1024;
const PARTIAL_LIMIT = 1 << 22;
/** conv_grad_weight_k1: dw tile per lane (A channels × B channels), vec4 columns per lane at least,
 * workgroups to aim for (k1 32→32 1×32×64³ on lavapipe, kernel + sum_chunks: 8 × 16 tiles over 8 / 16
 * chunks 76 / 78 ms, 32 chunks 102, 64 chunks 120: fewer partial rows to fold). */
const K1_TA = 8;
const K1_TB = 16;
const K1_MIN_STEPS = 16;
const K1_WORKGROUPS = 128;
/** conv_k1_sg: workgroups to aim for (64, 256 and 1024 measured alike). */
const K1_FWD_WORKGROUPS = 256;
/** conv_k1_sg: output channels per lane (16 measured best; 8, and two vec4 columns per lane, slower). */
const K1_TCO = 16;

const to3 = (v: number[], fill: number): V3 => (v.length === 2 ? [fill, v[0]!, v[1]!] : [v[0]!, v[1]!, v[2]!]);

/** A per-dimension option as `nd` integers (a scalar applies to every dim). */
function spatialOption(op: string, name: string, v: number | number[] | undefined, nd: number, def: number, min: number): number[] {
  const given = v === undefined ? [def] : typeof v === "number" ? [v] : Array.isArray(v) ? [...v] : [NaN];
  const vals: number[] = given.length === 1 ? Array(nd).fill(given[0]) : given;
  if (vals.length !== nd || vals.some((d) => !Number.isInteger(d) || d < min))
    throw new PulmoError(`${op}: '${name}' must be an integer >= ${min} or ${nd} of them, got ${JSON.stringify(v)}`);
  return vals;
}

function groupsOption(op: string, g: number | undefined): number {
  const groups = g ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new PulmoError(`${op}: 'groups' must be a positive integer, got ${g}`);
  return groups;
}

function spatial3(t: Tensor): V3 {
  return to3(t.shape.slice(2) as number[], 1);
}

/** The f16 forward's checks: every operand f16 and alive, the device has 'shader-f16', no gradient. */
function checkHalf(op: string, x: Tensor, weight: Tensor, bias: Tensor | null | undefined): void {
  for (const [name, t] of [["x", x], ["weight", weight], ["bias", bias]] as const) {
    if (!t) continue;
    if (t.dtype !== "f16") throw new PulmoError(`${op}: 'x' is f16, so '${name}' must be f16 too (cast it), got ${t.dtype}`);
    if (t.isDisposed) throw new PulmoError(`${op}: '${name}' was disposed`);
  }
  requireFeature(x.device.gpu, "shader-f16", `${op} on f16 tensors`);
  if (needsGrad(x, weight, bias))
    throw new PulmoError(`${op}: the f16 path is forward-only; run it under noGrad() or inputs that need no gradient, or in f32`);
}

function checkCommon(op: string, nd: number, x: Tensor, weight: Tensor, bias: Tensor | null | undefined): void {
  if (x.dtype === "f16") checkHalf(op, x, weight, bias);
  else {
    expectFloat(op, "x", x);
    expectFloat(op, "weight", weight);
    if (bias) expectFloat(op, "bias", bias);
  }
  expectSameDevice(op, x, weight, bias);
  expectRank(op, "x", x, nd + 2);
  expectRank(op, "weight", weight, nd + 2);
  if (bias) expectRank(op, "bias", bias, 1);
  if (weight.shape.slice(2).some((k) => k < 1))
    throw new PulmoError(`${op}: 'weight' must have a non-empty kernel, got ${shapeStr(weight.shape)}`);
}

// ---------------------------------------------------------------------------------------------
// Kernel launches (all 3D; shapes come from the tensors plus the geometry)

/** conv_direct (transposed = false) or conv_transposed: y [batch, cout, ...outSize]. */
function launchGather(transposed: boolean, x: Tensor, w: Tensor, bias: Tensor | null, cout: number, outShape: number[], g: Geometry, name: string): Tensor {
  // kernel = stride, no padding: one tap per output voxel (conv_transpose_ks.ts)
  if (transposed && ksEligible(x.dtype, x.shape, outShape, g)) return launchTransposeKs(x, w, bias, cout, outShape, g, name);
  if (!transposed && pointwise(g) && x.dtype === "f32" && numel(spatial3(x)) % 4 === 0 && (x.shape[1]! / g.groups) % 4 === 0 && spreadsOverSubgroup(x.device))
    return launchPointwise(x, w, bias, cout, outShape, g, name);
  const device = x.device;
  const y = Tensor.empty(device, outShape, x.dtype, name);
  const cin = x.shape[1]!;
  const coutG = cout / g.groups;
  const osz = to3(outShape.slice(2), 1);
  // conv_transposed covers VOX = 4 outputs of one W phase (o, o + s, ...) per invocation, so it
  // needs ceil(W / s) >= VOX for the block to pay, and keeps one vec4 of them per channel: any
  // 1..8 channels. conv_direct covers VOX consecutive outputs: 8 with up to 16 channels (128
  // accumulators) where the row has 8, else 4 with up to 8 (measured on lavapipe: OCB 16 × VOX 8
  // is 1.8× OCB 8 × VOX 4, while OCB 16 × VOX 4 is slower than either; bench/NOTES.md).
  const sw = transposed ? g.stride[2] : 1;
  const wlen = Math.ceil(osz[2] / sw);
  const vox = !transposed && wlen >= DIRECT_VOX ? DIRECT_VOX : wlen >= VOXEL_BLOCK ? VOXEL_BLOCK : 1;
  const ocb = transposed ? Math.min(8, coutG) : vox === VOXEL_BLOCK ? Math.min(8, channelBlock(coutG)) : channelBlock(coutG);
  const nblk = Math.ceil(coutG / ocb);
  const wtiles = sw * Math.ceil(Math.ceil(osz[2] / sw) / vox);
  const tiles = Math.ceil((osz[0] * osz[1] * wtiles) / TILE);
  const uniforms = convUniforms({ batch: g.batch, cin, cout, groups: g.groups, nblk, tiles, wtiles, hasBias: bias !== null, isz: spatial3(x), osz, k: g.k, stride: g.stride, pad: g.pad, dil: g.dil });
  const constants: Record<string, number> = { OCB: ocb, VOX: vox };
  // conv_direct's window loop: the VOX outputs' W taps read one run of consecutive inputs, loaded
  // once per (input channel, kd, kh) where that is fewer loads than one per output and tap
  const win = (vox - 1) * g.stride[2] + (g.k[2] - 1) * g.dil[2] + 1;
  // With subgroups of at least 8 lanes, conv_direct_sg runs that loop with the weight reads spread
  // over the subgroup (≈ 1.9× on lavapipe, bench/NOTES.md), for every window that fits (a
  // 1-wide kernel too: there the window is just the VOX inputs).
  const fits = !transposed && vox > 1 && win <= DIRECT_WINDOW;
  const useSg = fits && spreadsOverSubgroup(device);
  if (useSg || (fits && g.k[2] > 1 && win < vox * g.k[2])) Object.assign(constants, { KW: g.k[2], SW: g.stride[2], DW: g.dil[2] });
  const base = transposed ? "conv/conv_transposed" : useSg ? "conv/conv_direct_sg" : "conv/conv_direct";
  if (transposed) {
    const kstep = tapPeriod(g.stride, g.dil);
    // W taps of one phase that share an input window: all of them (at most 8) when consecutive
    // phase taps read consecutive inputs (kstep * dil = stride, i.e. dil divides stride)
    const tapsPerPhase = Math.ceil(g.k[2] / kstep[2]!);
    const tpg = kstep[2]! * g.dil[2] === g.stride[2] ? Math.min(8, tapsPerPhase) : 1;
    if (tpg > 1) constants.TPG = tpg;
  }
  device.dispatch({
    kernel: kernelName(base, x.dtype === "f16" ? "f16" : null),
    constants,
    bindings: { x, w, bias: bias ?? w, y },
    uniforms,
    workgroups: g.batch * g.groups * nblk * tiles,
    label: label(name, x, w, bias),
  });
  return y;
}

/** conv_k1_sg: a pointwise conv (k = 1, stride 1, no padding; f32, volume and input channels per
 * group multiples of 4, subgroups of at least 8 lanes) as a batched GEMM over the flattened volume,
 * K1_TCO output channels × one vec4 column per lane at a time, the weight reads spread over the
 * subgroup, about K1_FWD_WORKGROUPS workgroups of a grid-stride loop (1×32×64³ 32→32 forward ≈ 0.8×
 * conv_direct_sg on lavapipe). Also the input gradient (with the flipped weight, gradInput). */
function launchPointwise(x: Tensor, w: Tensor, bias: Tensor | null, cout: number, outShape: number[], g: Geometry, name: string): Tensor {
  const device = x.device;
  const y = Tensor.empty(device, outShape, "f32", name);
  const cin = x.shape[1]!;
  const coutG = cout / g.groups;
  const vol4 = numel(spatial3(x)) / 4;
  const tco = Math.min(K1_TCO, coutG);
  const coBlk = Math.ceil(coutG / tco);
  const outer = g.batch * g.groups * coBlk;
  const span = 64;
  let vchunks = Math.max(1, Math.min(Math.ceil(K1_FWD_WORKGROUPS / outer), Math.ceil(vol4 / span), Math.floor(device.limits.maxWorkgroupsPerDim ** 2 / outer)));
  const steps = Math.ceil(vol4 / (span * vchunks));
  vchunks = Math.ceil(vol4 / (span * steps));
  device.dispatch({
    kernel: "conv/conv_k1_sg",
    constants: { TCO: tco },
    bindings: { x, w, bias: bias ?? w, y },
    uniforms: { cin, cout, cin_g: cin / g.groups, cout_g: coutG, groups: g.groups, co_blk: coBlk, vol4, steps, vchunks, batch: g.batch, use_bias: bias ? 1 : 0 },
    workgroups: outer * vchunks,
    label: label(name, x, w, bias),
  });
  return y;
}

/** dw[a, b, k] = sum_{n,o} A[n, a, o] * B[n, grp(a)*bc_g + b, o*stride - pad + k*dil]; shape
 * [A channels, B channels / groups, ...k]. Conv: A = dy, B = x; conv-transpose: A = x, B = dy. */
function launchGradWeight(a: Tensor, b: Tensor, wShape: readonly number[], g: Geometry, name: string): Tensor {
  if (pointwise(g) && numel(spatial3(a)) % 4 === 0 && 64 * g.batch * numel(wShape) <= Math.min(PARTIAL_LIMIT, a.device.limits.maxBindingBytes / 4))
    return launchGradWeightK1(a, b, wShape, g, name);
  const device = a.device;
  const dw = Tensor.empty(device, wShape, "f32", name);
  const ac = a.shape[1]!;
  const bc = b.shape[1]!;
  const asz = spatial3(a);
  const wn = dw.size;
  const rows = g.batch * asz[0] * asz[1];
  const acG = ac / g.groups;
  const bcG = bc / g.groups;
  // CPI columns × OCB A channels per invocation: CPI * OCB <= 32 accumulators. With subgroups of
  // at least 8 lanes, conv_grad_weight_sg spreads the (workgroup-uniform) A reads over the
  // subgroup, which makes up to 16 channels × 8 columns pay (k3 32→32: ≈ 2.5× on lavapipe,
  // bench/NOTES.md). It runs only where the columns fill a workgroup (8 columns per invocation
  // where they fill one at that width): every lane of it computes (no early return), so mostly
  // idle workgroups cost it more than the portable kernel (k1 32→32: 32 columns, 2.8× slower;
  // k5 1→16: 125 columns, 1.13×; measured on lavapipe).
  const ncol = bcG * numel(g.k);
  const useSg = spreadsOverSubgroup(device) && ncol >= COLUMN_BLOCK * TILE;
  const wide = useSg && ncol >= SG_COLUMN_BLOCK * TILE;
  const cpi = wide ? SG_COLUMN_BLOCK : COLUMN_BLOCK;
  // main_win: rows of all KW taps whose B loads slide along ow, where a window of at most 8
  // columns is reused (W stride below it); OCB 8 × 5 rows of 3 taps measured best at k3
  const span = (g.k[2] - 1) * g.dil[2] + 1;
  const winRows = wide && g.k[2] > 1 && span <= GW_WINDOW && g.stride[2] < span ? Math.min(8, Math.floor(GW_WINDOW_COLUMNS / g.k[2])) : 0;
  const ocb = useSg && !winRows ? channelBlock(acG) : Math.min(8, channelBlock(acG));
  const nblk = Math.ceil(acG / ocb);
  const ctiles = Math.ceil((winRows ? Math.ceil(ncol / g.k[2] / winRows) : Math.ceil(ncol / cpi)) / TILE);
  const perChunk = g.groups * nblk * ctiles;
  const maxWorkgroups = device.limits.maxWorkgroupsPerDim ** 2;
  // partial sums: at most PARTIAL_LIMIT elements and within one storage binding
  const partialCap = Math.min(PARTIAL_LIMIT, Math.floor(device.limits.maxBindingBytes / 4));
  let nchunks = Math.min(Math.ceil(GRAD_WEIGHT_WORKGROUPS / perChunk), rows, MAX_CHUNKS, Math.floor(partialCap / Math.max(1, wn)));
  nchunks = Math.max(1, Math.min(nchunks, Math.floor(maxWorkgroups / perChunk)));
  const rowsPerChunk = Math.max(1, Math.ceil(rows / nchunks));
  nchunks = Math.max(1, Math.ceil(rows / rowsPerChunk));
  const part = nchunks === 1 ? dw : Tensor.empty(device, [nchunks * wn], "f32", `${name} partials`);
  device.dispatch({
    kernel: useSg ? "conv/conv_grad_weight_sg" : "conv/conv_grad_weight",
    ...(winRows ? { entry: "main_win" } : {}),
    constants: winRows ? { OCB: ocb, ROWS: winRows, KW: g.k[2], SW: g.stride[2], DW: g.dil[2] } : { OCB: ocb, CPI: cpi },
    bindings: { a, b, part },
    uniforms: {
      ac,
      bc,
      ac_g: acG,
      bc_g: bcG,
      groups: g.groups,
      nblk,
      ctiles,
      wn,
      nchunks,
      rows_per_chunk: rowsPerChunk,
      rows,
      asz: withVolume(asz),
      bsz: withVolume(spatial3(b)),
      ksz: withVolume(g.k),
      stride: g.stride,
      pad: g.pad,
      dil: g.dil,
    },
    workgroups: nchunks * perChunk,
    label: label(name, a, b),
  });
  if (part !== dw) {
    sumChunks(part, dw, nchunks, name);
    part.dispose();
  }
  return dw;
}

/** A 1×1×1 kernel with stride 1 and no padding: the conv is a (batched, grouped) GEMM over the
 * flattened volume (dilation is moot at k = 1). */
function pointwise(g: Geometry): boolean {
  return [...g.k, ...g.stride].every((v) => v === 1) && g.pad.every((v) => v === 0);
}

/** conv_grad_weight_k1: the weight gradient of a pointwise conv (volume a multiple of 4) as a
 * split-K GEMM, dw[a, b] = sum over (n, v) of A[n, a, v] B[n, b, v]. Each lane holds a K1_TA × K1_TB
 * tile over its own interleaved vec4 columns of one chunk of the volume; the per-lane partial rows
 * are folded by sum_chunks. Chunks: about K1_WORKGROUPS workgroups in all, at least
 * K1_MIN_STEPS vec4 per lane, rows × wn within the partial-sum cap. */
function launchGradWeightK1(a: Tensor, b: Tensor, wShape: readonly number[], g: Geometry, name: string): Tensor {
  const device = a.device;
  const dw = Tensor.empty(device, wShape, "f32", name);
  const [ac, bc] = [a.shape[1]!, b.shape[1]!];
  const [acG, bcG] = [ac / g.groups, bc / g.groups];
  const vol4 = numel(spatial3(a)) / 4;
  const wn = dw.size;
  const ta = Math.min(K1_TA, acG);
  const tb = Math.min(K1_TB, bcG);
  const tiles = g.groups * Math.ceil(acG / ta) * Math.ceil(bcG / tb);
  const partialCap = Math.min(PARTIAL_LIMIT, Math.floor(device.limits.maxBindingBytes / 4));
  const maxRows = Math.max(64, Math.floor(partialCap / wn));
  const maxWorkgroups = device.limits.maxWorkgroupsPerDim ** 2;
  let vchunks = Math.ceil(K1_WORKGROUPS / (tiles * g.batch));
  vchunks = Math.min(vchunks, Math.ceil(vol4 / (64 * K1_MIN_STEPS)), Math.floor(maxRows / (64 * g.batch)), Math.floor(maxWorkgroups / (tiles * g.batch)));
  vchunks = Math.max(1, vchunks);
  const steps = Math.max(1, Math.ceil(vol4 / (64 * vchunks)));
  vchunks = Math.max(1, Math.ceil(vol4 / (64 * steps)));
  const rows = g.batch * vchunks * 64;
  const part = Tensor.empty(device, [rows * wn], "f32", `${name} partials`);
  device.dispatch({
    kernel: "conv/conv_grad_weight_k1",
    constants: { TA: ta, TB: tb },
    bindings: { a, b, part },
    uniforms: { ac, bc, ac_g: acG, bc_g: bcG, groups: g.groups, ta_blk: Math.ceil(acG / ta), tb_blk: Math.ceil(bcG / tb), wn, vol4, steps, vchunks, batch: g.batch },
    workgroups: tiles * vchunks * g.batch,
    label: label(name, a, b),
  });
  sumChunks(part, dw, rows, name);
  part.dispose();
  return dw;
}

function sumChunks(part: Tensor, out: Tensor, nchunks: number, name: string): void {
  out.device.dispatch({
    kernel: "conv/conv_reduce",
    entry: "sum_chunks",
    bindings: { src: part, dst: out },
    uniforms: { count: out.size, spatial: 0, total: 0, chunk_len: 0, nchunks },
    workgroups: groups1d(out.size),
    label: label(`${name} reduce`, part),
  });
}

/** db[c] = sum over batch and space of dy[n, c, ...]. */
function launchGradBias(dy: Tensor, name: string): Tensor {
  const device = dy.device;
  const c = dy.shape[1]!;
  const db = Tensor.empty(device, [c], "f32", name);
  const spatial = numel(dy.shape.slice(2));
  const total = dy.shape[0]! * spatial;
  let nchunks = Math.max(1, Math.min(Math.ceil(TARGET_INVOCATIONS / Math.max(1, c)), Math.ceil(total / MIN_REDUCE), MAX_CHUNKS));
  const chunkLen = Math.max(1, Math.ceil(total / nchunks));
  nchunks = Math.max(1, Math.ceil(total / chunkLen));
  const part = nchunks === 1 ? db : Tensor.empty(device, [nchunks * c], "f32", `${name} partials`);
  device.dispatch({
    kernel: "conv/conv_reduce",
    entry: "bias_partial",
    bindings: { src: dy, dst: part },
    uniforms: { count: c, spatial, total, chunk_len: chunkLen, nchunks },
    workgroups: groups1d(c * nchunks),
    label: label(name, dy),
  });
  if (part !== db) {
    sumChunks(part, db, nchunks, name);
    part.dispose();
  }
  return db;
}

// ---------------------------------------------------------------------------------------------
// Public ops

/** Tensors the backward reads: x for the weight gradient, weight for the input gradient. */
function savedFor(x: Tensor, weight: Tensor, needX: boolean, needW: boolean): Tensor[] {
  return [...(needW ? [x] : []), ...(needX ? [weight] : [])];
}
function unpackSaved(saved: Tensor[], needX: boolean, needW: boolean): { xs?: Tensor; ws?: Tensor } {
  return { xs: needW ? saved[0] : undefined, ws: needX ? saved[needW ? 1 : 0] : undefined };
}

/** The forward (direct or transposed gather) and its recorded backward: grad x is the other gather
 * of dy with the same weight, at x's size; grad weight correlates x with dy (their roles swap for
 * the transposed conv); grad bias sums dy. Only what the needed gradients read is kept alive: x
 * for dw, weight for dx. */
/** Forward of a convolution whose input or output exceeds one storage binding, in depth slabs
 * (split.ts convDepthSlabs; 2D runs as 3D [N, C, H, W, 1] so its slabs are runs of rows). The
 * slab convolutions are ordinary launches with batch 1 and the slab's depth padding. */
function convForwardSplit(op: string, transposed: boolean, x: Tensor, w: Tensor, bias: Tensor | null, cout: number, outShape: number[], g: Geometry): Tensor {
  const is2d = x.rank === 4;
  // 2D geometry is [1, kh, kw] etc.; as 3D over [H, W, 1] it becomes [kh, kw, 1].
  const g3: Geometry = is2d
    ? { ...g, k: [g.k[1], g.k[2], 1], stride: [g.stride[1], g.stride[2], 1], pad: [g.pad[1], g.pad[2], 0], dil: [g.dil[1], g.dil[2], 1] }
    : g;
  const x5 = is2d ? x.reshape([...x.shape, 1]) : x;
  const out5 = is2d ? [...outShape, 1] : outShape;
  const depth = { k: g3.k[0], s: g3.stride[0], p: g3.pad[0], dil: g3.dil[0] };
  const y5 = convDepthSlabs(op, transposed, x5, out5, depth, (slab, partShape, padD) =>
    launchGather(transposed, slab, w, bias, cout, partShape, { ...g3, batch: 1, pad: [padD, g3.pad[1], g3.pad[2]] }, op),
  );
  if (!is2d) return y5;
  const y = y5.reshape(outShape);
  x5.dispose();
  y5.dispose();
  return y;
}

/** Input gradient: the other gather of dy with the same weight; for a stride-1 conv, conv_direct
 * of dy with the flipped, channel-swapped weight (conv_flip.wgsl) and padding dil*(k-1) - pad,
 * which is the better-tiled kernel. */
function gradInput(transposed: boolean, dy: Tensor, w: Tensor, cin: number, xShape: number[], g: Geometry, name: string): Tensor {
  const flipPad = g.k.map((k, d) => g.dil[d]! * (k - 1) - g.pad[d]!) as V3;
  if (transposed || g.stride.some((s) => s !== 1) || flipPad.some((p) => p < 0)) return launchGather(!transposed, dy, w, null, cin, xShape, g, name);
  const [cout, cinG] = w.shape as [number, number];
  const coutG = cout / g.groups;
  const wf = Tensor.empty(w.device, [cin, coutG, ...w.shape.slice(2)], "f32", `${name} flipped weight`);
  w.device.dispatch({
    kernel: "conv/conv_flip",
    bindings: { w, wf },
    uniforms: { cin_g: cinG, cout_g: coutG, groups: g.groups, kvol: numel(g.k) },
    workgroups: groups1d(wf.size),
    label: label(`${name} flip`, w),
  });
  const dx = launchGather(false, dy, wf, null, cin, xShape, { ...g, pad: flipPad }, name);
  wf.dispose();
  return dx;
}

function convOp(op: string, transposed: boolean, x: Tensor, weight: Tensor, bias: Tensor | null, cout: number, outSp: number[], g: Geometry): Tensor {
  const cin = x.shape[1]!;
  const outShape = [g.batch, cout, ...outSp];
  const limit = x.device.limits.maxBindingBytes;
  const oversized = x.bytes > limit || numel(outShape) * (x.dtype === "f16" ? 2 : 4) > limit;
  if (oversized && x.dtype === "f16")
    throw new PulmoError(`${op}: the f16 path does not split over the ${limit}-byte storage binding limit (${shapeStr(x.shape)} → ${shapeStr(outShape)}); use f32`);
  if (oversized) return recordConvSplit(op, transposed, convForwardSplit(op, transposed, x, weight, bias, cout, outShape, g), x, weight, bias, g);
  const y = launchGather(transposed, x, weight, bias, cout, outShape, g, op);
  const [needX, needW, needB] = [x.requiresGrad, weight.requiresGrad, !!bias?.requiresGrad];
  const [xShape, wShape] = [[...x.shape], [...weight.shape]];
  return record(op, y, [x, weight, bias], savedFor(x, weight, needX, needW), (dy, saved) => {
    const { xs, ws } = unpackSaved(saved, needX, needW);
    return [
      needX ? gradInput(transposed, dy, ws!, cin, xShape, g, `${op}_grad_x`) : null,
      needW ? launchGradWeight(transposed ? xs! : dy, transposed ? dy : xs!, wShape, g, `${op}_grad_weight`) : null,
      needB ? launchGradBias(dy, `${op}_grad_bias`) : null,
    ];
  });
}

function convNd(op: string, nd: 2 | 3, x: Tensor, weight: Tensor, bias: Tensor | null | undefined, opts: ConvOptions): Tensor {
  checkCommon(op, nd, x, weight, bias);
  const stride = spatialOption(op, "stride", opts.stride, nd, 1, 1);
  const padding = spatialOption(op, "padding", opts.padding, nd, 0, 0);
  const dilation = spatialOption(op, "dilation", opts.dilation, nd, 1, 1);
  const groups = groupsOption(op, opts.groups);
  const [batch, cin] = x.shape as [number, number];
  const [cout, cinG] = weight.shape as [number, number];
  if (cin % groups !== 0)
    throw new PulmoError(`${op}: 'x' ${shapeStr(x.shape)} has ${cin} channels, not divisible by groups=${groups}`);
  if (cout % groups !== 0)
    throw new PulmoError(`${op}: 'weight' ${shapeStr(weight.shape)} has ${cout} output channels, not divisible by groups=${groups}`);
  if (cinG * groups !== cin)
    throw new PulmoError(
      `${op}: 'weight' ${shapeStr(weight.shape)} expects ${cinG * groups} input channels (weight.shape[1] * groups=${groups}), 'x' ${shapeStr(x.shape)} has ${cin}`,
    );
  if (bias && bias.shape[0] !== cout)
    throw new PulmoError(`${op}: 'bias' must have shape [${cout}] to match 'weight' ${shapeStr(weight.shape)}, got ${shapeStr(bias.shape)}`);
  const ksz = weight.shape.slice(2) as number[];
  const inSp = x.shape.slice(2) as number[];
  const outSp = inSp.map((i, d) => Math.floor((i + 2 * padding[d]! - dilation[d]! * (ksz[d]! - 1) - 1) / stride[d]!) + 1);
  if (outSp.some((o) => o < 1))
    throw new PulmoError(
      `${op}: 'x' ${shapeStr(x.shape)} padded by ${shapeStr(padding)} is smaller than the dilated kernel of 'weight' ${shapeStr(weight.shape)} (dilation ${shapeStr(dilation)})`,
    );
  // 3×3 stride-1 2-D convs with enough channels run as Winograd F(m×m, 3×3) (winograd.ts): fewer
  // multiplies, the work in batched GEMMs; measured crossover and accuracy there
  if (nd === 2 && winogradEligible(x, weight, opts)) return winogradConv2d(x, weight, bias ?? null, [padding[0]!, padding[1]!]);
  const g: Geometry = { batch, groups, k: to3(ksz, 1), stride: to3(stride, 1), pad: to3(padding, 0), dil: to3(dilation, 1) };
  return convOp(op, false, x, weight, bias ?? null, cout, outSp, g);
}

function convTransposeNd(op: string, nd: 2 | 3, x: Tensor, weight: Tensor, bias: Tensor | null | undefined, opts: ConvTransposeOptions): Tensor {
  checkCommon(op, nd, x, weight, bias);
  const stride = spatialOption(op, "stride", opts.stride, nd, 1, 1);
  const padding = spatialOption(op, "padding", opts.padding, nd, 0, 0);
  const dilation = spatialOption(op, "dilation", opts.dilation, nd, 1, 1);
  const outputPadding = spatialOption(op, "outputPadding", opts.outputPadding, nd, 0, 0);
  const groups = groupsOption(op, opts.groups);
  const [batch, cin] = x.shape as [number, number];
  const [wcin, coutG] = weight.shape as [number, number];
  if (wcin !== cin)
    throw new PulmoError(`${op}: 'weight' ${shapeStr(weight.shape)} expects ${wcin} input channels (weight.shape[0]), 'x' ${shapeStr(x.shape)} has ${cin}`);
  if (cin % groups !== 0)
    throw new PulmoError(`${op}: 'x' ${shapeStr(x.shape)} has ${cin} channels, not divisible by groups=${groups}`);
  const cout = coutG * groups;
  if (bias && bias.shape[0] !== cout)
    throw new PulmoError(`${op}: 'bias' must have shape [${cout}] (weight.shape[1] * groups), got ${shapeStr(bias.shape)}`);
  outputPadding.forEach((p, d) => {
    if (p >= Math.max(stride[d]!, dilation[d]!))
      throw new PulmoError(
        `${op}: 'outputPadding' ${shapeStr(outputPadding)} must be smaller than stride ${shapeStr(stride)} or dilation ${shapeStr(dilation)} in every dim`,
      );
  });
  const ksz = weight.shape.slice(2) as number[];
  const inSp = x.shape.slice(2) as number[];
  const outSp = inSp.map((i, d) => (i - 1) * stride[d]! - 2 * padding[d]! + dilation[d]! * (ksz[d]! - 1) + outputPadding[d]! + 1);
  if (outSp.some((o) => o < 1))
    throw new PulmoError(
      `${op}: output size ${shapeStr(outSp)} is not positive for 'x' ${shapeStr(x.shape)}, 'weight' ${shapeStr(weight.shape)}, padding ${shapeStr(padding)}`,
    );
  const g: Geometry = { batch, groups, k: to3(ksz, 1), stride: to3(stride, 1), pad: to3(padding, 0), dil: to3(dilation, 1) };
  // grad x is the direct conv of dy with the same weight ([Cin, Cout/g, k] is its [OC, IC/g, k])
  return convOp(op, true, x, weight, bias ?? null, cout, outSp, g);
}

/** torch.nn.functional.conv3d: x [N, Cin, D, H, W], weight [Cout, Cin/groups, kD, kH, kW],
 * bias [Cout] → [N, Cout, Do, Ho, Wo]. Differentiable in x, weight and bias. */
export function conv3d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  return convNd("conv3d", 3, x, weight, bias, opts);
}

/** torch.nn.functional.conv2d: x [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  return convNd("conv2d", 2, x, weight, bias, opts);
}

/** torch.nn.functional.conv_transpose3d: x [N, Cin, D, H, W], weight [Cin, Cout/groups, kD, kH, kW],
 * bias [Cout] → [N, Cout, (D-1)*s - 2p + dil*(k-1) + output_padding + 1, ...]. */
export function convTranspose3d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvTransposeOptions = {}): Tensor {
  return convTransposeNd("conv_transpose3d", 3, x, weight, bias, opts);
}

/** torch.nn.functional.conv_transpose2d: x [N, Cin, H, W], weight [Cin, Cout/groups, kH, kW]. */
export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvTransposeOptions = {}): Tensor {
  return convTransposeNd("conv_transpose2d", 2, x, weight, bias, opts);
}

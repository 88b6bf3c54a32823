// Sampling attention: grid_sample3d and multi-scale deformable attention (3D), with fused
// backward kernels. Scatter-adds of the backward are written as gathers over stably sorted
// lists: grad x of grid_sample3d over (voxel, sample corner) entries; grad value of
// ms_deform_attn3d over samples sorted by the base voxel of their 2×2×2 cell (one entry per
// sample; each value row gathers the 8 neighbouring cells). Race-free without float atomics, and
// deterministic. Conventions and limits: docs/ops/attention.md.
import { PulmoError, Tensor, numel, shapeStr, type Device } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { overBindingLimit, splitDeformAttn } from "./split.ts";
import { expectFloat, expectRank, expectSameDevice, groups1d, label } from "../launch.ts";

// ---------------------------------------------------------------------------------------------
// Deterministic scatter-as-gather: entries (key, weight) → sort by key → per-key sums.

const SORT_BLOCK = 1024; // entries per workgroup in radix_sort.wgsl
const RADIX_BITS = 4;
const SCAN_TILE = 1024; // elements per workgroup in scan.wgsl
/** levels the ms_deform_attn3d uniform struct holds */
export const MAX_LEVELS = 16;
/** channels per invocation of the ms_deform_attn3d forward (override CPI, at most 16) */
const FWD_CPI = 8;
/** channels per invocation of ms_deform_attn3d's grad-value gather (override CPI, at most 16) */
const GRAD_CPI = 8;

function bitLength(v: number): number {
  return v <= 0 ? 0 : Math.floor(Math.log2(v)) + 1;
}

/** In-place exclusive prefix sum of the first n u32 elements of `data`. */
function exclusiveScan(device: Device, data: Tensor, n: number): void {
  const tiles = Math.ceil(n / SCAN_TILE);
  if (tiles === 0) return;
  const sums = Tensor.empty(device, [tiles], "u32", "scan sums");
  const call = { kernel: "attention/scan", bindings: { data, sums }, uniforms: { n, tiles }, workgroups: tiles, label: `scan([${n}])` };
  device.dispatch({ ...call, entry: "scan_tiles" });
  if (tiles > 1) {
    exclusiveScan(device, sums, tiles);
    device.dispatch({ ...call, entry: "add_sums" });
  }
  sums.dispose();
}

/** Stable sort of entry ids 0..n-1 by `keys` (values < 2^keyBits). Takes ownership of `keys`;
 * returns the sorted keys and the entry ids in that order (the caller disposes both). */
export function sortEntries(device: Device, keys: Tensor, n: number, keyBits: number): { keys: Tensor; order: Tensor } {
  const blocks = Math.ceil(n / SORT_BLOCK);
  const passes = Math.max(1, Math.ceil(keyBits / RADIX_BITS));
  const hist = Tensor.empty(device, [16 * blocks], "u32", "radix histogram");
  // ping-pong: pass p reads keyBufs[p % 2] and writes keyBufs[(p + 1) % 2]; it writes the
  // order to orderBufs[p % 2], reading orderBufs[(p + 1) % 2] (nothing on the first pass)
  const keyBufs = [keys, Tensor.empty(device, [n], "u32", "sorted keys")];
  const orderBufs = [Tensor.empty(device, [n], "u32", "sorted order")];
  if (passes > 1) orderBufs.push(Tensor.empty(device, [n], "u32", "sorted order"));
  for (let pass = 0; pass < passes; pass++) {
    const keysIn = keyBufs[pass % 2]!;
    const call = {
      kernel: "attention/radix_sort",
      bindings: {
        keys_in: keysIn,
        vals_in: pass === 0 ? keysIn : orderBufs[(pass + 1) % 2]!,
        hist,
        keys_out: keyBufs[(pass + 1) % 2]!,
        vals_out: orderBufs[pass % 2]!,
      },
      uniforms: { n, blocks, shift: pass * RADIX_BITS, identity: pass === 0 ? 1 : 0 },
      workgroups: blocks,
      label: `radix_sort([${n}], pass ${pass})`,
    };
    device.dispatch({ ...call, entry: "histogram" });
    exclusiveScan(device, hist, 16 * blocks);
    device.dispatch({ ...call, entry: "scatter" });
  }
  hist.dispose();
  const sortedKeys = keyBufs[passes % 2]!;
  const order = orderBufs[(passes - 1) % 2]!;
  for (const t of [...keyBufs, ...orderBufs]) if (t !== sortedKeys && t !== order) t.dispose();
  return { keys: sortedKeys, order };
}

interface GatherMap {
  /** output element i = (g * C + c) * V + v reads the entries of key g * V + v */
  C: number;
  V: number;
  /** dy index of an entry's sample s for channel c: (s / A) * B + c * Cs + (s % A) * Ms */
  A: number;
  B: number;
  Cs: number;
  Ms: number;
}

/** grad[i] = sum of weights[e] * dy[...] over the entries e whose key belongs to i, summed in
 * entry order. `keys` (8 entries per sample, `numKeys` marks an entry that reaches nothing) is
 * consumed; `weights` is left to the caller. */
function gatherEntries(
  device: Device,
  op: string,
  keys: Tensor,
  weights: Tensor,
  numKeys: number,
  dy: Tensor,
  shape: readonly number[],
  map: GatherMap,
): Tensor {
  const n = keys.size;
  const grad = Tensor.empty(device, shape, "f32", `${op} grad`);
  const sorted = sortEntries(device, keys, n, bitLength(numKeys));
  const offsets = Tensor.empty(device, [numKeys + 1], "u32", "segment offsets");
  device.dispatch({
    kernel: "attention/segments",
    bindings: { sorted_keys: sorted.keys, offsets },
    uniforms: { n, num_keys: numKeys },
    workgroups: groups1d(numKeys + 1),
    label: `${op}_segments([${n}])`,
  });
  device.dispatch({
    kernel: "attention/segment_gather",
    bindings: { offsets, order: sorted.order, weights, dy, grad },
    uniforms: { total: grad.size, ...map },
    workgroups: groups1d(grad.size),
    label: `${op}_gather(${shapeStr(shape)})`,
  });
  sorted.keys.dispose();
  sorted.order.dispose();
  offsets.dispose();
  return grad;
}

/** ms_deform_attn3d's grad value from the backward's per-sample keys (consumed) and geometry
 * (left to the caller): stable sort of the samples by key, segment bounds, the sorted geometry
 * and dy rows laid out in order, then one gather per (value row, channel block) over the 8
 * neighbouring base cells (kernels/attention/ms_deform_attn3d_value_grad.wgsl). */
function deformValueGrad(
  device: Device,
  keys: Tensor,
  geo: Tensor,
  n: number,
  numKeys: number,
  dy: Tensor,
  shape: readonly number[],
  d: { S: number; nH: number; Dh: number; nL: number; nP: number; levels: number[]; padStarts: number[]; Sp: number },
): Tensor {
  const grad = Tensor.empty(device, shape, "f32", "ms_deform_attn3d grad value");
  const sorted = sortEntries(device, keys, n, bitLength(numKeys));
  const offsets = Tensor.empty(device, [numKeys + 1], "u32", "segment offsets");
  device.dispatch({
    kernel: "attention/segments",
    bindings: { sorted_keys: sorted.keys, offsets },
    uniforms: { n, num_keys: numKeys },
    workgroups: groups1d(numKeys + 1),
    label: `ms_deform_attn3d_segments([${n}])`,
  });
  sorted.keys.dispose();
  const sortedGeo = Tensor.empty(device, [n, 4], "f32", "sorted geometry");
  const sortedQ = Tensor.empty(device, [n], "u32", "sorted dy rows");
  const rows = grad.size / Math.max(d.Dh, 1);
  const vec4 = d.Dh % 4 === 0 && GRAD_CPI % 4 === 0;
  const cpi = vec4 ? Math.min(GRAD_CPI, d.Dh) : Math.min(GRAD_CPI, d.Dh);
  const total = rows * Math.ceil(d.Dh / cpi);
  const uniforms = { n, nA: d.nL * d.nP, S: d.S, nH: d.nH, Dh: d.Dh, nL: d.nL, Sp: d.Sp, levels: d.levels, pad_starts: d.padStarts };
  device.dispatch({
    kernel: "attention/ms_deform_attn3d_value_grad",
    entry: "permute",
    bindings: { order: sorted.order, sample_geo: geo, sorted_geo: sortedGeo, sorted_q: sortedQ },
    uniforms: { total, ...uniforms },
    workgroups: groups1d(n),
    label: `ms_deform_attn3d_permute([${n}])`,
  });
  device.dispatch({
    kernel: "attention/ms_deform_attn3d_value_grad",
    entry: vec4 ? "main4" : "main",
    constants: { CPI: cpi },
    bindings: vec4 ? { sorted_geo: sortedGeo, sorted_q: sortedQ, offsets, dy4: dy, grad4: grad } : { sorted_geo: sortedGeo, sorted_q: sortedQ, offsets, dy, grad },
    uniforms: { total, ...uniforms },
    workgroups: groups1d(total),
    label: `ms_deform_attn3d_value_grad(${shapeStr(shape)})`,
  });
  for (const t of [sorted.order, offsets, sortedGeo, sortedQ]) t.dispose();
  return grad;
}

/** A 1-element scratch tensor for an output binding a kernel variant does not write. */
const unused = (device: Device, dtype: "f32" | "u32" = "f32") => Tensor.empty(device, [1], dtype, "unused");

// ---------------------------------------------------------------------------------------------
// grid_sample3d

export interface GridSampleOptions {
  /** PyTorch's name for (tri)linear on 5D input; only "bilinear" (alias "trilinear") is supported */
  mode?: "bilinear" | "trilinear";
  /** only "zeros" is supported */
  paddingMode?: "zeros";
  alignCorners?: boolean;
}

/** F.grid_sample on 5D input: x [N, C, D, H, W], grid [N, Do, Ho, Wo, 3] with last dim
 * (x→W, y→H, z→D) in [-1, 1] → y [N, C, Do, Ho, Wo]. Trilinear, zeros padding,
 * align_corners=False by default. Backward for x and grid. */
export function gridSample3d(x: Tensor, grid: Tensor, options: GridSampleOptions = {}): Tensor {
  const op = "grid_sample3d";
  expectFloat(op, "x", x);
  expectFloat(op, "grid", grid);
  expectRank(op, "x", x, 5);
  expectRank(op, "grid", grid, 5);
  const mode = options.mode ?? "bilinear";
  if (mode !== "bilinear" && mode !== "trilinear")
    throw new PulmoError(`${op}: mode '${mode}' is not supported (only 'bilinear', i.e. trilinear on 5D input)`);
  const padding = options.paddingMode ?? "zeros";
  if (padding !== "zeros") throw new PulmoError(`${op}: padding_mode '${padding}' is not supported (only 'zeros')`);
  const [N, C, D, H, W] = x.shape as [number, number, number, number, number];
  const [Ng, Do, Ho, Wo, three] = grid.shape as [number, number, number, number, number];
  if (three !== 3) throw new PulmoError(`${op}: 'grid' must have last dimension 3 (x, y, z), got ${shapeStr(grid.shape)}`);
  if (Ng !== N)
    throw new PulmoError(`${op}: 'grid' batch ${Ng} does not match 'x' batch ${N} (x ${shapeStr(x.shape)}, grid ${shapeStr(grid.shape)})`);
  const device = expectSameDevice(op, x, grid);
  const align = options.alignCorners ? 1 : 0;
  const So = Do * Ho * Wo;
  const y = Tensor.empty(device, [N, C, Do, Ho, Wo], "f32", op);
  const dims = { C, D, H, W, So, align };
  device.dispatch({
    kernel: "attention/grid_sample3d",
    bindings: { x, grid, y },
    uniforms: { total: y.size, ...dims },
    workgroups: groups1d(y.size),
    label: label(op, x, grid),
  });
  const wantX = x.requiresGrad;
  const wantGrid = grid.requiresGrad;
  const xShape = [...x.shape];
  const gridShape = [...grid.shape];
  return record(op, y, [x, grid], [x, grid], (dy, [xs, gs]) => {
    const samples = N * So;
    const numKeys = N * D * H * W;
    // entries are only worth building when some voxel can receive a gradient
    const needX = wantX && samples > 0 && numKeys > 0 && C > 0;
    const gradGrid = wantGrid ? Tensor.empty(device, gridShape, "f32", "grad grid") : unused(device);
    const keys = needX ? Tensor.empty(device, [8 * samples], "u32", "entry keys") : unused(device, "u32");
    const weights = needX ? Tensor.empty(device, [8 * samples], "f32", "entry weights") : unused(device);
    if (wantGrid || needX)
      device.dispatch({
        kernel: "attention/grid_sample3d_backward",
        constants: { WANT_X: needX ? 1 : 0, WANT_GRID: wantGrid ? 1 : 0 },
        bindings: { x: xs!, grid: gs!, dy, grad_grid: gradGrid, keys, weights },
        uniforms: { total: samples, ...dims, num_keys: numKeys },
        workgroups: groups1d(samples),
        label: label(`${op}_backward`, xs, gs),
      });
    let gradX: Tensor | null = null;
    if (needX) gradX = gatherEntries(device, op, keys, weights, numKeys, dy, xShape, { C, V: D * H * W, A: So, B: C * So, Cs: So, Ms: 1 });
    else {
      keys.dispose();
      if (wantX) gradX = Tensor.zeros(device, xShape);
    }
    weights.dispose();
    if (!wantGrid) gradGrid.dispose();
    return [gradX, wantGrid ? gradGrid : null];
  });
}

// ---------------------------------------------------------------------------------------------
// ms_deform_attn3d

export type SpatialShape3d = readonly [number, number, number];

function checkSpatialShapes(op: string, spatialShapes: readonly SpatialShape3d[]): void {
  if (!Array.isArray(spatialShapes) || spatialShapes.length === 0)
    throw new PulmoError(`${op}: 'spatial_shapes' must be a non-empty list of [D, H, W], got ${JSON.stringify(spatialShapes)}`);
  for (const s of spatialShapes)
    if (!Array.isArray(s) || s.length !== 3 || s.some((d) => !Number.isInteger(d) || d < 1))
      throw new PulmoError(`${op}: each of 'spatial_shapes' must be [D, H, W] of positive integers, got ${JSON.stringify(s)}`);
}

/** Start of each level along value's S axis: the running sum of D*H*W over the levels before it. */
export function levelStartIndex(spatialShapes: readonly SpatialShape3d[]): number[] {
  checkSpatialShapes("level_start_index", spatialShapes);
  const starts: number[] = [];
  let s = 0;
  for (const [d, h, w] of spatialShapes) {
    starts.push(s);
    s += d * h * w;
  }
  return starts;
}

/** Multi-scale deformable attention core, 3D (CoTr / Deformable-DETR):
 * value [N, S, nH, Dh] (levels concatenated along S in the order of spatialShapes, each
 * flattened D, H, W), spatialShapes [[D, H, W], ...], samplingLocations [N, Lq, nH, nL, nP, 3]
 * in [0, 1] with last dim (x→W, y→H, z→D), attentionWeights [N, Lq, nH, nL, nP]
 * → [N, Lq, nH*Dh]. Each sample is trilinear with zeros outside, align_corners=False
 * (voxel coordinate = loc * size - 0.5). Backward for all three tensors. */
export function msDeformAttn3d(
  value: Tensor,
  spatialShapes: readonly SpatialShape3d[],
  samplingLocations: Tensor,
  attentionWeights: Tensor,
): Tensor {
  const op = "ms_deform_attn3d";
  expectFloat(op, "value", value);
  expectFloat(op, "sampling_locations", samplingLocations);
  expectFloat(op, "attention_weights", attentionWeights);
  expectRank(op, "value", value, 4);
  expectRank(op, "sampling_locations", samplingLocations, 6);
  expectRank(op, "attention_weights", attentionWeights, 5);
  checkSpatialShapes(op, spatialShapes);
  const [N, S, nH, Dh] = value.shape as [number, number, number, number];
  const [Nl, Lq, nHl, nL, nP, three] = samplingLocations.shape as [number, number, number, number, number, number];
  const shapes = `value ${shapeStr(value.shape)}, sampling_locations ${shapeStr(samplingLocations.shape)}, attention_weights ${shapeStr(attentionWeights.shape)}`;
  if (three !== 3) throw new PulmoError(`${op}: 'sampling_locations' must have last dimension 3 (x, y, z) (${shapes})`);
  if (Nl !== N || nHl !== nH)
    throw new PulmoError(`${op}: 'sampling_locations' must be [N=${N}, Lq, nH=${nH}, nL, nP, 3] to match 'value' (${shapes})`);
  if (nL !== spatialShapes.length)
    throw new PulmoError(`${op}: 'sampling_locations' has ${nL} levels but 'spatial_shapes' lists ${spatialShapes.length} (${shapes})`);
  if (nL > MAX_LEVELS) throw new PulmoError(`${op}: at most ${MAX_LEVELS} levels are supported, got ${nL}`);
  const aw = attentionWeights.shape;
  if (aw.some((d, i) => d !== samplingLocations.shape[i]))
    throw new PulmoError(`${op}: 'attention_weights' must be ${shapeStr([N, Lq, nH, nL, nP])} (${shapes})`);
  const starts = levelStartIndex(spatialShapes);
  const total = starts[nL - 1]! + numel(spatialShapes[nL - 1]!);
  if (total !== S)
    throw new PulmoError(
      `${op}: 'value' has S=${S} but 'spatial_shapes' ${JSON.stringify(spatialShapes)} sum to ${total} voxels (sum of D*H*W) (${shapes})`,
    );
  const device = expectSameDevice(op, value, samplingLocations, attentionWeights);
  // over one storage binding: pieces of (sample, query range), value whole per sample (split.ts)
  if (overBindingLimit(device, value.bytes, samplingLocations.bytes, 8 * attentionWeights.bytes, N * Lq * nH * Dh * 4))
    return splitDeformAttn(op, value, samplingLocations, attentionWeights, ([v, l, a]) => msDeformAttn3d(v!, spatialShapes, l!, a!));
  const levels = spatialShapes.flatMap(([d, h, w], l) => [d, h, w, starts[l]!]);
  const dims = { Lq, S, nH, Dh, nL, nP, levels };
  const y = Tensor.empty(device, [N, Lq, nH * Dh], "f32", op);
  // one invocation per (n, q, h) and block of CPI channels (sample geometry shared by the
  // block); with Dh % 4 == 0 the block is read and written as vec4s (entry main4)
  const vec4 = Dh % 4 === 0 && FWD_CPI % 4 === 0;
  const cpi = vec4 ? Math.min(FWD_CPI, Dh) : Math.min(FWD_CPI, Math.max(Dh, 1));
  const invocations = N * Lq * nH * Math.ceil(Dh / cpi);
  device.dispatch({
    kernel: "attention/ms_deform_attn3d",
    entry: vec4 ? "main4" : "main",
    constants: { CPI: cpi },
    bindings: vec4
      ? { value4: value, loc: samplingLocations, attn: attentionWeights, y4: y }
      : { value, loc: samplingLocations, attn: attentionWeights, y },
    uniforms: { total: invocations, ...dims },
    workgroups: groups1d(invocations),
    label: label(op, value, samplingLocations, attentionWeights),
  });
  const wantValue = value.requiresGrad;
  const wantLoc = samplingLocations.requiresGrad;
  const wantAttn = attentionWeights.requiresGrad;
  const valueShape = [...value.shape];
  const locShape = [...samplingLocations.shape];
  const attnShape = [...attentionWeights.shape];
  return record(op, y, [value, samplingLocations, attentionWeights], [value, samplingLocations, attentionWeights], (dy, [vs, ls, as]) => {
    const samples = N * Lq * nH * nL * nP;
    // grad value: samples keyed by the padded base voxel of their corner cell, (D+1)(H+1)(W+1) per level
    const padStarts: number[] = [];
    let Sp = 0;
    for (const [d, h, w] of spatialShapes) {
      padStarts.push(Sp);
      Sp += (d + 1) * (h + 1) * (w + 1);
    }
    const numKeys = N * Sp * nH;
    const needValue = wantValue && samples > 0 && Dh > 0;
    const gradLoc = wantLoc ? Tensor.empty(device, locShape, "f32", "grad loc") : unused(device);
    const gradAttn = wantAttn ? Tensor.empty(device, attnShape, "f32", "grad attn") : unused(device);
    const keys = needValue ? Tensor.empty(device, [samples], "u32", "sample keys") : unused(device, "u32");
    const geo = needValue ? Tensor.empty(device, [samples, 4], "f32", "sample geometry") : Tensor.empty(device, [4], "f32", "unused");
    const bdims = { ...dims, num_keys: numKeys, pad_starts: padStarts, Sp };
    if (needValue || wantLoc || wantAttn)
      device.dispatch({
        kernel: "attention/ms_deform_attn3d_backward",
        constants: { WANT_VALUE: needValue ? 1 : 0, WANT_LOC: wantLoc ? 1 : 0, WANT_ATTN: wantAttn ? 1 : 0 },
        bindings: { value: vs!, loc: ls!, attn: as!, dy, grad_loc: gradLoc, grad_attn: gradAttn, sample_keys: keys, sample_geo: geo },
        uniforms: { total: samples, ...bdims },
        workgroups: groups1d(samples),
        label: label(`${op}_backward`, vs, ls, as),
      });
    let gradValue: Tensor | null = null;
    if (needValue) gradValue = deformValueGrad(device, keys, geo, samples, numKeys, dy, valueShape, { S, nH, Dh, nL, nP, levels, padStarts, Sp });
    else {
      keys.dispose();
      if (wantValue) gradValue = Tensor.zeros(device, valueShape);
    }
    geo.dispose();
    if (!wantLoc) gradLoc.dispose();
    if (!wantAttn) gradAttn.dispose();
    return [gradValue, wantLoc ? gradLoc : null, wantAttn ? gradAttn : null];
  });
}

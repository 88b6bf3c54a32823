import { PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, expectRank, groups1d, label, spreadsOverSubgroup } from "../launch.ts";
import { overBindingLimit, splitChannels } from "./split.ts";

export type UpsampleMode = "nearest" | "linear" | "bilinear" | "trilinear";

export interface UpsampleOptions {
  /** output = floor(input * scale) per spatial dim (one number for all dims, or one per dim) */
  scale?: number | readonly number[];
  /** explicit output spatial size (instead of scale) */
  size?: number | readonly number[];
  /** "nearest" (default; PyTorch's 'nearest', not 'nearest-exact'), or linear interpolation:
   * "linear" for any rank, "bilinear" (rank 4) and "trilinear" (rank 5) as in PyTorch */
  mode?: UpsampleMode;
  /** linear modes only; default false */
  alignCorners?: boolean;
}

/** Inputs per invocation along the axis in the backward (resample/upsample_axis override VB). */
const VB = 16;
/** Inputs per invocation along the axis in the ×2 backward's H and D passes (upsample_axis override SEG). */
const SEG = 8;
/** Input rows per invocation of the ×2 backward's fused W+H pass (x2hw4 / x2hw; paired at 32³: 16 and 32 ≈ 0.9× the time of 8). */
const HWSEG = 32;
/** Most workgroups the ×2 forward launches (main2x grid-strides over its blocks; llvmpipe pays
 * per workgroup, and 1024 × 64 invocations fill any GPU). */
const MAX_GROUPS = 1024;
/** H blocks one main2x4 invocation walks (resample/upsample override HSEG). */
const HSEG = 8;
/** Input rows one main2x8 invocation walks (its HSEG; paired A/B at 32³: 32 ≈ 0.83× the time of 8, 16 ≈ 0.91×). */
const X2SEG = 32;

const fmt = (v: unknown) => (Array.isArray(v) ? shapeStr(v) : String(v));

/** F.interpolate on x [N, C, W], [N, C, H, W] or [N, C, D, H, W] (upsampling or downsampling). */
export function upsample(x: Tensor, opts: UpsampleOptions): Tensor {
  const op = "upsample";
  expectFloat(op, "x", x);
  expectRank(op, "x", x, [3, 4, 5]);
  const mode = opts?.mode ?? "nearest";
  if (!["nearest", "linear", "bilinear", "trilinear"].includes(mode))
    throw new PulmoError(`${op}: unknown mode '${mode}' (nearest, linear, bilinear or trilinear)`);
  if (mode === "bilinear" && x.rank !== 4) throw new PulmoError(`${op}: mode 'bilinear' needs a rank-4 'x', got ${shapeStr(x.shape)}`);
  if (mode === "trilinear" && x.rank !== 5) throw new PulmoError(`${op}: mode 'trilinear' needs a rank-5 'x', got ${shapeStr(x.shape)}`);
  const linear = mode !== "nearest";
  const align = opts.alignCorners ?? false;
  if (align && !linear) throw new PulmoError(`${op}: alignCorners is only valid with a linear mode, not '${mode}'`);
  const dims = x.rank - 2;
  const spatial = x.shape.slice(2);
  if (x.shape.slice(1).some((d) => d === 0)) throw new PulmoError(`${op}: 'x' ${shapeStr(x.shape)} has an empty channel or spatial dim`);
  if ((opts.scale === undefined) === (opts.size === undefined))
    throw new PulmoError(`${op}: pass exactly one of 'scale' and 'size'`);

  let out: number[];
  let scales: number[] | null = null;
  if (opts.size !== undefined) {
    out = typeof opts.size === "number" ? new Array<number>(dims).fill(opts.size) : [...opts.size];
    if (out.length !== dims || out.some((d) => !Number.isInteger(d) || d < 1))
      throw new PulmoError(`${op}: 'size' must be ${dims} positive integers for 'x' ${shapeStr(x.shape)}, got ${fmt(opts.size)}`);
  } else {
    scales = typeof opts.scale === "number" ? new Array<number>(dims).fill(opts.scale) : [...opts.scale!];
    if (scales.length !== dims || scales.some((v) => !Number.isFinite(v) || v <= 0))
      throw new PulmoError(`${op}: 'scale' must be ${dims} positive numbers for 'x' ${shapeStr(x.shape)}, got ${fmt(opts.scale)}`);
    out = spatial.map((n, d) => Math.floor(n * scales![d]!));
    if (out.some((d) => d < 1))
      throw new PulmoError(`${op}: 'scale' ${shapeStr(scales)} gives an empty output ${shapeStr(out)} for 'x' ${shapeStr(x.shape)}`);
  }
  // Source pixels per destination pixel, as PyTorch's CPU kernels compute it: the given scale
  // factor's inverse when there is one, in/out for an explicit size. 'nearest' first copies
  // (out == in) or halves (out == 2 in) the index whatever the scale factor (nearest_idx),
  // which ratios 1 and 0.5 reproduce exactly.
  const ratio = spatial.map((n, d) => {
    const o = out[d]!;
    if (linear && align) return o > 1 ? (n - 1) / (o - 1) : 0;
    if (!linear && o === n) return 1;
    if (!linear && o === 2 * n) return 0.5;
    return scales ? 1 / scales[d]! : n / o;
  });
  const pad = <T>(a: T[], fill: T) => [...new Array<T>(3 - dims).fill(fill), ...a];
  const geometry = { ind: pad(spatial, 1), outd: pad(out, 1), ratio: pad(ratio, 1), align: align ? 1 : 0 };
  const constants = { MODE: linear ? 1 : 0 };
  const device = x.device;
  const xShape = x.shape;
  // the backward's per-axis passes hold [.., Do, Ho, Wi] and [.., Do, Hi, Wi] in between
  const [ind, outd] = [geometry.ind, geometry.outd];
  const between = [numel([...x.shape.slice(0, 2), outd[0]!, outd[1]!, ind[2]!]), numel([...x.shape.slice(0, 2), outd[0]!, ind[1]!, ind[2]!])];
  if (overBindingLimit(device, x.bytes, numel([...x.shape.slice(0, 2), ...out]) * 4, ...between.map((e) => e * 4))) {
    // per (sample, channel range): the same options on [1, c, ...] pieces give the same ratios
    return splitChannels(`${op}_${mode}`, [x], [...x.shape.slice(0, 2), ...out], ([xs]) => upsample(xs!, opts));
  }
  const y = Tensor.empty(device, [...x.shape.slice(0, 2), ...out]);
  const outSp = outd, inSp = ind;
  const nc = x.shape[0]! * x.shape[1]!;
  // ×2 fast paths (resample/upsample near2x4, main2x4 / main2x): W doubled at ratio 0.5 exactly,
  // D and H each doubled the same way or kept at ratio 1 (2D and 1D: size-1 dims); linear ones
  // without align_corners
  const doubled = (d: number) => outSp[d] === 2 * inSp[d]! && geometry.ratio[d] === 0.5;
  const kept = (d: number) => outSp[d] === inSp[d] && geometry.ratio[d] === 1;
  const x2dims = doubled(2) && [0, 1].every((d) => doubled(d) || kept(d));
  if (!linear && x2dims && inSp[2]! % 2 === 0) {
    // nearest ×2, even input W (resample/upsample near2x4): each input pair copied to a vec4
    const pairs = nc * inSp[0]! * inSp[1]! * (inSp[2]! / 2);
    device.dispatch({
      kernel: "resample/upsample",
      entry: "near2x4",
      constants,
      bindings: { src: x, dst4: y },
      uniforms: { ...geometry, n: pairs, x2: (doubled(0) ? 1 : 0) | (doubled(1) ? 2 : 0) },
      workgroups: Math.min(groups1d(pairs), MAX_GROUPS),
      label: label(`${op}_${mode}`, x),
    });
  } else if (linear && !align && x2dims) {
    // input W a multiple of 4: each input quad a vec4 load, 8 outputs per row (main2x8, walking
    // HSEG input rows down H); else even W: vec4 stores, blocks of 4 aligned outputs (main2x4);
    // else main2x's 4k − 1 .. 4k + 2
    const entry = inSp[2]! % 4 === 0 ? "main2x8" : inSp[2]! % 2 === 0 ? "main2x4" : "main2x";
    const wBlocks = entry === "main2x8" ? inSp[2]! / 4 : Math.floor(inSp[2]! / 2) + (entry === "main2x4" ? 0 : 1);
    // main2x4 walks HSEG H blocks per invocation (sliding its input rows), main2x8 HSEG input rows
    const hBlocks = doubled(1) ? inSp[1]! + 1 : inSp[1]!;
    const hSteps = entry === "main2x8" ? Math.ceil(inSp[1]! / X2SEG) : entry === "main2x4" ? Math.ceil(hBlocks / HSEG) : hBlocks;
    const blocks = nc * (doubled(0) ? inSp[0]! + 1 : inSp[0]!) * hSteps * wBlocks;
    device.dispatch({
      kernel: "resample/upsample",
      entry,
      constants: entry === "main2x" ? constants : { ...constants, HSEG: entry === "main2x8" ? X2SEG : HSEG },
      bindings: entry === "main2x8" ? { src: x, src4: x, dst4: y } : entry === "main2x4" ? { src: x, dst4: y } : { src: x, dst: y },
      uniforms: { ...geometry, n: blocks, x2: (doubled(0) ? 1 : 0) | (doubled(1) ? 2 : 0) },
      workgroups: Math.min(groups1d(blocks), MAX_GROUPS),
      label: label(`${op}_${mode}`, x),
    });
  } else {
    // any ratio (resample/upsample mainh4 / mainh): W quads walking HSEG output rows down H
    const blocks = nc * outSp[0]! * Math.ceil(outSp[1]! / HSEG) * Math.ceil(outSp[2]! / 4);
    // output rows a multiple of 4 long: each quad is one vec4 (16-byte stores)
    const v4 = outSp[2]! % 4 === 0;
    device.dispatch({
      kernel: "resample/upsample",
      entry: v4 ? "mainh4" : "mainh",
      constants: { ...constants, HSEG, COLS: windowColumns(inSp[2]!, outSp[2]!, geometry.ratio[2]!, linear, align) },
      bindings: v4 ? { src: x, dst4: y } : { src: x, dst: y },
      uniforms: { ...geometry, n: blocks, x2: 0 },
      workgroups: Math.min(groups1d(blocks), MAX_GROUPS),
      label: label(`${op}_${mode}`, x),
    });
  }
  return record(op, y, [x], [], (dy) => {
    // the adjoint one axis at a time, W then H then D: [nc, Do, Ho, Wo] → … → [nc, Di, Hi, Wi];
    // an identity axis is skipped (W always runs)
    let cur = dy;
    const shape = [...outSp];
    // ×2 along d (linear without align_corners, or nearest): fixed adjoint weights
    const x2 = (d: number) => !align && doubled(d);
    // linear without align_corners at an integer factor S (out = S in, ratio exactly 1 / S): S, else 0
    const factor = (d: number) => {
      const f = outSp[d]! / inSp[d]!;
      return linear && !align && Number.isInteger(f) && f >= 2 && f <= 64 && geometry.ratio[d] === 1 / f ? f : 0;
    };
    // W and H both ×2: one fused pass (x2hw4 / x2hw) [.., Ho, Wo] → [.., Hi, Wi], no intermediate
    const fusedHW = x2(2) && x2(1);
    for (const d of [2, 1, 0]) {
      if (d === 1 && fusedHW) continue;
      // an identity axis (size kept at ratio 1: every mode copies; size 1 on both sides) is skipped
      if (d < 2 && inSp[d] === outSp[d] && (inSp[d] === 1 || geometry.ratio[d] === 1)) continue;
      const inner = shape.slice(d + 1).reduce((a, b) => a * b, 1);
      shape[d] = inSp[d]!;
      if (d === 2 && fusedHW) shape[1] = inSp[1]!;
      const next = Tensor.empty(device, [nc, ...shape]);
      const uniforms = { inner, len_in: inSp[d]!, len_out: outSp[d]!, ratio: geometry.ratio[d]!, align: geometry.align };
      const tag = label(`${op}_${mode}_backward`, dy);
      if (d === 2 && fusedHW) {
        // the axis is H, inner the input W
        const threads = nc * shape[0]! * Math.ceil(inSp[1]! / HWSEG) * Math.ceil(inSp[2]! / 4);
        const v4 = inSp[2]! % 4 === 0;
        // subgroups of at least 8 lanes: x2hw4_sg (upsample_axis_sg) takes the dy rows' neighbour
        // columns from the lanes beside instead of loading them
        const sg = v4 && spreadsOverSubgroup(device);
        device.dispatch({
          kernel: sg ? "resample/upsample_axis_sg" : "resample/upsample_axis",
          entry: sg ? "x2hw4_sg" : v4 ? "x2hw4" : "x2hw",
          constants: { ...constants, SEG: HWSEG },
          bindings: v4 ? { src: cur, src4: cur, dst4: next } : { src: cur, src4: cur, dst: next },
          uniforms: { inner: inSp[2]!, len_in: inSp[1]!, len_out: outSp[1]!, ratio: geometry.ratio[1]!, align: geometry.align, n: threads },
          workgroups: groups1d(threads),
          label: tag,
        });
      } else if (x2(d)) {
        // ×2 fast path (resample/upsample_axis x2w4 / x2w / x2i4 / x2i): weights 0.25, 0.75, 0.75, 0.25 (nearest 0, 1, 1, 0);
        // the *4 entries where the axis (W) or inner (H, D) is a multiple of 4
        const v4 = d === 2 ? inSp[2]! % 4 === 0 : inner % 4 === 0;
        const threads = d === 2 ? (next.size / inSp[2]!) * Math.ceil(inSp[2]! / 4) : (next.size / inSp[d]! / (v4 ? 4 : 1)) * Math.ceil(inSp[d]! / SEG);
        device.dispatch({
          kernel: "resample/upsample_axis",
          entry: d === 2 ? (v4 ? "x2w4" : "x2w") : v4 ? "x2i4" : "x2i",
          constants: d === 2 ? constants : { ...constants, SEG },
          bindings: !v4 ? { src: cur, dst: next } : d === 2 ? { src: cur, src4: cur, dst4: next } : { src4: cur, dst4: next },
          uniforms: { ...uniforms, n: threads },
          workgroups: groups1d(threads),
          label: tag,
        });
      } else if (factor(d) > 2) {
        // linear ×S, S > 2 (upsample_axis xs): fixed triangle weights over 2S outputs per input
        device.dispatch({
          kernel: "resample/upsample_axis",
          entry: "xs",
          constants: { ...constants, S: factor(d) },
          bindings: { src: cur, dst: next },
          uniforms: { ...uniforms, n: next.size },
          workgroups: groups1d(next.size),
          label: tag,
        });
      } else {
        const threads = (next.size / inSp[d]!) * Math.ceil(inSp[d]! / VB);
        device.dispatch({
          kernel: "resample/upsample_axis",
          entry: "main",
          constants: { ...constants, VB },
          bindings: { src: cur, dst: next },
          uniforms: { ...uniforms, n: threads },
          workgroups: groups1d(threads),
          label: tag,
        });
      }
      if (cur !== dy) cur.dispose();
      cur = next;
    }
    const dx = cur.reshape(xShape);
    cur.dispose();
    return [dx];
  });
}

/** resample/upsample's COLS: the most input columns the W taps of one quad of 4 outputs span
 * (f64 here, f32 on the device: a quad that rounds onto one column more takes the kernel's direct
 * path, so this need only be right almost everywhere), 0 beyond 8 (strong W downsampling: every
 * quad takes the direct path). */
function windowColumns(inW: number, outW: number, r: number, linear: boolean, align: boolean): number {
  const first = (o: number) => {
    const s = !linear ? Math.floor(o * r) : align ? r * o : Math.max(r * (o + 0.5) - 0.5, 0);
    return Math.min(Math.floor(s), inW - 1);
  };
  // long rows: the bound floor(a + 3r) − floor(a) ≤ ceil(3r), plus the second tap, instead of a scan
  if (outW > 4096) {
    const bound = Math.ceil(3 * r) + (linear ? 2 : 1);
    return bound > 8 ? 0 : Math.min(bound, inW);
  }
  let span = 0;
  for (let ow = 0; ow < outW && span <= 8; ow += 4) {
    const lastTap = first(Math.min(ow + 3, outW - 1)) + (linear ? 1 : 0);
    span = Math.max(span, Math.min(lastTap, inW - 1) - first(ow) + 1);
  }
  return span > 8 ? 0 : span;
}

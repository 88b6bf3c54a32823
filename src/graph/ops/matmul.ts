// Batched matmul and linear on the register-tiled GEMM of kernels/matmul/matmul.wgsl (matmul_sg.wgsl
// where the device has subgroups of >= 8 lanes). Backward rules are GEMMs reading operands
// transposed in place (TRANS_A / TRANS_B), summed over broadcast batch dims.
import { PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { overBindingLimit, splitRows, unsplittable } from "./split.ts";
import { contiguousStrides, expectFloat, expectRank, expectSameDevice, label, spreadsOverSubgroup } from "../launch.ts";
import { broadcastShapes, sumToShape } from "./elementwise.ts";

/** Lanes per workgroup along N (kernels/matmul/matmul.wgsl's workgroup size). */
const LANES = 64;
/** Largest register block per invocation (rows x columns), the kernel's array bounds. */
const MAX_RM = 16;
const MAX_RN = 8;
/** matmul_sg.wgsl: rows per invocation up to 32 (its a loads are spread over 8 lanes, so taller
 * blocks cost few loads), RM * RN within the same 128 accumulators. */
const SG_MAX_RM = 32;
const SG_ACC = 128;
/** Smallest power of two >= n, capped at `max`. */
const block = (n: number, max: number) => Math.min(max, 2 ** Math.ceil(Math.log2(Math.max(1, n))));
/** Coalesced batch dims the kernel decodes (one vec4 of the uniform). */
const MAX_BATCH_DIMS = 4;

/**
 * c = op(a) @ op(b) (+ bias) over broadcast batch dims; no autograd.
 * a is stored [...batchA, M, K] ([..., K, M] when transA), b [...batchB, K, N] ([..., N, K] when
 * transB). The result is contiguous [...broadcast(batchA, batchB), M, N], or `outShape` when
 * given (same element count).
 */
export function gemm(
  op: string,
  a: Tensor,
  transA: boolean,
  b: Tensor,
  transB: boolean,
  bias: Tensor | null = null,
  outShape?: readonly number[],
): Tensor {
  const ra = a.shape.at(-2)!, ca = a.shape.at(-1)!;
  const rb = b.shape.at(-2)!, cb = b.shape.at(-1)!;
  const M = transA ? ca : ra;
  const K = transA ? ra : ca;
  const Kb = transB ? cb : rb;
  const N = transB ? rb : cb;
  if (K !== Kb) throw new PulmoError(`${op}: inner dims differ (${K} vs ${Kb}) for ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batch = broadcastShapes(batchA, batchB);
  if (!batch) throw new PulmoError(`${op}: batch dims ${shapeStr(batchA)} and ${shapeStr(batchB)} do not broadcast`);
  const shape = [...batch, M, N];
  const y = Tensor.empty(a.device, outShape ?? shape);
  if (y.size === 0) return y;

  // Batch strides of each operand over the broadcast batch dims (0 where broadcast), then
  // coalesced: unit dims dropped, neighbours merged when both operands stay contiguous.
  const strides = (bs: readonly number[], mat: number) => {
    const s = contiguousStrides(bs).map((v) => v * mat);
    return batch.map((d, i) => {
      const j = i - (batch.length - bs.length);
      return j < 0 || (bs[j] === 1 && d !== 1) ? 0 : s[j]!;
    });
  };
  const sa = strides(batchA, ra * ca);
  const sb = strides(batchB, rb * cb);
  const dims: { e: number; a: number; b: number }[] = [];
  batch.forEach((e, i) => {
    if (e === 1) return;
    const prev = dims.at(-1);
    if (prev && prev.a === sa[i]! * e && prev.b === sb[i]! * e) dims[dims.length - 1] = { e: prev.e * e, a: sa[i]!, b: sb[i]! };
    else dims.push({ e, a: sa[i]!, b: sb[i]! });
  });
  if (dims.length > MAX_BATCH_DIMS)
    throw new PulmoError(`${op}: batch broadcast of ${shapeStr(a.shape)} and ${shapeStr(b.shape)} needs ${dims.length} batch dims, more than ${MAX_BATCH_DIMS}`);
  while (dims.length < MAX_BATCH_DIMS) dims.unshift({ e: 1, a: 0, b: 0 });
  const total = numel(batch);
  const maxZ = a.device.limits.maxWorkgroupsPerDim;
  // Register block: up to 16 rows x 8 columns per invocation, smaller for small M or N so that
  // tiny products do not compute mostly clamped rows/columns. With subgroups of >= 8 lanes and
  // at least 8 rows, matmul_sg spreads the a loads over the subgroup (RN + RM / 8 loads per k
  // instead of RN + RM; bench/NOTES.md) and takes up to 32 rows x 4 columns.
  const useSg = spreadsOverSubgroup(a.device) && M > 4;
  const RM = useSg ? block(M, SG_MAX_RM) : block(M, MAX_RM);
  const RN = block(Math.ceil(N / LANES), useSg ? Math.min(MAX_RN, SG_ACC / RM) : MAX_RN);
  const tilesN = Math.ceil(N / (LANES * RN));
  const tiles = tilesN * Math.ceil(M / RM);
  const max = a.device.limits.maxWorkgroupsPerDim;
  const ty = Math.ceil(tiles / max);
  for (let batch0 = 0; batch0 < total; batch0 += maxZ) {
    a.device.dispatch({
      kernel: useSg ? "matmul/matmul_sg" : "matmul/matmul",
      constants: { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0, BIAS: bias ? 1 : 0, RM, RN },
      bindings: { a, b, bias: bias ?? a, c: y },
      uniforms: {
        M,
        N,
        K,
        batch0,
        tiles_n: tilesN,
        tiles,
        bshape: dims.map((d) => d.e),
        astr: dims.map((d) => d.a),
        bstr: dims.map((d) => d.b),
      },
      workgroups: [Math.ceil(tiles / ty), ty, Math.min(maxZ, total - batch0)],
      label: label(op, a, b),
    });
  }
  return y;
}

/** A view with new shape, disposing nothing (callers dispose the views they make). */
const view = (t: Tensor, shape: readonly number[]) => t.reshape(shape);

/**
 * Matrix product with PyTorch `torch.matmul` semantics: 1-D operands are promoted (a to
 * [1, K], b to [K, 1]) and the added dim removed from the result; batch dims broadcast.
 * Backward: dA = dY @ B^T and dB = A^T @ dY, summed over the batch dims each operand was
 * broadcast over.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  expectFloat("matmul", "a", a);
  expectFloat("matmul", "b", b);
  expectSameDevice("matmul", a, b);
  if (a.rank < 1) throw new PulmoError(`matmul: 'a' must have rank >= 1, got ${shapeStr(a.shape)}`);
  if (b.rank < 1) throw new PulmoError(`matmul: 'b' must have rank >= 1, got ${shapeStr(b.shape)}`);
  const a2 = a.rank === 1 ? [1, a.shape[0]!] : [...a.shape];
  const b2 = b.rank === 1 ? [b.shape[0]!, 1] : [...b.shape];
  const K = a2.at(-1)!;
  if (b2.at(-2) !== K)
    throw new PulmoError(`matmul: 'a' ${shapeStr(a.shape)} and 'b' ${shapeStr(b.shape)} have different inner dims (${K} vs ${b2.at(-2)})`);
  const batch = broadcastShapes(a2.slice(0, -2), b2.slice(0, -2));
  if (!batch)
    throw new PulmoError(`matmul: batch dims of 'a' ${shapeStr(a.shape)} and 'b' ${shapeStr(b.shape)} do not broadcast`);
  const M = a2.at(-2)!;
  const N = b2.at(-1)!;
  const out2 = [...batch, M, N];
  const outShape = [...batch, ...(a.rank === 1 ? [] : [M]), ...(b.rank === 1 ? [] : [N])];
  // b without batch dims: fold a's batch into M for one large GEMM (more full tiles).
  const fold = b2.length === 2;
  const rows = numel(a2.slice(0, -1));
  if (overBindingLimit(a.device, a.bytes, b.bytes, numel(outShape) * 4)) {
    // over one storage binding: runs of whole rows of a against the whole b (split.ts)
    if (!fold || a.rank < 2)
      throw unsplittable("matmul", "a", a, a.device.limits.maxBindingBytes, "only a [..., M, K] @ b [K, N] product splits (by rows of a); this one is batched or 1-D");
    return splitRows("matmul", a, K, [b], outShape, ([as, bs]) => matmul(as!, bs!));
  }
  const av = view(a, fold ? [rows, K] : a2);
  const bv = view(b, b2);
  const y = gemm("matmul", av, false, bv, false, null, outShape);
  av.dispose();
  bv.dispose();

  const needA = a.requiresGrad;
  const needB = b.requiresGrad;
  const aShape = a.shape;
  const bShape = b.shape;
  // dA reads b, dB reads a: save only what the needed gradients read.
  const save = [...(needB ? [a] : []), ...(needA ? [b] : [])];
  return record("matmul", y, [a, b], save, (dy, saved) => {
    const dY = view(dy, fold ? [rows, N] : out2);
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (needA) {
      const B = view(saved[needB ? 1 : 0]!, b2);
      const full = gemm("matmul_backward_a", dY, false, B, true);
      B.dispose();
      da = reduceTo(full, fold ? [rows, K] : a2, aShape);
    }
    if (needB) {
      // With b shared (fold), A^T @ dY over the folded rows already sums over a's batch.
      const A = view(saved[0]!, fold ? [rows, K] : a2);
      const full = gemm("matmul_backward_b", A, true, dY, false);
      A.dispose();
      db = reduceTo(full, b2, bShape);
    }
    dY.dispose();
    return [da, db];
  });
}

/** Sums a full-batch gradient down to an operand's (promoted) shape, then views it as the
 * operand's own shape; disposes `full`. */
function reduceTo(full: Tensor, promoted: readonly number[], shape: readonly number[]): Tensor {
  const summed = sumToShape(full, promoted);
  full.dispose();
  const g = summed.reshape(shape);
  summed.dispose();
  return g;
}

/**
 * y = x @ weight^T + bias (torch.nn.functional.linear): x [..., in] of any rank >= 1,
 * weight [out, in], bias [out] or omitted. The leading dims of x fold into one GEMM.
 * Backward: dX = dY @ W, dW = dY^T @ X, db = column sums of dY.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  expectFloat("linear", "x", x);
  expectFloat("linear", "weight", weight);
  expectRank("linear", "weight", weight, 2);
  if (bias) {
    expectFloat("linear", "bias", bias);
    expectSameDevice("linear", x, weight, bias);
  } else expectSameDevice("linear", x, weight);
  if (x.rank < 1) throw new PulmoError(`linear: 'x' must have rank >= 1, got ${shapeStr(x.shape)}`);
  const [out, inF] = weight.shape as [number, number];
  if (x.shape.at(-1) !== inF)
    throw new PulmoError(`linear: last dim of 'x' ${shapeStr(x.shape)} must equal in_features of 'weight' ${shapeStr(weight.shape)} (${inF})`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== out))
    throw new PulmoError(`linear: 'bias' must have shape [${out}] for 'weight' ${shapeStr(weight.shape)}, got ${shapeStr(bias.shape)}`);
  const rows = numel(x.shape.slice(0, -1));
  const outShape = [...x.shape.slice(0, -1), out];
  // over one storage binding: runs of whole rows (tokens), weight and bias whole (split.ts)
  if (overBindingLimit(x.device, x.bytes, rows * out * 4))
    return splitRows("linear", x, inF, [weight, bias ?? null], outShape, ([xs, w, b]) => linear(xs!, w!, b));
  const x2 = view(x, [rows, inF]);
  const y = gemm("linear", x2, false, weight, true, bias ?? null, outShape);
  x2.dispose();

  const needX = x.requiresGrad;
  const needW = weight.requiresGrad;
  const needB = !!bias?.requiresGrad;
  const xShape = x.shape;
  const saved = needW ? [x, weight] : [weight];
  return record("linear", y, [x, weight, bias], saved, (dy, s) => {
    const w = needW ? s[1]! : s[0]!;
    const dY = view(dy, [rows, out]);
    const dx = needX ? gemm("linear_backward_x", dY, false, w, false, null, xShape) : null;
    let dw: Tensor | null = null;
    if (needW) {
      const X = view(s[0]!, [rows, inF]);
      dw = gemm("linear_backward_weight", dY, true, X, false);
      X.dispose();
    }
    const dbias = needB ? sumToShape(dY, [out]) : null;
    dY.dispose();
    return [dx, dw, dbias];
  });
}

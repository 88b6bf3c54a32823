import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { uniformF32 } from "../random.ts";
import {
  Tensor,
  backward,
  batchNorm,
  conv2d,
  conv3d,
  convTranspose2d,
  convTranspose3d,
  add,
  instanceNorm,
  mul,
  permute,
  reshape,
  slice,
  sub,
  sum,
  mean,
  transpose,
  layerNorm,
  linear,
  matmul,
  msDeformAttn3d,
  softmax,
  PulmoError,
  maxPool2d,
  maxPool3d,
  tidy,
  upsample,
  type Device,
} from "../../src/node.ts";

// Backward through ops whose activations (and so their gradients) exceed one storage binding
// (lowered here to 4 KiB): each op's output and every input gradient on the lowered-limit device
// must equal the unsplit ones on a normal device, for the same inputs and output gradient.
const LIMIT = 4096;
const MIB = 1 << 20;
const DEFORM_LEVELS: [number, number, number][] = [[2, 3, 4], [1, 2, 2]];

function expectClose(got: Float32Array, ref: Float32Array, what: string, rel = 2e-5): void {
  expect(got.length, what).toBe(ref.length);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref[i]!));
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  expect(maxRef, what).toBeGreaterThan(0);
  expect(maxDiff, what).toBeLessThanOrEqual(rel * maxRef);
}

const seeded = (d: Device, shape: number[], seed: number, lo = -1, hi = 1) =>
  Tensor.from(d, uniformF32(shape.reduce((a, b) => a * b, 1), seed, lo, hi), shape);

interface Case {
  /** input shapes (seeded from 10 + index; `ranges` overrides the value range) */
  shapes: number[][];
  ranges?: ([number, number] | undefined)[];
  /** indices of the inputs that get gradients */
  grad: number[];
  /** inputs that the op reads but never differentiates (running statistics) */
  extra?: number[][];
  op: (xs: Tensor[], extra: Tensor[]) => Tensor;
  /** the lowered binding limit (default LIMIT) */
  limit?: number;
}

/** y, every requested input gradient and the extra tensors after the step, as host arrays. */
async function run(d: Device, c: Case): Promise<{ y: Float32Array; grads: Float32Array[]; extra: Float32Array[]; bytes: number }> {
  const xs = c.shapes.map((s, i) => seeded(d, s, 10 + i, ...(c.ranges?.[i] ?? [-1, 1])));
  c.grad.forEach((i) => (xs[i]!.requiresGrad = true));
  const extra = (c.extra ?? []).map((s, i) => seeded(d, s, 50 + i, 0.5, 1.5));
  const y = tidy(d, () => {
    const y = c.op(xs, extra);
    backward(y, [seeded(d, [...y.shape], 99)]);
    return y;
  });
  const out = {
    y: await y.readFloat(),
    grads: await Promise.all(c.grad.map((i) => xs[i]!.grad!.readFloat())),
    extra: await Promise.all(extra.map((t) => t.readFloat())),
    bytes: Math.max(y.bytes, ...xs.map((t) => t.bytes)),
  };
  for (const t of [...xs, ...extra]) {
    t.grad?.dispose();
    t.dispose();
  }
  y.dispose();
  return out;
}

const cases: Record<string, Case> = {
  "instance norm, affine (unaligned channels)": {
    shapes: [[2, 5, 7, 9, 10], [5], [5]],
    ranges: [undefined, [0.5, 1.5]],
    grad: [0, 1, 2],
    op: ([x, w, b]) => instanceNorm(x!, w!, b!),
  },
  "instance norm, no affine": { shapes: [[1, 3, 8, 8, 8]], grad: [0], op: ([x]) => instanceNorm(x!, null, null) },
  "batch norm, eval": {
    shapes: [[2, 5, 7, 9, 10], [5], [5]],
    grad: [0, 1, 2],
    extra: [[5], [5]],
    op: ([x, w, b], [rm, rv]) => batchNorm(x!, w!, b!, { training: false, runningMean: rm, runningVar: rv }),
  },
  "batch norm, training (statistics over N·D·H·W), running statistics updated": {
    shapes: [[2, 5, 6, 8, 10], [5], [5]],
    ranges: [[-1, 3], [0.5, 1.5]],
    grad: [0, 1, 2],
    extra: [[5], [5]],
    op: ([x, w, b], [rm, rv]) => batchNorm(x!, w!, b!, { training: true, momentum: 0.3, runningMean: rm, runningVar: rv }),
  },
  "batch norm, training, one channel over every sample exceeds the limit (statistics across slabs)": {
    shapes: [[3, 2, 8, 8, 8], [2], [2]],
    ranges: [[-1, 3], [0.5, 1.5]],
    grad: [0, 1, 2],
    extra: [[2], [2]],
    op: ([x, w, b], [rm, rv]) => batchNorm(x!, w!, b!, { training: true, momentum: 0.2, runningMean: rm, runningVar: rv }),
  },
  "batch norm, training, [N, C] input": {
    shapes: [[300, 7], [7]],
    grad: [0, 1],
    op: ([x, w]) => batchNorm(x!, w!, null, { training: true }),
  },
  "max pool 3d k3 s2 p1": { shapes: [[2, 3, 9, 8, 10]], grad: [0], op: ([x]) => maxPool3d(x!, { kernel: 3, stride: 2, padding: 1 }) },
  "max pool 2d k2, unbatched": { shapes: [[3, 30, 21]], grad: [0], op: ([x]) => maxPool2d(x!, { kernel: 2 }) },
  "upsample trilinear ×2": { shapes: [[2, 3, 4, 5, 6]], grad: [0], op: ([x]) => upsample(x!, { scale: 2, mode: "trilinear" }) },
  "upsample nearest (1, 1.5, 1)": { shapes: [[2, 5, 7, 9, 10]], grad: [0], op: ([x]) => upsample(x!, { scale: [1, 1.5, 1], mode: "nearest" }) },
  "upsample bilinear align corners": {
    shapes: [[2, 3, 30, 21]],
    grad: [0],
    op: ([x]) => upsample(x!, { size: [41, 24], mode: "bilinear", alignCorners: true }),
  },
  "linear (token rows)": { shapes: [[2, 50, 12], [10, 12], [10]], grad: [0, 1, 2], op: ([x, w, b]) => linear(x!, w!, b!) },
  "matmul [.., M, K] @ [K, N]": { shapes: [[3, 40, 12], [12, 9]], grad: [0, 1], op: ([a, b]) => matmul(a!, b!) },
  "layer norm, last dim": { shapes: [[120, 16], [16], [16]], grad: [0, 1, 2], op: ([x, w, b]) => layerNorm(x!, w!, b!) },
  "layer norm over [4, 4]": {
    shapes: [[70, 4, 4], [4, 4], [4, 4]],
    grad: [0, 1, 2],
    op: ([x, w, b]) => layerNorm(x!, w!, b!, { normalizedShape: [4, 4] }),
  },
  "softmax, last dim": { shapes: [[20, 80]], ranges: [[-3, 3]], grad: [0], op: ([x]) => softmax(x!, -1) },
  "softmax, middle dim": { shapes: [[4, 30, 12]], ranges: [[-3, 3]], grad: [0], op: ([x]) => softmax(x!, 1) },
  "deformable attention sampling (query pieces)": {
    shapes: [[2, 28, 2, 4], [2, 60, 2, 2, 2, 3], [2, 60, 2, 2, 2]],
    ranges: [undefined, [0, 1], [0, 1]],
    grad: [0, 1, 2],
    op: ([v, l, a]) => msDeformAttn3d(v!, DEFORM_LEVELS, l!, a!),
  },
  "mul, same shapes": { shapes: [[3, 20, 30], [3, 20, 30]], grad: [0, 1], op: ([a, b]) => mul(a!, b!) },
  "add, b broadcast over rows": { shapes: [[60, 24], [1, 24]], grad: [0, 1], op: ([a, b]) => add(a!, b!) },
  "sub, a broadcast over the leading dim (b varies)": { shapes: [[40, 1], [3, 40, 12]], grad: [0, 1], op: ([a, b]) => sub(a!, b!) },
  "transpose [N, C, S] → [N, S, C]": { shapes: [[2, 12, 90]], grad: [0], op: ([x]) => transpose(x!, 1, 2) },
  "permute of a 5D tensor": { shapes: [[2, 3, 4, 10, 9]], grad: [0], op: ([x]) => permute(x!, [0, 3, 1, 4, 2]) },
  "sum of everything (partial sums added)": { shapes: [[3, 20, 30]], grad: [0], op: ([x]) => sum(x!) },
  "mean over the last dim (row pieces)": { shapes: [[3, 20, 30]], grad: [0], op: ([x]) => mean(x!, [-1]) },
  "mean over (0, 2, 3), keepDim": { shapes: [[2, 3, 10, 20]], grad: [0], op: ([x]) => mean(x!, [0, 2, 3], true) },
  "slice along the middle dim": { shapes: [[2, 30, 24]], grad: [0], op: ([x]) => slice(x!, 1, 5, 27) },
  // convolutions run on a 1 MiB limit: the weight gradient's partial sums (conv.ts, at most
  // 16 MiB, far under a real 128 MiB binding) must themselves fit the lowered binding
  "conv3d k3 p1 + bias": { shapes: [[2, 3, 10, 24, 200], [4, 3, 3, 3, 3], [4]], grad: [0, 1, 2], op: ([x, w, b]) => conv3d(x!, w!, b!, { padding: 1 }), limit: MIB },
  "conv3d k3 s2 p1": { shapes: [[1, 3, 13, 40, 200], [5, 3, 3, 3, 3]], grad: [0, 1], op: ([x, w]) => conv3d(x!, w!, null, { stride: 2, padding: 1 }), limit: MIB },
  "conv3d dilation 2, groups 2": {
    shapes: [[1, 4, 14, 24, 200], [6, 2, 3, 3, 3], [6]],
    grad: [0, 1, 2],
    op: ([x, w, b]) => conv3d(x!, w!, b!, { dilation: [2, 1, 1], padding: [0, 1, 1], groups: 2 }),
    limit: MIB,
  },
  "conv3d 7³ stem s(1,2,2)": {
    shapes: [[1, 1, 12, 96, 256], [4, 1, 7, 7, 7]],
    grad: [0, 1],
    op: ([x, w]) => conv3d(x!, w!, null, { stride: [1, 2, 2], padding: 3 }),
    limit: MIB,
  },
  "conv2d s(2,1) p1": { shapes: [[2, 3, 300, 240], [4, 3, 3, 3], [4]], grad: [0, 1, 2], op: ([x, w, b]) => conv2d(x!, w!, b!, { stride: [2, 1], padding: 1 }), limit: MIB },
  "conv transpose 3d k2 s2": {
    shapes: [[2, 6, 8, 24, 24], [6, 4, 2, 2, 2], [4]],
    grad: [0, 1, 2],
    op: ([x, w, b]) => convTranspose3d(x!, w!, b!, { stride: 2 }),
    limit: MIB,
  },
  "conv transpose 3d k3 s2 p1 op1": {
    shapes: [[2, 6, 8, 36, 36], [6, 2, 3, 3, 3], [2]],
    grad: [0, 1, 2],
    op: ([x, w, b]) => convTranspose3d(x!, w!, b!, { stride: 2, padding: 1, outputPadding: 1 }),
    limit: MIB,
  },
  "conv transpose 3d k3 s1 p1 (halo on both sides)": {
    shapes: [[1, 3, 12, 80, 100], [3, 2, 3, 3, 3]],
    grad: [0, 1],
    op: ([x, w]) => convTranspose3d(x!, w!, null, { padding: 1 }),
    limit: MIB,
  },
  "conv transpose 2d s2 p1 op1": {
    shapes: [[2, 3, 120, 150], [3, 2, 3, 3]],
    grad: [0, 1],
    op: ([x, w]) => convTranspose2d(x!, w!, null, { stride: 2, padding: 1, outputPadding: 1 }),
    limit: MIB,
  },
};

describe("backward of ops over the storage binding limit", () => {
  const small = useDevice({ limits: { maxBindingBytes: LIMIT } });
  const smallMib = useDevice({ limits: { maxBindingBytes: MIB } });
  const normal = useDevice();

  for (const [name, c] of Object.entries(cases))
    it(`${name}: output and gradients equal the unsplit ones`, async () => {
      const limit = c.limit ?? LIMIT;
      const got = await run(limit === MIB ? smallMib() : small(), c);
      const ref = await run(normal(), c);
      expect(got.bytes).toBeGreaterThan(limit); // really split
      expectClose(got.y, ref.y, "output");
      got.grads.forEach((g, i) => expectClose(g, ref.grads[i]!, `grad of input ${c.grad[i]}`));
      got.extra.forEach((g, i) => expectClose(g, ref.extra[i]!, `extra tensor ${i} after the step`));
    });
});

describe("ops that cannot split over the storage binding limit", () => {
  const small = useDevice({ limits: { maxBindingBytes: LIMIT } });

  it("throw a PulmoError naming op, tensor and limit", () => {
    const d = small();
    tidy(d, () => {
      const z = (shape: number[]) => Tensor.zeros(d, shape);
      // batched matmul: b has batch dims
      expect(() => matmul(z([4, 30, 12]), z([4, 12, 5]))).toThrow(PulmoError);
      expect(() => matmul(z([4, 30, 12]), z([4, 12, 5]))).toThrow(
        /^matmul: 'a' \[4, 30, 12\] \(5760 bytes\) exceeds the 4096-byte storage binding limit and only a .* splits/,
      );
      // a weight passed whole to every row piece
      expect(() => linear(z([2, 100, 40]), z([30, 40]))).toThrow(/^linear: 'input 1' \[30, 40\] \(4800 bytes\) exceeds the 4096-byte storage binding limit/);
      // one row over the limit
      expect(() => layerNorm(z([2, 1100]), null, null)).toThrow(/^layer_norm: one row of 'x' \[2, 1100\].*does not fit the 4096-byte/);
      expect(() => softmax(z([2, 1100, 2]), 1)).toThrow(/^softmax: one row of 'x' .*does not fit the 4096-byte/);
      // one sample's value over the limit
      expect(() => msDeformAttn3d(z([1, 1100, 1, 1]), [[10, 10, 11]], z([1, 4, 1, 1, 1, 3]), z([1, 4, 1, 1, 1]))).toThrow(
        /^ms_deform_attn3d: 'value' \[1, 1100, 1, 1\] \(4400 bytes\) exceeds the 4096-byte storage binding limit/,
      );
    });
  });
});

describe("memory of split backward passes", () => {
  const small = useDevice({ limits: { maxBindingBytes: LIMIT } });

  it("the pool does not grow over repeated split forward + backward steps", async () => {
    const d = small();
    const x = seeded(d, [2, 4, 8, 8, 8], 61); // 16 KiB: every op below splits
    const w = seeded(d, [4], 62, 0.5, 1.5);
    x.requiresGrad = true;
    w.requiresGrad = true;
    const stepOnce = async () => {
      tidy(d, () => {
        const y = upsample(maxPool3d(instanceNorm(x, w, null), { kernel: 2 }), { scale: 2, mode: "trilinear" });
        const z = transpose(reshape(batchNorm(y, w, null, { training: true }), [2, 4, 512]), 1, 2);
        backward(z, [seeded(d, [...z.shape], 63)]);
      });
      for (const t of [x, w]) {
        t.grad?.dispose();
        t.grad = null;
      }
      await d.flush();
    };
    await stepOnce();
    const [allocated, inUse] = [d.pool.allocatedBytes, d.pool.inUseBytes];
    for (let i = 0; i < 3; i++) await stepOnce();
    expect(d.pool.allocatedBytes).toBe(allocated);
    expect(d.pool.inUseBytes).toBe(inUse);
    [x, w].forEach((t) => t.dispose());
  });
});

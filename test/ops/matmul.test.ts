import { describe, expect, it } from "vitest";
import { goldenSuite, poolAfterSteps, useDevice } from "../helpers.ts";
import { uniformF32 } from "../random.ts";
import { Tensor, matmul, linear, backward, PulmoError, type Device } from "../../src/node.ts";

describe("matmul golden cases", () => goldenSuite(["matmul", "linear"]));

const prod = (s: readonly number[]) => s.reduce((n, d) => n * d, 1);

function expectClose(actual: ArrayLike<number>, ref: ArrayLike<number>, tol = 2e-5): void {
  expect(actual.length).toBe(ref.length);
  let scale = 1;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]!));
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - ref[i]!));
  expect(worst / scale).toBeLessThanOrEqual(tol);
}

/** float64 torch.matmul with its gradients for a seed dY: every (promoted) batch z of the
 * broadcast adds its product into the operand batch it came from. */
function refMatmul(a: Float32Array, as: number[], b: Float32Array, bs: number[], dy: Float32Array | null) {
  const A = as.length === 1 ? [1, as[0]!] : as;
  const B = bs.length === 1 ? [bs[0]!, 1] : bs;
  const [M, K] = A.slice(-2) as [number, number];
  const N = B.at(-1)!;
  const ba = A.slice(0, -2), bb = B.slice(0, -2);
  const r = Math.max(ba.length, bb.length);
  const pa = [...new Array(r - ba.length).fill(1), ...ba], pb = [...new Array(r - bb.length).fill(1), ...bb];
  const bo = pa.map((d, i) => Math.max(d, pb[i]!));
  const y = new Float64Array(prod(bo) * M * N);
  const ga = new Float64Array(a.length), gb = new Float64Array(b.length);
  for (let z = 0; z < prod(bo); z++) {
    let rem = z, za = 0, zb = 0, sa = 1, sb = 1;
    for (let d = r - 1; d >= 0; d--) {
      const c = rem % bo[d]!;
      rem = Math.floor(rem / bo[d]!);
      za += (pa[d] === 1 ? 0 : c) * sa;
      zb += (pb[d] === 1 ? 0 : c) * sb;
      sa *= pa[d]!;
      sb *= pb[d]!;
    }
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[za * M * K + m * K + k]! * b[zb * K * N + k * N + n]!;
        y[z * M * N + m * N + n] = s;
        if (dy) {
          const g = dy[z * M * N + m * N + n]!;
          for (let k = 0; k < K; k++) {
            ga[za * M * K + m * K + k]! += g * b[zb * K * N + k * N + n]!;
            gb[zb * K * N + k * N + n]! += g * a[za * M * K + m * K + k]!;
          }
        }
      }
  }
  return { y, ga, gb };
}

function param(d: Device, shape: number[], seed: number, grad = true): [Tensor, Float32Array] {
  const h = uniformF32(prod(shape), seed);
  const t = Tensor.from(d, h, shape);
  t.requiresGrad = grad;
  return [t, h];
}

// The default test device has subgroups where the adapter does (matmul_sg then takes every
// product with M > 4); the second run of each reference suite is the portable matmul.wgsl.
for (const [suffix, options] of [["", undefined], [" (portable kernel, no subgroups)", { subgroups: false }]] as const)
describe("matmul against a float64 reference" + suffix, () => {
  const dev = useDevice(options);
  const cases: [string, number[], number[], number[]][] = [
    ["broadcast batch dims, partial tiles", [2, 1, 37, 45], [3, 45, 70], [2, 3, 37, 70]],
    ["shared rank-2 b (folded into one GEMM)", [3, 5, 33], [33, 40], [3, 5, 40]],
    ["rank-2 a across b's batch", [9, 6], [2, 6, 35], [2, 9, 35]],
    ["vector @ batched matrix", [6], [2, 6, 5], [2, 5]],
    ["matrix @ vector", [4, 7], [7], [4]],
    ["vector @ vector", [7], [7], []],
    // register blocks: a partial 16-row block, two 512-column tiles, K = 13 (no multiple of 4)
    ["partial register blocks over two column tiles", [19, 13], [13, 600], [19, 600]],
    // subgroup kernel: 8-row block (M = 6); 32-row blocks with a partial last block (M = 45,
    // the transposed gradients too) across a 256-column (32 x 4) and a partial column tile
    ["8-row register block", [2, 6, 9], [2, 9, 20], [2, 6, 20]],
    ["32-row register blocks, partial row and column tiles", [45, 17], [17, 300], [45, 300]],
  ];
  for (const [name, as, bs, ys] of cases)
    it(`${name}: ${JSON.stringify(as)} @ ${JSON.stringify(bs)}, forward and both gradients`, async () => {
      const d = dev();
      const [a, ah] = param(d, as, 11);
      const [b, bh] = param(d, bs, 12);
      const dyh = uniformF32(prod(ys), 13);
      const y = matmul(a, b);
      expect(y.shape).toEqual(ys);
      backward(y, [Tensor.from(d, dyh, ys)]);
      const ref = refMatmul(ah, as, bh, bs, dyh);
      expectClose(await y.read(), ref.y);
      expect(a.grad!.shape).toEqual(as);
      expect(b.grad!.shape).toEqual(bs);
      expectClose(await a.grad!.read(), ref.ga);
      expectClose(await b.grad!.read(), ref.gb);
    });

  it("ran the kernel this device selects", () => {
    const d = dev();
    if (options === undefined && (d.subgroupSize ?? 0) >= 8) expect(d.pipelines.kernels).toContain("matmul/matmul_sg");
    if (options !== undefined) {
      expect(d.pipelines.kernels).toContain("matmul/matmul");
      expect(d.pipelines.kernels).not.toContain("matmul/matmul_sg");
    }
  });

  it("inner dim 0 gives zeros; an empty batch gives an empty result", async () => {
    const d = dev();
    const y = matmul(Tensor.from(d, [], [3, 0]), Tensor.from(d, [], [0, 4]));
    expect([...(await y.read())]).toEqual(new Array(12).fill(0));
    expect(matmul(Tensor.from(d, [], [0, 2, 3]), Tensor.from(d, uniformF32(12, 1), [3, 4])).shape).toEqual([0, 2, 4]);
  });

  it("only the gradient that is needed is computed", async () => {
    const d = dev();
    const [a, ah] = param(d, [4, 5], 3, false);
    const [b, bh] = param(d, [5, 6], 4);
    const dyh = uniformF32(24, 5);
    backward(matmul(a, b), [Tensor.from(d, dyh, [4, 6])]);
    expect(a.grad).toBeNull();
    expectClose(await b.grad!.read(), refMatmul(ah, [4, 5], bh, [5, 6], dyh).gb);
  });

  it("does not grow the buffer pool over repeated forward + backward steps", async () => {
    const d = dev();
    const [a] = param(d, [2, 3, 9, 8], 6);
    const [b] = param(d, [3, 8, 7], 7);
    const [x] = param(d, [2, 5, 8], 8);
    const [w] = param(d, [6, 8], 9);
    const [bias] = param(d, [6], 10);
    const seed1 = Tensor.from(d, uniformF32(2 * 3 * 9 * 7, 1), [2, 3, 9, 7]);
    const seed2 = Tensor.from(d, uniformF32(60, 2), [2, 5, 6]);
    const { inUse, allocated } = await poolAfterSteps(d, [a, b, x, w, bias], () => {
      backward([matmul(a, b), linear(x, w, bias)], [seed1, seed2]);
    });
    expect(new Set(inUse).size).toBe(1);
    expect(new Set(allocated.slice(1)).size).toBe(1);
  });
});

for (const [suffix, options] of [["", undefined], [" (portable kernel, no subgroups)", { subgroups: false }]] as const)
describe("linear against a float64 reference" + suffix, () => {
  const dev = useDevice(options);
  /** y = x W^T + b and its gradients in float64. */
  function refLinear(x: Float32Array, rows: number, inF: number, w: Float32Array, out: number, b: Float32Array | null, dy: Float32Array) {
    const y = new Float64Array(rows * out), gx = new Float64Array(rows * inF), gw = new Float64Array(out * inF), gb = new Float64Array(out);
    for (let r = 0; r < rows; r++)
      for (let o = 0; o < out; o++) {
        let s = b ? b[o]! : 0;
        for (let i = 0; i < inF; i++) s += x[r * inF + i]! * w[o * inF + i]!;
        y[r * out + o] = s;
        const g = dy[r * out + o]!;
        gb[o]! += g;
        for (let i = 0; i < inF; i++) {
          gx[r * inF + i]! += g * w[o * inF + i]!;
          gw[o * inF + i]! += g * x[r * inF + i]!;
        }
      }
    return { y, gx, gw, gb };
  }
  for (const [xs, out, withBias] of [
    [[3, 4, 19], 21, true],
    [[40, 33], 9, false],
    [[5], 3, true],
    [[2, 35, 11], 520, true], // two 512-column tiles forward, K = 70 rows for the weight gradient
  ] as [number[], number, boolean][])
    it(`x ${JSON.stringify(xs)} → ${out} features${withBias ? " with bias" : ""}`, async () => {
      const d = dev();
      const inF = xs.at(-1)!;
      const rows = prod(xs) / inF;
      const [x, xh] = param(d, xs, 21);
      const [w, wh] = param(d, [out, inF], 22);
      const [b, bh] = withBias ? param(d, [out], 23) : [null, null];
      const ys = [...xs.slice(0, -1), out];
      const dyh = uniformF32(prod(ys), 24);
      const y = linear(x, w, b);
      expect(y.shape).toEqual(ys);
      backward(y, [Tensor.from(d, dyh, ys)]);
      const ref = refLinear(xh, rows, inF, wh, out, bh, dyh);
      expectClose(await y.read(), ref.y);
      expectClose(await x.grad!.read(), ref.gx);
      expectClose(await w.grad!.read(), ref.gw);
      if (b) expectClose(await b.grad!.read(), ref.gb);
    });
});

describe("matmul over more batches than one dispatch dimension allows", () => {
  const dev = useDevice({ limits: { maxWorkgroupsPerDim: 4 } });
  it("splits the batch over several dispatches", async () => {
    const d = dev();
    const [a, ah] = param(d, [10, 3, 5], 31, false);
    const [b, bh] = param(d, [10, 5, 2], 32, false);
    expectClose(await matmul(a, b).read(), refMatmul(ah, [10, 3, 5], bh, [10, 5, 2], null).y);
  });
  it("spreads more row/column tiles than one dimension allows over x and y", async () => {
    const d = dev();
    // folded: 150 rows = 10 tiles of 16 rows (5 of 32 rows in matmul_sg), over x and y
    const [a1, a1h] = param(d, [3, 50, 9], 33, false);
    const [b, bh] = param(d, [9, 70], 34, false);
    expectClose(await matmul(a1, b).read(), refMatmul(a1h, [3, 50, 9], bh, [9, 70], null).y);
    const [a, ah] = param(d, [6, 37, 9], 35, false); // 2-3 tiles per batch, 6 batches over z
    const [c, ch] = param(d, [6, 9, 37], 36, false);
    expectClose(await matmul(a, c).read(), refMatmul(ah, [6, 37, 9], ch, [6, 9, 37], null).y);
  });
});

describe("matmul and linear reject bad inputs", () => {
  const dev = useDevice();
  const t = (shape: number[], dtype: "f32" | "i32" = "f32") => Tensor.from(dev(), new Array(prod(shape)).fill(1), shape, dtype);
  it("mismatched inner dims", () => {
    expect(() => matmul(t([2, 3]), t([4, 5]))).toThrow(PulmoError);
    expect(() => matmul(t([2, 3]), t([4, 5]))).toThrow(/matmul: 'a' \[2, 3\] and 'b' \[4, 5\] have different inner dims/);
  });
  it("batch dims that do not broadcast", () => {
    expect(() => matmul(t([2, 3, 4]), t([3, 4, 5]))).toThrow(/matmul: batch dims of 'a' \[2, 3, 4\] and 'b' \[3, 4, 5\] do not broadcast/);
  });
  it("scalars and non-f32 tensors", () => {
    expect(() => matmul(t([]), t([3]))).toThrow(/matmul: 'a' must have rank >= 1/);
    expect(() => matmul(t([2, 3], "i32"), t([3, 2]))).toThrow(/matmul: 'a' must be f32, got i32/);
  });
  it("linear: weight rank, in_features and bias shape", () => {
    expect(() => linear(t([2, 3]), t([3]))).toThrow(/linear: 'weight' must have rank 2, got \[3\]/);
    expect(() => linear(t([2, 3]), t([4, 5]))).toThrow(/linear: last dim of 'x' \[2, 3\] must equal in_features of 'weight' \[4, 5\]/);
    expect(() => linear(t([2, 3]), t([4, 3]), t([3]))).toThrow(/linear: 'bias' must have shape \[4\]/);
    expect(() => linear(t([2, 3]), t([4, 3], "i32"))).toThrow(/linear: 'weight' must be f32/);
  });
});

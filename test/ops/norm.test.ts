import { describe, expect, it } from "vitest";
import { goldenSuite, useDevice } from "../helpers.ts";
import { rng, uniform } from "../random.ts";
import {
  Tensor,
  PulmoError,
  backward,
  instanceNorm,
  batchNorm,
  layerNorm,
  softmax,
  sum,
  mean,
  max,
  argmax,
  type Device,
} from "../../src/node.ts";

describe("norm golden cases", () => goldenSuite(["instance_norm", "batch_norm", "layer_norm", "softmax"]));

// ---------- float64 references ----------

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Normalisation of x where element i is in statistics group groupOf(i) and uses affine slot
 * affineOf(i); mean and biased variance in float64. */
function refNorm(
  x: readonly number[],
  groupOf: (i: number) => number,
  affineOf: (i: number) => number,
  w: readonly number[] | null,
  b: readonly number[] | null,
  eps: number,
): { y: number[]; mean: number[]; var: number[]; count: number[] } {
  const sums = new Map<number, number>();
  const cnt = new Map<number, number>();
  x.forEach((v, i) => {
    const g = groupOf(i);
    sums.set(g, (sums.get(g) ?? 0) + v);
    cnt.set(g, (cnt.get(g) ?? 0) + 1);
  });
  const m = new Map<number, number>();
  for (const [g, s] of sums) m.set(g, s / cnt.get(g)!);
  const q = new Map<number, number>();
  x.forEach((v, i) => {
    const g = groupOf(i);
    q.set(g, (q.get(g) ?? 0) + (v - m.get(g)!) ** 2);
  });
  const y = x.map((v, i) => {
    const g = groupOf(i);
    const a = affineOf(i);
    const xh = (v - m.get(g)!) / Math.sqrt(q.get(g)! / cnt.get(g)! + eps);
    return xh * (w ? w[a]! : 1) + (b ? b[a]! : 0);
  });
  const G = Math.max(...sums.keys()) + 1;
  const arr = (f: (g: number) => number) => Array.from({ length: G }, (_, g) => f(g));
  return { y, mean: arr((g) => m.get(g)!), var: arr((g) => q.get(g)! / cnt.get(g)!), count: arr((g) => cnt.get(g)!) };
}

/** Central finite differences of sum(f(v) * dy) at the listed indices of v (float64). */
/** float64 layer norm backward over rows of dn (eps 1e-5): dx, and the weight and bias gradients. */
function refLayerNormBackward(xd: readonly number[], dyd: readonly number[], wd: readonly number[] | null, m: number, dn: number) {
  const st = refNorm(xd, (i) => Math.floor(i / dn), (i) => i % dn, null, null, 1e-5);
  const [dx, dw, db] = [new Array<number>(m * dn), new Array<number>(dn).fill(0), new Array<number>(dn).fill(0)];
  for (let i = 0; i < m; i++) {
    const rstd = 1 / Math.sqrt(st.var[i]! + 1e-5);
    const g = (j: number) => dyd[i * dn + j]! * (wd ? wd[j]! : 1);
    let [sg, sgx] = [0, 0];
    for (let j = 0; j < dn; j++) {
      sg += g(j);
      sgx += g(j) * st.y[i * dn + j]!;
      dw[j] += dyd[i * dn + j]! * st.y[i * dn + j]!;
      db[j] += dyd[i * dn + j]!;
    }
    for (let j = 0; j < dn; j++) dx[i * dn + j] = rstd * (g(j) - sg / dn - st.y[i * dn + j]! * (sgx / dn));
  }
  return { dx, dw, db };
}

function fdGrad(f: (v: number[]) => number[], v: readonly number[], dy: readonly number[], indices: number[], h = 1e-4): number[] {
  const loss = (u: number[]) => f(u).reduce((s, y, i) => s + y * dy[i]!, 0);
  return indices.map((k) => {
    const p = [...v];
    const m = [...v];
    p[k]! += h;
    m[k]! -= h;
    return (loss(p) - loss(m)) / (2 * h);
  });
}

function sample(n: number, count: number, seed: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const r = rng(seed);
  const s = new Set<number>([0, n - 1]);
  while (s.size < count) s.add(Math.floor(r() * n));
  return [...s];
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel = 1e-5, what = "") {
  expect(actual.length, what).toBe(expected.length);
  let scale = 1e-12;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i]! - expected[i]!);
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  expect(worst / scale, `${what} worst at ${at}: ${actual[at]} vs ${expected[at]}`).toBeLessThanOrEqual(rel);
}

function leaf(d: Device, data: readonly number[], shape: readonly number[]): Tensor {
  const t = Tensor.from(d, data, shape);
  t.requiresGrad = true;
  return t;
}

async function disposeAll(...ts: (Tensor | null | undefined)[]) {
  for (const t of ts) {
    t?.grad?.dispose();
    if (t) t.grad = null;
    t?.dispose();
  }
}

// Checks an op against float64 forward values and finite-difference gradients of the float64
// reference for every input (sampled indices for large inputs).
async function checkOp(
  d: Device,
  run: (ins: Tensor[]) => Tensor,
  ref: (ins: number[][]) => number[],
  inputs: { data: number[]; shape: number[] }[],
  opts: { fwdTol?: number; gradTol?: number; samples?: number; seed?: number } = {},
) {
  const ts = inputs.map((i) => leaf(d, i.data, i.shape));
  const y = run(ts);
  const yRef = ref(inputs.map((i) => i.data));
  expectClose(await y.read(), yRef, opts.fwdTol ?? 2e-6, "forward");
  const dy = uniform(y.size, (opts.seed ?? 1) + 99, -2, 2);
  backward(y, [Tensor.from(d, dy, y.shape)]);
  for (let k = 0; k < inputs.length; k++) {
    const idx = sample(inputs[k]!.data.length, opts.samples ?? 40, k + 7);
    const fd = fdGrad(
      (v) => ref(inputs.map((inp, j) => (j === k ? v : inp.data))),
      inputs[k]!.data,
      dy,
      idx,
    );
    const g = await ts[k]!.grad!.read();
    expectClose(
      idx.map((i) => g[i]!),
      fd,
      opts.gradTol ?? 1e-4,
      `grad of input ${k}`,
    );
  }
  await disposeAll(y, ...ts);
}

// ---------- reductions ----------

/** float64 reduction of x over `axes` (keepDim layout of the output as a flat array). */
function refReduce(x: readonly number[], shape: readonly number[], axes: number[], op: "sum" | "mean"): number[] {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Array(prod(outShape)).fill(0);
  const r = prod(axes.map((a) => shape[a]!));
  x.forEach((v, i) => {
    let rem = i;
    let o = 0;
    let stride = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = rem % shape[d]!;
      rem = Math.floor(rem / shape[d]!);
      o += (axes.includes(d) ? 0 : c) * stride;
      stride *= outShape[d]!;
    }
    out[o] += op === "mean" ? v / r : v;
  });
  return out;
}

describe("reductions", () => {
  const dev = useDevice();

  it("sum and mean over axis sets, keepDim, negative axes, full reduction; backward", async () => {
    const shape = [3, 4, 5, 2];
    const x = uniform(prod(shape), 11, -2, 2);
    const cases: { op: "sum" | "mean"; axes?: number[]; keep: boolean; expectShape: number[] }[] = [
      { op: "sum", axes: [1], keep: false, expectShape: [3, 5, 2] },
      { op: "mean", axes: [0, 2], keep: true, expectShape: [1, 4, 1, 2] },
      { op: "sum", axes: [-1, 0], keep: false, expectShape: [4, 5] },
      { op: "mean", axes: [1, 2], keep: false, expectShape: [3, 2] },
      { op: "sum", keep: false, expectShape: [1] },
      { op: "mean", keep: true, expectShape: [1, 1, 1, 1] },
      { op: "sum", axes: [], keep: false, expectShape: shape },
    ];
    for (const c of cases) {
      const axes = (c.axes ?? [0, 1, 2, 3]).map((a) => (a < 0 ? a + shape.length : a));
      await checkOp(
        dev(),
        ([t]) => {
          const y = (c.op === "sum" ? sum : mean)(t!, c.axes, c.keep);
          expect(y.shape).toEqual(c.expectShape);
          return y;
        },
        ([v]) => refReduce(v!, shape, axes, c.op),
        [{ data: x, shape }],
        { samples: 12 },
      );
    }
  });

  it("long axes use multi-pass tree reductions (and the loop path for many outputs)", async () => {
    const d = dev();
    // 2 x 9000 → 3 chunks per row then a second pass; 21000 → 6 chunks; 17000 x 65 → one loop per row
    for (const [shape, axes] of [
      [[2, 9000], [1]],
      [[21000], undefined],
      [[3, 7000, 2], [1]],
      [[17000, 65], [1]],
    ] as [number[], number[] | undefined][]) {
      const data = uniform(prod(shape), shape.length, 0, 1);
      const t = Tensor.from(d, data, shape);
      const ax = axes ?? shape.map((_, i) => i);
      const s = sum(t, axes);
      const m = mean(t, axes);
      expectClose(await s.read(), refReduce(data, shape, ax, "sum"), 1e-5, `sum ${shape}`);
      expectClose(await m.read(), refReduce(data, shape, ax, "mean"), 1e-5, `mean ${shape}`);
      await disposeAll(t, s, m);
    }
  });

  it("mean backward over non-contiguous axes spreads dy / count", async () => {
    const d = dev();
    const x = leaf(d, uniform(2 * 3 * 4, 3, -2, 2), [2, 3, 4]);
    const y = mean(x, [0, 2]);
    expect(y.shape).toEqual([3]);
    backward(y, [Tensor.from(d, [1, 2, 3], [3])]);
    const g = await x.grad!.read();
    for (let i = 0; i < 24; i++) expect(g[i]).toBeCloseTo((Math.floor(i / 4) % 3 + 1) / 8, 7);
    await disposeAll(x, y);
  });

  it("max and argmax: first of ties, NaN propagates, long axes, gradient to the argmax", async () => {
    const d = dev();
    const x = leaf(d, [1, 5, 5, 2, /* row 2 */ -1, -3, -1, -2, /* row 3 */ 0, NaN, 4, NaN], [3, 4]);
    const m = max(x, 1);
    const a = argmax(x, -1);
    const mv = await m.read();
    expect([mv[0], mv[1]]).toEqual([5, -1]);
    expect(Number.isNaN(mv[2])).toBe(true);
    expect([...(await a.read())]).toEqual([1, 0, 1]);
    backward(m, [Tensor.from(d, [10, 20, 30], [3])]);
    expect([...(await x.grad!.read())]).toEqual([0, 10, 0, 0, 20, 0, 0, 0, 0, 30, 0, 0]);
    await disposeAll(x, m, a);

    // axis 0 with keepDim over a long axis (several chunks and a second pass)
    const n = 10000;
    const data = uniform(n * 3, 5, -2, 2);
    data[3 * 7777 + 1] = 100; // column 1's max late in the axis
    data[3 * 5000 + 2] = 50; // column 2: a tie, the first one wins
    data[3 * 9000 + 2] = 50;
    const t = Tensor.from(d, data, [n, 3]);
    const mt = max(t, 0, true);
    const at = argmax(t, 0);
    expect(mt.shape).toEqual([1, 3]);
    const col = (c: number) => data.filter((_, i) => i % 3 === c);
    expect([...(await mt.read())]).toEqual([0, 1, 2].map((c) => Math.max(...col(c))));
    const ai = await at.read();
    expect([ai[1], ai[2]]).toEqual([7777, 5000]);
    expect(ai[0]).toBe(col(0).indexOf(Math.max(...col(0))));
    await disposeAll(t, mt, at);
  });

  it("rejects bad axes and non-float input", () => {
    const d = dev();
    const x = Tensor.from(d, [1, 2, 3, 4], [2, 2]);
    expect(() => sum(x, [2])).toThrow(/axis 2 is out of range for 'x' of shape \[2, 2\]/);
    expect(() => mean(x, [0, -2])).toThrow(/appears more than once/);
    expect(() => max(x, -3)).toThrow(PulmoError);
    const i = Tensor.from(d, [1, 2], [2], "i32");
    expect(() => sum(i)).toThrow(/sum: 'x' must be f32/);
    expect(() => max(i, 0)).toThrow(/max: 'x' must be f32/);
    x.dispose();
    i.dispose();
  });
});

// ---------- softmax ----------

function refSoftmax(x: readonly number[], shape: readonly number[], dim: number): number[] {
  const a = dim < 0 ? dim + shape.length : dim;
  const r = shape[a]!;
  const inner = prod(shape.slice(a + 1));
  const outer = prod(shape.slice(0, a));
  const y = new Array(x.length).fill(0);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => o * r * inner + j * inner + i;
      let m = -Infinity;
      for (let j = 0; j < r; j++) m = Math.max(m, x[at(j)]!);
      let s = 0;
      for (let j = 0; j < r; j++) s += Math.exp(x[at(j)]! - m);
      for (let j = 0; j < r; j++) y[at(j)] = Math.exp(x[at(j)]! - m) / s;
    }
  return y;
}

// Both reduction paths: subgroup shuffles where the device has a fixed subgroup size (lavapipe
// has 8; a workgroup is one subgroup) and workgroup memory with barriers (the portable path).
const PATHS = [
  { subgroups: true, suffix: "_subgroup" },
  { subgroups: false, suffix: "" },
];

/** After a path's cases: the kernel that ran was the one that path selects. */
function expectKernel(d: Device, subgroups: boolean, kernel: string): void {
  if (subgroups && d.subgroupSize === null) return; // this adapter has no fixed-size subgroups
  expect(d.pipelines.kernels).toContain(kernel);
}

/** The register forward (fwd4r) ran on the subgroup path's kernel, and only there. */
function expectEntry(d: Device, subgroups: boolean, kernel: string, entry: string): void {
  const entries = d.pipelines.entries;
  const ran = entries.includes(`${kernel}:${entry}`);
  if (!subgroups) expect(entries.some((k) => k.endsWith(`:${entry}`))).toBe(false);
  else if (d.subgroupSize !== null) expect(ran).toBe(true);
}

describe.each(PATHS)("softmax (subgroups: $subgroups)", ({ subgroups, suffix }) => {
  const dev = useDevice({ subgroups });
  it("matches a float64 reference on short and long rows, any axis; backward by finite differences", async () => {
    for (const [shape, dim] of [
      [[2, 3, 4], 1],
      [[3, 100], -1], // a workgroup per row
      [[130, 2, 3], 0], // long strided rows
      [[5], 0],
      [[3, 384], -1], // row kernel (softmax/rows.wgsl), vec4
      [[2, 1001], 1], // row kernel, scalar, 16 invocations per row
      [[600, 8], 1], // several rows per workgroup
      [[2, 20000], 1], // 256 invocations per row, each looping over its values
      [[5, 12], 1], // vec4 rows shorter than a subgroup: idle lanes
      [[4, 13], 1], // scalar rows of 13
      // subgroup path: the forward from registers (fwd4r) where a row fits in 16 vec4s per lane
      [[1100, 36], 1], // 9 vec4s: lanes 1–7 hold one, lane 0 two; 4 rows per workgroup
      [[5, 500], 1], // 125 vec4s: 16 per lane, the last lane 13
      [[3, 516], 1], // 129 vec4s: over 16 per lane, fwd4
    ] as [number[], number][]) {
      await checkOp(
        dev(),
        ([t]) => softmax(t!, dim),
        ([v]) => refSoftmax(v!, shape, dim),
        [{ data: uniform(prod(shape), shape[0]!, -4, 4), shape }],
        { gradTol: 1e-4, samples: 20 },
      );
    }
    expectKernel(dev(), subgroups, `softmax/rows${suffix}`);
    expectEntry(dev(), subgroups, "softmax/rows_subgroup", "fwd4r");
    expectEntry(dev(), subgroups, "softmax/rows_subgroup", "bwd4r");
  });
  it("forward over many rows per workgroup vs float64", async () => {
    for (const shape of [
      [600, 384], // the bench's rows: 12 vec4s per lane, no tail, 2 rows per workgroup
      [8200, 32], // 1 vec4 per lane, 32 rows per workgroup, a short last workgroup
    ]) {
      const d = dev();
      const xd = uniform(prod(shape), 8, -6, 6);
      const x = Tensor.from(d, xd, shape);
      const y = softmax(x, -1);
      expectClose(await y.read(), refSoftmax(xd, shape, 1), 2e-6);
      await disposeAll(x, y);
    }
    expectEntry(dev(), subgroups, "softmax/rows_subgroup", "fwd4r");
  });
  it("backward over many rows per workgroup vs float64", async () => {
    for (const shape of [
      [600, 384], // the bench's rows: 12 vec4s per lane, no tail, 2 rows per workgroup
      [8200, 32], // 1 vec4 per lane, 32 rows per workgroup, a short last workgroup
      [1300, 44], // 11 vec4s: lanes 0–2 hold two, 5 rows per workgroup, a short last workgroup
    ]) {
      const d = dev();
      const [m, r] = [shape[0]!, shape[1]!];
      const xd = uniform(m * r, 9, -6, 6);
      const dyd = uniform(m * r, 10, -2, 2);
      const x = leaf(d, xd, shape);
      const y = softmax(x, -1);
      backward(y, [Tensor.from(d, dyd, shape)]);
      const yr = refSoftmax(xd, shape, 1);
      const ref = new Array<number>(m * r);
      for (let i = 0; i < m; i++) {
        let s = 0;
        for (let j = 0; j < r; j++) s += yr[i * r + j]! * dyd[i * r + j]!;
        for (let j = 0; j < r; j++) ref[i * r + j] = yr[i * r + j]! * (dyd[i * r + j]! - s);
      }
      expectClose(await x.grad!.read(), ref, 2e-5);
      await disposeAll(x, y);
    }
    expectEntry(dev(), subgroups, "softmax/rows_subgroup", "bwd4r");
  });
  it("is stable for large logits", async () => {
    const d = dev();
    const x = Tensor.from(d, [1000, 1001, -1000, 88, 89, 90], [2, 3]);
    const y = await softmax(x, 1).read();
    expect([...y].every(Number.isFinite)).toBe(true);
    expectClose(y, refSoftmax([1000, 1001, -1000, 88, 89, 90], [2, 3], 1), 1e-6);
    x.dispose();
  });
  it("rejects a bad dim and non-float input", () => {
    const d = dev();
    const x = Tensor.from(d, [1, 2], [2]);
    expect(() => softmax(x, 1)).toThrow(/softmax: dim 1 is out of range for 'x' of shape \[2\]/);
    const i = Tensor.from(d, [1, 2], [2], "i32");
    expect(() => softmax(i, 0)).toThrow(/'x' must be f32/);
    x.dispose();
    i.dispose();
  });
});

// ---------- instance / batch / layer norm ----------

const inGroup = (shape: number[]) => (i: number) => Math.floor(i / prod(shape.slice(2)));
const chanOf = (shape: number[]) => (i: number) => Math.floor(i / prod(shape.slice(2))) % shape[1]!;

describe.each(PATHS)("instance norm (subgroups: $subgroups)", ({ subgroups, suffix }) => {
  const dev = useDevice({ subgroups });
  it("rank 3 with a long instance (split statistics) and rank 4 without affine vs float64", async () => {
    const shape = [2, 3, 4500];
    const c = 3;
    await checkOp(
      dev(),
      ([x, w, b]) => instanceNorm(x!, w!, b!, { eps: 1e-5 }),
      ([x, w, b]) => refNorm(x!, inGroup(shape), chanOf(shape), w!, b!, 1e-5).y,
      [
        { data: uniform(prod(shape), 21, -3, 5), shape },
        { data: uniform(c, 22, 0.5, 1.5), shape: [c] },
        { data: uniform(c, 23, -2, 2), shape: [c] },
      ],
      { samples: 30, gradTol: 2e-4 },
    );
    for (const shape of [[2, 3, 8200], [1, 2, 4, 9, 16]]) { // vec4 seg kernels: 2 chunks per instance; one chunk
      await checkOp(
        dev(),
        ([x, w, b]) => instanceNorm(x!, w!, b!, { eps: 1e-5 }),
        ([x, w, b]) => refNorm(x!, inGroup(shape), chanOf(shape), w!, b!, 1e-5).y,
        [
          { data: uniform(prod(shape), 26, -3, 5), shape },
          { data: uniform(shape[1]!, 22, 0.5, 1.5), shape: [shape[1]!] },
          { data: uniform(shape[1]!, 23, -2, 2), shape: [shape[1]!] },
        ],
        { samples: 30, gradTol: 2e-4 },
      );
    }
    const s2 = [3, 2, 3, 5];
    await checkOp(
      dev(),
      ([x]) => instanceNorm(x!, null, null),
      ([x]) => refNorm(x!, inGroup(s2), chanOf(s2), null, null, 1e-5).y,
      [{ data: uniform(prod(s2), 24, -2, 2), shape: s2 }],
    );
  });
  it("keeps the variance accurate for a large mean (no E[x^2] - E[x]^2)", async () => {
    const d = dev();
    const shape = [1, 2, 6000];
    const data = uniform(prod(shape), 25, 1e4 - 1, 1e4 + 1);
    const x = Tensor.from(d, data, shape);
    const y = instanceNorm(x, null, null);
    expectClose(await y.read(), refNorm(data, inGroup(shape), chanOf(shape), null, null, 1e-5).y, 5e-3);
    await disposeAll(x, y);
  });
  it("rejects bad inputs", () => {
    const d = dev();
    const x = Tensor.from(d, new Array(24).fill(1), [2, 3, 4]);
    const w = Tensor.from(d, [1, 1], [2]);
    expect(() => instanceNorm(Tensor.from(d, [1, 2], [1, 2]), null, null)).toThrow(/instance_norm: 'x' must have rank >= 3/);
    expect(() => instanceNorm(x, w, null)).toThrow(/instance_norm: 'weight' must have shape \[3\], got \[2\]/);
    expect(() => instanceNorm(Tensor.from(d, new Array(24).fill(1), [2, 3, 4], "i32"), null, null)).toThrow(/'x' must be f32/);
    expect(() => instanceNorm(Tensor.from(d, [1, 2], [1, 2, 1]), null, null)).toThrow(/more than 1 spatial element/);
    x.dispose();
    w.dispose();
  });
  it("ran on the path's kernel (seg{suffix}.wgsl)", () => expectKernel(dev(), subgroups, `norm/seg${suffix}`));
});

describe.each(PATHS)("batch norm (subgroups: $subgroups)", ({ subgroups, suffix }) => {
  const dev = useDevice({ subgroups });
  it("training on rank 2, 3 and a long channel (split statistics) vs float64, backward by finite differences", async () => {
    for (const shape of [
      [6, 3],
      [4, 2, 5],
      [2, 2, 2200],
      [3, 2, 2000], // vec4 seg kernels, chunks crossing the sample segments
      [3, 2, 1, 7, 9], // scalar seg kernels, several segments per chunk
    ]) {
      const c = shape[1]!;
      await checkOp(
        dev(),
        ([x, w, b]) => batchNorm(x!, w!, b!, { training: true, eps: 1e-3 }),
        ([x, w, b]) => refNorm(x!, chanOf(shape), chanOf(shape), w!, b!, 1e-3).y,
        [
          { data: uniform(prod(shape), shape.length, -1, 3), shape },
          { data: uniform(c, 32, 0.5, 1.5), shape: [c] },
          { data: uniform(c, 33, -2, 2), shape: [c] },
        ],
        { samples: 25, gradTol: 2e-4 },
      );
    }
  });
  it("training updates running stats in place (unbiased variance, momentum) like PyTorch", async () => {
    const d = dev();
    const shape = [3, 2, 4];
    const c = 2;
    const momentum = 0.3;
    const rm0 = [0.5, -1];
    const rv0 = [2, 0.25];
    const rm = Tensor.from(d, rm0, [c]);
    const rv = Tensor.from(d, rv0, [c]);
    const expM = [...rm0];
    const expV = [...rv0];
    for (let step = 0; step < 2; step++) {
      const data = uniform(prod(shape), 40 + step, -2, 4);
      const x = Tensor.from(d, data, shape);
      const y = batchNorm(x, null, null, { training: true, momentum, runningMean: rm, runningVar: rv });
      const r = refNorm(data, chanOf(shape), chanOf(shape), null, null, 1e-5);
      for (let k = 0; k < c; k++) {
        const n = r.count[k]!;
        expM[k] = (1 - momentum) * expM[k]! + momentum * r.mean[k]!;
        expV[k] = (1 - momentum) * expV[k]! + momentum * r.var[k]! * (n / (n - 1));
      }
      expectClose(await y.read(), r.y, 2e-6, "y");
      await disposeAll(x, y);
    }
    expectClose(await rm.read(), expM, 1e-6, "running mean");
    expectClose(await rv.read(), expV, 1e-6, "running var");
    // eval uses (and does not change) them
    const data = uniform(prod(shape), 50, -2, 2);
    const x = Tensor.from(d, data, shape);
    const y = batchNorm(x, null, null, { training: false, runningMean: rm, runningVar: rv });
    const e = data.map((v, i) => (v - expM[chanOf(shape)(i)]!) / Math.sqrt(expV[chanOf(shape)(i)]! + 1e-5));
    expectClose(await y.read(), e, 2e-6, "eval y");
    expectClose(await rm.read(), expM, 1e-6, "running mean unchanged");
    await disposeAll(x, y, rm, rv);
  });
  it("running stats merged from chunk partials (long channels)", async () => {
    const d = dev();
    const shape = [3, 2, 3000];
    const rm = Tensor.from(d, [0.5, -1], [2]);
    const rv = Tensor.from(d, [2, 0.25], [2]);
    const data = uniform(prod(shape), 44, -2, 4);
    const x = Tensor.from(d, data, shape);
    const y = batchNorm(x, null, null, { training: true, momentum: 0.3, runningMean: rm, runningVar: rv });
    const r = refNorm(data, chanOf(shape), chanOf(shape), null, null, 1e-5);
    expectClose(await y.read(), r.y, 1e-5, "y");
    const n = r.count[0]!;
    expectClose(await rm.read(), [0.5, -1].map((v, k) => 0.7 * v + 0.3 * r.mean[k]!), 1e-5, "running mean");
    expectClose(await rv.read(), [2, 0.25].map((v, k) => 0.7 * v + 0.3 * r.var[k]! * (n / (n - 1))), 1e-5, "running var");
    // eval on the long channels (seg kernels with fixed statistics), weight and bias
    const rmv = [...(await rm.read())];
    const rvv = [...(await rv.read())];
    const ch = chanOf(shape);
    await checkOp(
      d,
      ([xx, w, b]) => batchNorm(xx!, w!, b!, { training: false, runningMean: rm, runningVar: rv }),
      ([xx, w, b]) => xx!.map((v, i) => ((v - rmv[ch(i)]!) / Math.sqrt(rvv[ch(i)]! + 1e-5)) * w![ch(i)]! + b![ch(i)]!),
      [
        { data: uniform(prod(shape), 45, -2, 2), shape },
        { data: uniform(2, 46, -2, 2), shape: [2] },
        { data: uniform(2, 47, -2, 2), shape: [2] },
      ],
      { samples: 25 },
    );
    await disposeAll(x, y, rm, rv);
  });
  it("eval mode on rank 5 with weight only: forward and backward", async () => {
    const shape = [2, 3, 2, 2, 3];
    const c = 3;
    const rmv = uniform(c, 61, -2, 2);
    const rvv = uniform(c, 62, 0.2, 2);
    const d = dev();
    const rm = Tensor.from(d, rmv, [c]);
    const rv = Tensor.from(d, rvv, [c]);
    const ch = chanOf(shape);
    await checkOp(
      d,
      ([x, w]) => batchNorm(x!, w!, null, { training: false, runningMean: rm, runningVar: rv }),
      ([x, w]) => x!.map((v, i) => ((v - rmv[ch(i)]!) / Math.sqrt(rvv[ch(i)]! + 1e-5)) * w![ch(i)]!),
      [
        { data: uniform(prod(shape), 63, -2, 2), shape },
        { data: uniform(c, 64, -2, 2), shape: [c] },
      ],
    );
    await disposeAll(rm, rv);
  });
  it("rejects bad inputs", () => {
    const d = dev();
    const x = Tensor.from(d, new Array(12).fill(1), [2, 3, 2]);
    const r2 = Tensor.from(d, [0, 0], [2]);
    const r3 = Tensor.from(d, [0, 0, 0], [3]);
    expect(() => batchNorm(Tensor.from(d, [1, 2], [2]), null, null, { training: true })).toThrow(/batch_norm: 'x' must have rank >= 2/);
    expect(() => batchNorm(x, null, r2, { training: true })).toThrow(/batch_norm: 'bias' must have shape \[3\], got \[2\]/);
    expect(() => batchNorm(x, null, null, { training: false })).toThrow(/needs runningMean and runningVar/);
    expect(() => batchNorm(x, null, null, { training: true, runningMean: r2, runningVar: r2 })).toThrow(/'runningMean' must have shape \[3\]/);
    expect(() => batchNorm(x, null, null, { training: true, runningMean: r3 })).toThrow(/both runningMean and runningVar/);
    expect(() => batchNorm(Tensor.from(d, [1, 2, 3], [1, 3]), null, null, { training: true })).toThrow(/more than 1 value per channel/);
    expect(() => batchNorm(Tensor.from(d, new Array(12).fill(1), [2, 3, 2], "u32"), null, null, { training: true })).toThrow(/'x' must be f32/);
    [x, r2, r3].forEach((t) => t.dispose());
  });
  it("ran on the path's kernel (seg{suffix}.wgsl)", () => expectKernel(dev(), subgroups, `norm/seg${suffix}`));
});

describe.each(PATHS)("layer norm (subgroups: $subgroups)", ({ subgroups, suffix }) => {
  const dev = useDevice({ subgroups });
  it("last dim, multi-dim normalizedShape and no affine vs float64; backward by finite differences", async () => {
    // affine: true (weight and bias), false, or only "w" / only "b"
    const cases: { shape: number[]; ns?: number[]; affine: boolean | "w" | "b" }[] = [
      { shape: [4, 3, 10], affine: true }, // short rows: a thread per row
      { shape: [3, 100], affine: true }, // long rows: a workgroup per row
      { shape: [5, 3, 4], ns: [3, 4], affine: true },
      { shape: [700, 5], affine: true }, // many rows: the weight/bias column sums are long
      { shape: [2, 9], affine: false },
      { shape: [3, 384], affine: true }, // row kernel (norm/rows.wgsl), vec4
      { shape: [2, 1001], affine: true }, // row kernel, scalar, 16 invocations per row
      { shape: [600, 8], affine: true }, // several rows per workgroup, column partials over blocks
      { shape: [2, 5003], affine: true }, // 128 invocations per row, scalar
      { shape: [3, 12], affine: true }, // vec4 rows shorter than a subgroup: idle lanes
      { shape: [2000, 16], affine: false }, // several rows per workgroup on every path
      // subgroup path: the forward from registers (fwd4r) where a row fits in 16 vec4s per lane
      // (many long rows: forward only, in the next test)
      { shape: [1100, 36], affine: "b" }, // 9 vec4s per row: lanes 1–7 hold one, lane 0 two; 4 rows per workgroup
      { shape: [5, 500], affine: true }, // 125 vec4s: 16 per lane, the last lane 13
      { shape: [3, 516], affine: true }, // 129 vec4s: over 16 per lane, fwd4 (two reads)
      { shape: [4, 388], affine: false }, // 97 vec4s: 13 per lane, one lane 12
      { shape: [520, 40], affine: "w" }, // 10 vec4s: lanes 0–1 hold two; weight only, 2 rows per workgroup
    ];
    for (const { shape, ns, affine } of cases) {
      const dn = prod(ns ?? [shape.at(-1)!]);
      const rowOf = (i: number) => Math.floor(i / dn);
      const featOf = (i: number) => i % dn;
      const wShape = ns ?? [shape.at(-1)!];
      const inputs = [{ data: uniform(prod(shape), shape[0]!, -2, 2), shape }];
      const [hasW, hasB] = [affine === true || affine === "w", affine === true || affine === "b"];
      if (hasW) inputs.push({ data: uniform(dn, 71, 0.5, 1.5), shape: wShape });
      if (hasB) inputs.push({ data: uniform(dn, 72, -2, 2), shape: wShape });
      const wb = (a: (readonly number[] | Tensor | undefined)[]) => [hasW ? a[1]! : null, hasB ? a[hasW ? 2 : 1]! : null];
      await checkOp(
        dev(),
        (a) => layerNorm(a[0]!, ...(wb(a) as [Tensor | null, Tensor | null]), { normalizedShape: ns }),
        (a) => refNorm(a[0]!, rowOf, featOf, ...(wb(a) as [number[] | null, number[] | null]), 1e-5).y,
        inputs,
        { samples: 25, gradTol: 2e-4 },
      );
    }
    expectKernel(dev(), subgroups, `norm/rows${suffix}`);
    expectEntry(dev(), subgroups, "norm/rows_subgroup", "fwd4r");
    expectEntry(dev(), subgroups, "norm/rows_subgroup", "bwd4r");
  });
  it("forward over many rows per workgroup vs float64", async () => {
    for (const { shape, affine } of [
      { shape: [600, 384], affine: true }, // the bench's rows: 12 vec4s per lane, no tail, 2 rows per workgroup
      { shape: [8200, 32], affine: false }, // 1 vec4 per lane, 32 rows per workgroup, a short last workgroup
    ]) {
      const d = dev();
      const dn = shape[1]!;
      const xd = uniform(prod(shape), 5, -3, 5);
      const [wd, bd] = [uniform(dn, 6, 0.5, 1.5), uniform(dn, 7, -2, 2)];
      const [x, w, b] = [Tensor.from(d, xd, shape), affine ? Tensor.from(d, wd, [dn]) : null, affine ? Tensor.from(d, bd, [dn]) : null];
      const y = layerNorm(x, w, b);
      const ref = refNorm(xd, (i) => Math.floor(i / dn), (i) => i % dn, affine ? wd : null, affine ? bd : null, 1e-5).y;
      expectClose(await y.read(), ref, 2e-6);
      await disposeAll(x, y, ...(w ? [w, b!] : []));
    }
    expectEntry(dev(), subgroups, "norm/rows_subgroup", "fwd4r");
  });
  it("backward over many rows per workgroup vs float64 (dx, weight and bias gradients)", async () => {
    for (const { shape, affine } of [
      { shape: [600, 384], affine: true }, // the bench's rows: 12 vec4s per lane, no tail, 2 rows per workgroup
      { shape: [8200, 32], affine: false }, // 1 vec4 per lane, 32 rows per workgroup, a short last workgroup
      { shape: [1300, 44], affine: "w" }, // 11 vec4s: lanes 0–2 hold two, 5 rows per workgroup
      { shape: [1300, 44], affine: "b" },
    ] as { shape: number[]; affine: boolean | "w" | "b" }[]) {
      const d = dev();
      const [m, dn] = [shape[0]!, shape[1]!];
      const [hasW, hasB] = [affine === true || affine === "w", affine === true || affine === "b"];
      const xd = uniform(m * dn, 11, -3, 5);
      const dyd = uniform(m * dn, 12, -2, 2);
      const [wd, bd] = [uniform(dn, 13, 0.5, 1.5), uniform(dn, 14, -2, 2)];
      const x = leaf(d, xd, shape);
      const w = hasW ? leaf(d, wd, [dn]) : null;
      const b = hasB ? leaf(d, bd, [dn]) : null;
      const y = layerNorm(x, w, b);
      backward(y, [Tensor.from(d, dyd, shape)]);
      const { dx, dw, db } = refLayerNormBackward(xd, dyd, hasW ? wd : null, m, dn);
      expectClose(await x.grad!.read(), dx, 2e-5, "dx");
      if (w) expectClose(await w.grad!.read(), dw, 2e-5, "dw");
      if (b) expectClose(await b.grad!.read(), db, 2e-5, "db");
      await disposeAll(x, y, w, b);
    }
    expectEntry(dev(), subgroups, "norm/rows_subgroup", "bwd4r");
  });
  it("rejects bad inputs", () => {
    const d = dev();
    const x = Tensor.from(d, new Array(12).fill(1), [3, 4]);
    const w = Tensor.from(d, [1, 1, 1], [3]);
    expect(() => layerNorm(x, w, null)).toThrow(/layer_norm: 'weight' must have shape \[4\], got \[3\]/);
    expect(() => layerNorm(x, null, null, { normalizedShape: [3] })).toThrow(/normalizedShape \[3\] must match the trailing dims/);
    expect(() => layerNorm(Tensor.from(d, [1], [1], "i32"), null, null)).toThrow(/'x' must be f32/);
    expect(() => layerNorm(x, null, null, { eps: -1 })).toThrow(/eps must be/);
    x.dispose();
    w.dispose();
  });
});

describe("norm family resources and launch limits", () => {
  const dev = useDevice();
  it("forward + backward leave no pooled buffer in use", async () => {
    const d = dev();
    const run = async () => {
      const x = leaf(d, uniform(2 * 3 * 50, 81, -2, 2), [2, 3, 50]);
      const w = leaf(d, [1, 2, 3], [3]);
      const b = leaf(d, [0, 1, 0], [3]);
      const rm = Tensor.zeros(d, [3]);
      const rv = Tensor.zeros(d, [3]);
      const outs = [
        instanceNorm(x, w, b),
        batchNorm(x, w, b, { training: true, runningMean: rm, runningVar: rv }),
        batchNorm(x, w, b, { training: false, runningMean: rm, runningVar: rv }),
        layerNorm(x, null, null),
        softmax(x, 1),
        sum(x, [0, 2]),
        mean(x),
        max(x, 2),
      ];
      for (const y of outs) {
        const seed = Tensor.from(d, uniform(y.size, 3, -2, 2), y.shape);
        backward(y, [seed]);
        seed.dispose();
      }
      await x.grad!.read();
      await disposeAll(x, w, b, rm, rv, ...outs);
    };
    await run();
    await d.flush();
    const inUse = d.pool.inUseBytes;
    await run();
    await d.flush();
    expect(d.pool.inUseBytes).toBe(inUse);
  });
});

describe("norm family with a lowered workgroup limit (2D launches)", () => {
  const dev = useDevice({ limits: { maxWorkgroupsPerDim: 5 } });
  it("instance norm, layer norm, softmax and sum index workgroups over x and y", async () => {
    const d = dev();
    const shape = [2, 7, 40];
    const data = uniform(prod(shape), 91, -2, 2);
    const x = Tensor.from(d, data, shape);
    const y1 = instanceNorm(x, null, null);
    expectClose(await y1.read(), refNorm(data, inGroup(shape), chanOf(shape), null, null, 1e-5).y, 2e-6, "instance norm");
    const y2 = layerNorm(x, null, null);
    expectClose(await y2.read(), refNorm(data, (i) => Math.floor(i / 40), (i) => i % 40, null, null, 1e-5).y, 2e-6, "layer norm");
    const long = Tensor.from(d, uniform(9 * 70, 92, -2, 2), [9, 70]);
    const y3 = softmax(long, 1);
    expectClose(await y3.read(), refSoftmax(await long.readFloat().then((a) => [...a]), [9, 70], 1), 2e-6, "softmax");
    const y4 = sum(x, [2]);
    expectClose(await y4.read(), refReduce(data, shape, [2], "sum"), 1e-5, "sum");
    const y5 = sum(long, [1]); // a workgroup tree per row
    expectClose(await y5.read(), refReduce([...(await long.readFloat())], [9, 70], [1], "sum"), 1e-5, "sum (tree)");
    const y6 = max(long, 1);
    const lv = await long.readFloat();
    expect([...(await y6.read())]).toEqual(Array.from({ length: 9 }, (_, r) => Math.max(...lv.slice(r * 70, r * 70 + 70))));
    await disposeAll(x, y1, y2, long, y3, y4, y5, y6);
  });
  it("layer norm and softmax backward (bwd4r, layer norm's column partials per workgroup) over x and y", async () => {
    const d = dev();
    const [m, dn] = [14, 40]; // one row per workgroup: 14 workgroups on a 5 × 3 grid
    const xd = uniform(m * dn, 93, -2, 2);
    const dyd = uniform(m * dn, 94, -2, 2);
    const wd = uniform(dn, 95, 0.5, 1.5);
    const x = leaf(d, xd, [m, dn]);
    const w = leaf(d, wd, [dn]);
    const b = leaf(d, uniform(dn, 96, -1, 1), [dn]);
    const y = layerNorm(x, w, b);
    backward(y, [Tensor.from(d, dyd, [m, dn])]);
    const { dx, dw, db } = refLayerNormBackward(xd, dyd, wd, m, dn);
    expectClose(await x.grad!.read(), dx, 2e-5, "layer norm dx");
    expectClose(await w.grad!.read(), dw, 2e-5, "layer norm dw");
    expectClose(await b.grad!.read(), db, 2e-5, "layer norm db");
    const xs = leaf(d, xd, [m, dn]);
    const s = softmax(xs, 1);
    backward(s, [Tensor.from(d, dyd, [m, dn])]);
    const yr = refSoftmax(xd, [m, dn], 1);
    const ref = yr.map((v, i) => {
      const r = Math.floor(i / dn);
      let t = 0;
      for (let j = 0; j < dn; j++) t += yr[r * dn + j]! * dyd[r * dn + j]!;
      return v * (dyd[i]! - t);
    });
    expectClose(await xs.grad!.read(), ref, 2e-5, "softmax dx");
    if (d.subgroupSize !== null)
      for (const e of ["norm/rows_subgroup:bwd4r", "softmax/rows_subgroup:bwd4r"]) expect(d.pipelines.entries).toContain(e);
    await disposeAll(x, w, b, y, xs, s);
  });
});

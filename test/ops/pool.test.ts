import { describe, expect, it, vi } from "vitest";
import { goldenSuite, useDevice } from "../helpers.ts";
import { uniform } from "../random.ts";
import { Tensor, backward, maxPool2d, maxPool3d, upsample, prelu, tidy, PulmoError, type Device } from "../../src/node.ts";

describe("pool golden cases", () => goldenSuite(["max_pool3d", "max_pool2d", "upsample", "prelu"]));

function expectClose(actual: ArrayLike<number>, ref: number[], tol = 1e-5): void {
  expect(actual.length).toBe(ref.length);
  let worst = 0;
  for (let k = 0; k < ref.length; k++) worst = Math.max(worst, Math.abs(actual[k]! - ref[k]!));
  expect(worst).toBeLessThanOrEqual(tol);
}

const prod = (a: readonly number[]) => a.reduce((p, v) => p * v, 1);

/** Row-major strides. */
function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1]! * shape[d + 1]!;
  return s;
}

/** Every multi-index of a shape in row-major order. */
function* indices(shape: readonly number[]): Generator<number[]> {
  const n = prod(shape);
  const st = strides(shape);
  for (let f = 0; f < n; f++) yield shape.map((d, i) => Math.floor(f / st[i]!) % d);
}

/** float64 max pool over the trailing `k.length` dims: output, and dx = scatter of dy onto the
 * first maximum of each window in scan order (PyTorch's tie rule; a NaN wins, the last NaN of a
 * window among several, as PyTorch's `val > maxval || isnan(val)`). */
function maxPoolRef(x: number[], shape: number[], k: number[], s: number[], p: number[], dil: number[], dy?: number[]) {
  const nd = k.length;
  const lead = shape.slice(0, -nd), sp = shape.slice(-nd);
  const out = sp.map((n, d) => Math.floor((n + 2 * p[d]! - dil[d]! * (k[d]! - 1) - 1) / s[d]!) + 1);
  const yShape = [...lead, ...out];
  const xs = strides(shape);
  const y: number[] = [];
  const dx = new Array<number>(x.length).fill(0);
  let o = 0;
  for (const oi of indices(yShape)) {
    let best = -Infinity, arg = -1;
    for (const ki of indices(k)) {
      const pos = oi.slice(0, lead.length);
      let inside = true;
      for (let d = 0; d < nd; d++) {
        const v = oi[lead.length + d]! * s[d]! - p[d]! + ki[d]! * dil[d]!;
        if (v < 0 || v >= sp[d]!) inside = false;
        pos.push(v);
      }
      if (!inside) continue;
      const f = pos.reduce((a, v, i) => a + v * xs[i]!, 0);
      if (arg < 0 || x[f]! > best || Number.isNaN(x[f]!)) [best, arg] = [x[f]!, f];
    }
    y.push(best);
    if (dy) dx[arg] += dy[o]!;
    o++;
  }
  return { y, yShape, dx };
}

/** PyTorch's per-dim source taps in float32 arithmetic as its CPU kernel does for f32 tensors. */
function taps(o: number, size: number, r: number, linear: boolean, align: boolean): [number, number, number, number] {
  const f = Math.fround;
  if (!linear) {
    const j = Math.min(Math.floor(f(f(o) * f(r))), size - 1);
    return [j, j, 1, 0];
  }
  const src = align ? f(f(r) * o) : Math.max(f(f(f(r) * f(o + 0.5)) - 0.5), 0);
  const i0 = Math.min(Math.floor(src), size - 1);
  const l1 = src - i0;
  return [i0, Math.min(i0 + 1, size - 1), 1 - l1, l1];
}

/** float64 F.interpolate as an explicit linear map over the trailing dims: y and dx = A^T dy. */
function upsampleRef(x: number[], shape: number[], out: number[], ratio: number[], linear: boolean, align: boolean, dy?: number[]) {
  const nd = out.length;
  const lead = shape.slice(0, -nd), sp = shape.slice(-nd);
  const yShape = [...lead, ...out];
  const xs = strides(shape);
  const y: number[] = [];
  const dx = new Array<number>(x.length).fill(0);
  let o = 0;
  for (const oi of indices(yShape)) {
    let terms: [number, number][] = [[oi.slice(0, lead.length).reduce((a, v, i) => a + v * xs[i]!, 0), 1]];
    for (let d = 0; d < nd; d++) {
      const [i0, i1, l0, l1] = taps(oi[lead.length + d]!, sp[d]!, ratio[d]!, linear, align);
      const st = xs[lead.length + d]!;
      terms = terms.flatMap(([f, w]) => [[f + i0 * st, w * l0], [f + i1 * st, w * l1]] as [number, number][]);
    }
    y.push(terms.reduce((a, [f, w]) => a + w * x[f]!, 0));
    if (dy) for (const [f, w] of terms) dx[f] += w * dy[o]!;
    o++;
  }
  return { y, yShape, dx };
}

async function forwardBackward(dev: Device, x: number[], shape: number[], op: (t: Tensor) => Tensor, seed = 99) {
  const xt = Tensor.from(dev, x, shape);
  xt.requiresGrad = true;
  const y = op(xt);
  const dy = uniform(y.size, seed);
  const yv = await y.read();
  backward([y], [Tensor.from(dev, dy, y.shape)]);
  return { y: yv, yShape: y.shape, dy, dx: await xt.grad!.read() };
}

describe("max pooling against a float64 reference", () => {
  const dev = useDevice();
  const cases: { name: string; shape: number[]; k: number[]; s: number[]; p: number[]; d: number[] }[] = [
    { name: "3d overlapping 3x3x3 stride 2 padding 1", shape: [2, 2, 5, 7, 6], k: [3, 3, 3], s: [2, 2, 2], p: [1, 1, 1], d: [1, 1, 1] },
    { name: "3d anisotropic kernel/stride with dilation", shape: [1, 3, 4, 9, 8], k: [1, 3, 2], s: [1, 1, 3], p: [0, 1, 1], d: [1, 2, 2] },
    { name: "2d 2x3 stride (1,2) padding (1,1)", shape: [3, 2, 7, 11], k: [2, 3], s: [1, 2], p: [1, 1], d: [1, 1] },
    // kernel 2 stride 2 along a W that is a multiple of 4: the forward's vec4 W-pair entry
    { name: "3d W pairs (W 12) with D/H padding and dilation", shape: [2, 2, 5, 6, 12], k: [3, 2, 2], s: [1, 1, 2], p: [1, 1, 0], d: [1, 2, 1] },
  ];
  // windows that share no input: the backward scatters into a zero-filled dx
  const disjoint: typeof cases = [
    { name: "3d 2x2x2 default stride, odd sizes (uncovered tail)", shape: [2, 3, 5, 7, 9], k: [2, 2, 2], s: [2, 2, 2], p: [0, 0, 0], d: [1, 1, 1] },
    { name: "3d stride > kernel with padding", shape: [1, 2, 7, 8, 9], k: [3, 2, 3], s: [4, 3, 3], p: [1, 1, 0], d: [1, 1, 1] },
    { name: "3d dilation 2 kernel 2 stride 3", shape: [1, 2, 6, 7, 8], k: [2, 2, 2], s: [3, 3, 3], p: [0, 1, 0], d: [2, 2, 2] },
    { name: "2d 3x3 stride 3", shape: [2, 3, 10, 11], k: [3, 3], s: [3, 3], p: [1, 1], d: [1, 1] },
    { name: "3d 2x2x2 on W 16 (vec4 W pairs), odd D", shape: [1, 3, 5, 6, 16], k: [2, 2, 2], s: [2, 2, 2], p: [0, 0, 0], d: [1, 1, 1] },
    { name: "2d 2x2 on W 8 (vec4 W pairs)", shape: [2, 2, 6, 8], k: [2, 2], s: [2, 2], p: [0, 0], d: [1, 1] },
  ];
  for (const c of disjoint)
    it(`${c.name}: forward and backward (scatter over disjoint windows)`, async () => {
      const x = uniform(prod(c.shape), 6);
      const nd = c.k.length;
      const pool = (t: Tensor) => (nd === 3 ? maxPool3d : maxPool2d)(t, { kernel: c.k, stride: c.s, padding: c.p, dilation: c.d });
      const r = await forwardBackward(dev(), x, c.shape, pool);
      const ref = maxPoolRef(x, c.shape, c.k, c.s, c.p, c.d, r.dy);
      expect(r.yShape).toEqual(ref.yShape);
      expectClose(r.y, ref.y, 0);
      expectClose(r.dx, ref.dx, 0);
    });
  for (const c of cases)
    it(`${c.name}: forward and backward (gather over overlapping windows)`, async () => {
      const x = uniform(prod(c.shape), 5);
      const nd = c.k.length;
      const pool = (t: Tensor) => (nd === 3 ? maxPool3d : maxPool2d)(t, { kernel: c.k, stride: c.s, padding: c.p, dilation: c.d });
      const r = await forwardBackward(dev(), x, c.shape, pool);
      const ref = maxPoolRef(x, c.shape, c.k, c.s, c.p, c.d, r.dy);
      expect(r.yShape).toEqual(ref.yShape);
      expectClose(r.y, ref.y, 0);
      expectClose(r.dx, ref.dx, 1e-6);
    });

  it("ties route the gradient to the first maximum in window scan order", async () => {
    // values from {0, 1, 2}: most windows hold several maxima; padding 1 puts the first valid
    // element mid-window
    const shape = [1, 2, 6, 7];
    const x = uniform(prod(shape), 3, 0, 3).map(Math.floor);
    const r = await forwardBackward(dev(), x, shape, (t) => maxPool2d(t, { kernel: 3, stride: 2, padding: 1 }));
    const ref = maxPoolRef(x, shape, [3, 3], [2, 2], [1, 1], [1, 1], r.dy);
    expectClose(r.y, ref.y, 0);
    expectClose(r.dx, ref.dx, 1e-6);
    const ones = await forwardBackward(dev(), new Array(24).fill(1), [1, 1, 4, 6], (t) => maxPool2d(t, { kernel: 2 }));
    // constant input: each 2x2 window's top-left element takes all of its dy
    const want = new Array(24).fill(0);
    for (let oh = 0; oh < 2; oh++) for (let ow = 0; ow < 3; ow++) want[oh * 2 * 6 + ow * 2] = ones.dy[oh * 3 + ow]!;
    expectClose(ones.dx, want, 1e-7);
    // the same on W 8 (the vec4 W-pair forward)
    const ones8 = await forwardBackward(dev(), new Array(32).fill(1), [1, 1, 4, 8], (t) => maxPool2d(t, { kernel: 2 }));
    const want8 = new Array(32).fill(0);
    for (let oh = 0; oh < 2; oh++) for (let ow = 0; ow < 4; ow++) want8[oh * 2 * 8 + ow * 2] = ones8.dy[oh * 4 + ow]!;
    expectClose(ones8.dx, want8, 1e-7);
    const tiesW8 = uniform(2 * 6 * 8, 4, 0, 3).map(Math.floor);
    const r8 = await forwardBackward(dev(), tiesW8, [1, 2, 6, 8], (t) => maxPool2d(t, { kernel: 2 }));
    const ref8 = maxPoolRef(tiesW8, [1, 2, 6, 8], [2, 2], [2, 2], [0, 0], [1, 1], r8.dy);
    expectClose(r8.y, ref8.y, 0);
    expectClose(r8.dx, ref8.dx, 1e-6);
  });

  it("a NaN wins its window and takes the gradient (PyTorch), in both forward entries", async () => {
    for (const w of [6, 8]) {
      const shape = [1, 1, 2, w];
      const x = Array.from({ length: 2 * w }, (_, i) => i % 5);
      x[w + 1] = NaN; // second row, second column: the last element of window 0 in scan order
      x[2] = NaN; // first row, third column: the first element of window 1
      const r = await forwardBackward(dev(), x, shape, (t) => maxPool2d(t, { kernel: 2 }));
      expect(Number.isNaN(r.y[0])).toBe(true);
      expect(Number.isNaN(r.y[1])).toBe(true);
      expect(r.dx[w + 1]).toBeCloseTo(r.dy[0]!, 6);
      expect(r.dx[2]).toBeCloseTo(r.dy[1]!, 6);
      expect(r.dx[0]).toBe(0);
    }
  });

  // KD×2×2 windows at stride KD×2×2 on W a multiple of 8: the vec4 quad forward (main_q) and
  // backward (scatter_q), checked to have run; sizes chosen so the grid-stride carries over every digit (W quads, H, D, N·C)
  const quadCases: { name: string; shape: number[]; k: number[]; x?: (n: number) => number[] }[] = [
    { name: "3d 2³, batch 3, odd D and H (floored tails), W 24 (3 quads a row)", shape: [3, 5, 7, 9, 24], k: [2, 2, 2] },
    { name: "3d 2³ non-cubic, W 8 (1 quad a row)", shape: [2, 3, 6, 10, 8], k: [2, 2, 2] },
    { name: "3d 1×2×2 (KD 1)", shape: [1, 4, 3, 6, 16], k: [1, 2, 2] },
    { name: "3d 3×2×2 (KD 3), D 10 floored", shape: [2, 2, 10, 4, 32], k: [3, 2, 2] },
    { name: "2d 2×2, batch 2, odd H", shape: [2, 3, 9, 40], k: [2, 2] },
    { name: "3d 2³ ties (values 0, 1, 2)", shape: [2, 3, 6, 6, 16], k: [2, 2, 2], x: (n) => uniform(n, 13, 0, 3).map(Math.floor) },
    {
      name: "3d 2³ NaN in every slot of a window, one or two per window",
      shape: [1, 2, 4, 4, 16],
      k: [2, 2, 2],
      // window w (of 64) gets a NaN at tap w % 8 and, for every third window, one more at tap (w + 3) % 8
      x: (n) => {
        const v = uniform(n, 17);
        for (let w = 0; w < 64; w++)
          for (const t of w % 3 === 0 ? [w % 8, (w + 3) % 8] : [w % 8]) {
            const [c, od, oh, ow] = [w >> 5, (w >> 4) & 1, (w >> 3) & 1, w & 7];
            const [kd, kh, kw] = [t >> 2, (t >> 1) & 1, t & 1];
            v[c * 256 + (2 * od + kd) * 64 + (2 * oh + kh) * 16 + 2 * ow + kw] = NaN;
          }
        return v;
      },
    },
  ];
  for (const c of quadCases)
    it(`${c.name}: vec4 quad forward and backward`, async () => {
      const d = dev();
      const x = c.x ? c.x(prod(c.shape)) : uniform(prod(c.shape), 7);
      const pool = (t: Tensor) => (c.k.length === 3 ? maxPool3d : maxPool2d)(t, { kernel: c.k });
      // pooled buffers of dx's size left full of 7s (x takes one): scatter_q must write every
      // element of dx where no D/H tail makes the op zero-fill it
      const stale = [0, 1, 2, 3].map(() => Tensor.from(d, new Array<number>(prod(c.shape)).fill(7), c.shape));
      stale.forEach((t) => t.dispose());
      const spy = vi.spyOn(d, "dispatch");
      const r = await forwardBackward(d, x, c.shape, pool);
      const entries = spy.mock.calls.map(([call]) => call.entry);
      spy.mockRestore();
      expect(entries).toContain("main_q");
      expect(entries).toContain("scatter_q");
      const ones = c.k.map(() => 1);
      const ref = maxPoolRef(x, c.shape, c.k, c.k, ones.map(() => 0), ones, r.dy);
      expect(r.yShape).toEqual(ref.yShape);
      const yBits = Array.from(r.y, (v) => (Number.isNaN(v) ? "NaN" : v));
      expect(yBits).toEqual(ref.y.map((v) => (Number.isNaN(v) ? "NaN" : Math.fround(v))));
      expectClose(r.dx, ref.dx, 0);
    });

  it("takes the quad forward only where it applies (W multiple of 8, no padding/dilation, stride = kernel)", async () => {
    const d = dev();
    const entryOf = (shape: number[], opts: Parameters<typeof maxPool3d>[1]) => {
      const spy = vi.spyOn(d, "dispatch");
      tidy(d, () => void maxPool3d(Tensor.zeros(d, shape), opts));
      const e = spy.mock.calls.map(([call]) => call.entry);
      spy.mockRestore();
      return e;
    };
    expect(entryOf([1, 1, 4, 4, 16], { kernel: 2 })).toEqual(["main_q"]);
    expect(entryOf([1, 1, 4, 4, 12], { kernel: 2 })).toEqual(["main_w2"]);
    expect(entryOf([1, 1, 4, 4, 16], { kernel: 2, padding: [1, 0, 0] })).toEqual(["main_w2"]);
    expect(entryOf([1, 1, 4, 5, 16], { kernel: 2, dilation: [1, 2, 1] })).toEqual(["main_w2"]);
    expect(entryOf([1, 1, 4, 4, 16], { kernel: [2, 3, 2], stride: [2, 2, 2] })).toEqual(["main_w2"]);
    expect(entryOf([1, 1, 4, 4, 16], { kernel: 2, stride: [1, 2, 2] })).toEqual(["main_w2"]);
    expect(entryOf([1, 1, 4, 4, 18], { kernel: 2 })).toEqual(["main"]);
    await d.flush();
  });

  it("accepts unbatched input, a scalar kernel and the default stride", async () => {
    const shape = [2, 4, 4, 6];
    const x = uniform(prod(shape), 8);
    const y = maxPool3d(Tensor.from(dev(), x, shape), { kernel: 2 });
    expect(y.shape).toEqual([2, 2, 2, 3]);
    expectClose(await y.read(), maxPoolRef(x, shape, [2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1]).y, 0);
  });

  it("rejects bad inputs with errors naming the problem", () => {
    const d = dev();
    const x4 = Tensor.zeros(d, [1, 1, 4, 4]);
    const x5 = Tensor.zeros(d, [1, 1, 4, 4, 4]);
    expect(() => maxPool3d(Tensor.zeros(d, [4, 4, 4]), { kernel: 2 })).toThrow(/max_pool3d: 'x' must have rank 4 or 5, got \[4, 4, 4\]/);
    expect(() => maxPool2d(x5, { kernel: 2 })).toThrow(/max_pool2d: 'x' must have rank 3 or 4/);
    expect(() => maxPool2d(Tensor.zeros(d, [1, 1, 4, 4], "i32"), { kernel: 2 })).toThrow(/'x' must be f32, got i32/);
    expect(() => maxPool2d(x4, { kernel: [2, 2, 2] })).toThrow(/'kernel' must be an integer >= 1 or 2 of them/);
    expect(() => maxPool2d(x4, { kernel: 2, stride: 0 })).toThrow(/'stride'/);
    expect(() => maxPool2d(x4, { kernel: 2, padding: 2 })).toThrow(/padding \[2, 2\] must be at most half the kernel/);
    expect(() => maxPool2d(x4, { kernel: 2, ceilMode: true })).toThrow(/ceilMode=true is not supported/);
    expect(() => maxPool3d(x5, { kernel: 5 })).toThrow(/output size \[0, 0, 0\] is too small/);
    expect(() => maxPool3d(x5, { kernel: 5 })).toThrow(PulmoError);
  });
});

describe("upsampling against a float64 reference", () => {
  const dev = useDevice();
  const cases: { name: string; shape: number[]; opts: Parameters<typeof upsample>[1] }[] = [
    { name: "trilinear, non-integer scales (1.5, 2.5, 0.6)", shape: [2, 2, 3, 4, 5], opts: { mode: "trilinear", scale: [1.5, 2.5, 0.6] } },
    { name: "trilinear, align_corners", shape: [1, 2, 3, 2, 4], opts: { mode: "trilinear", scale: 2, alignCorners: true } },
    { name: "bilinear, explicit size (downsample H, upsample W)", shape: [2, 3, 7, 3], opts: { mode: "bilinear", size: [4, 8] } },
    { name: "bilinear, size-1 input dim and align_corners", shape: [1, 2, 1, 5], opts: { mode: "bilinear", size: [3, 9], alignCorners: true } },
    { name: "nearest 3d, scale (3, 1.5, 0.5)", shape: [1, 2, 2, 4, 6], opts: { mode: "nearest", scale: [3, 1.5, 0.5] } },
    { name: "nearest 2d, explicit size", shape: [2, 1, 5, 3], opts: { mode: "nearest", size: [7, 8] } },
    // scale 1.2 on 3 gives 3 (PyTorch copies), 2.1 on 4 gives 8 (PyTorch halves: o >> 1, not floor(o / 2.1))
    { name: "nearest 2d, scales whose output is the input size or twice it", shape: [1, 2, 3, 4], opts: { mode: "nearest", scale: [1.2, 2.1] } },
    { name: "bilinear, scale 1.2 (W keeps its size 3; linear has no copy shortcut)", shape: [1, 1, 5, 3], opts: { mode: "bilinear", scale: 1.2 } },
    { name: "linear 1d, scale 2.5", shape: [2, 3, 4], opts: { mode: "linear", scale: 2.5 } },
    // the general forward (mainh / mainh4) takes quads of 4 outputs along W from a window of input
    // columns, walking 8 output rows down H; strong W downsampling (a window over 8 columns)
    // takes its direct path. W 21 here: the ×2 path's scalar blocks (main2x)
    { name: "trilinear ×2 with W 21 (several W blocks)", shape: [1, 2, 3, 4, 21], opts: { mode: "trilinear", scale: 2 } },
    { name: "bilinear, strong W downsampling (40 → 3) and align_corners", shape: [1, 2, 5, 40], opts: { mode: "bilinear", size: [3, 3], alignCorners: true } },
    { name: "bilinear, strong W downsampling (60 → 7)", shape: [2, 1, 3, 60], opts: { mode: "bilinear", size: [5, 7] } },
    { name: "nearest 2d, strong W downsampling (50 → 3)", shape: [1, 2, 2, 50], opts: { mode: "nearest", size: [4, 3] } },
    // the ×2 fast path (linear, align_corners=False, W doubled, D and H doubled or kept): even
    // input W takes vec4 blocks of outputs 4k .. 4k + 3, odd W scalar blocks 4k − 1 .. 4k + 2
    { name: "trilinear ×2 fast path, even W (vec4 blocks), odd D and H", shape: [1, 2, 3, 5, 6], opts: { mode: "trilinear", scale: 2 } },
    { name: "trilinear ×2 fast path, odd W 7, D kept", shape: [2, 1, 3, 4, 7], opts: { mode: "trilinear", scale: [1, 2, 2] } },
    { name: "trilinear ×2 fast path, D doubled and H kept, size-1 D", shape: [1, 2, 1, 3, 8], opts: { mode: "trilinear", scale: [2, 1, 2] } },
    { name: "bilinear ×2 fast path, H 19 (three H segments of the sliding rows)", shape: [1, 2, 19, 4], opts: { mode: "bilinear", scale: 2 } },
    { name: "trilinear ×2 fast path, H 10 kept (two H segments)", shape: [1, 1, 2, 10, 4], opts: { mode: "trilinear", scale: [2, 1, 2] } },
    { name: "bilinear ×2 fast path, size-1 H and W 2", shape: [1, 3, 1, 2], opts: { mode: "bilinear", size: [2, 4] } },
    { name: "linear 1d ×2 fast path, W 5", shape: [2, 2, 5], opts: { mode: "linear", scale: 2 } },
    { name: "linear 1d ×2 fast path, W 1", shape: [1, 2, 1], opts: { mode: "linear", scale: 2 } },
    // nearest ×2: the backward's ×2 passes with weights 0, 1, 1, 0 (fused H+W, odd and even W)
    { name: "nearest 3d ×2, odd W 5", shape: [1, 2, 3, 4, 5], opts: { mode: "nearest", scale: 2 } },
    { name: "nearest 3d ×2 on D and W, H kept, W 6", shape: [1, 2, 2, 3, 6], opts: { mode: "nearest", scale: [2, 1, 2] } },
    { name: "nearest 3d ×2, even W 4", shape: [2, 1, 2, 3, 4], opts: { mode: "nearest", scale: 2 } },
    // H keeps its size 3 at ratio 1 / 1.2: not an identity, the backward must not skip it
    { name: "bilinear scale (1.2, 2): H kept in size, not in ratio", shape: [1, 1, 3, 4], opts: { mode: "bilinear", scale: [1.2, 2] } },
    // linear at an integer factor S > 2: the backward's fixed-weight passes (xs), even and odd S,
    // the edges folding the taps of the inputs past either end, a size-1 axis (both edges at once)
    { name: "bilinear ×4 (backward ×S, S even)", shape: [1, 2, 3, 5], opts: { mode: "bilinear", scale: 4 } },
    { name: "trilinear ×(3, 4, 2) (S odd on D)", shape: [1, 1, 2, 3, 4], opts: { mode: "trilinear", scale: [3, 4, 2] } },
    { name: "linear 1d ×5", shape: [2, 1, 3], opts: { mode: "linear", scale: 5 } },
    { name: "linear 1d ×3 on W 1", shape: [1, 2, 1], opts: { mode: "linear", scale: 3 } },
    { name: "bilinear ×4 by size, ×3 W", shape: [1, 1, 2, 3], opts: { mode: "bilinear", size: [8, 9] } },
    // output twice the input but ratio 1 / 2.1 (PyTorch uses the scale): not the ×2 path
    { name: "bilinear scale 2.1 (output 2 in, ratio 1 / 2.1)", shape: [1, 1, 3, 4], opts: { mode: "bilinear", scale: 2.1 } },
    { name: "bilinear ×2, align_corners (not the ×2 path)", shape: [1, 2, 3, 6], opts: { mode: "bilinear", scale: 2, alignCorners: true } },
    // the backward's per-axis passes walk blocks of 16 inputs: several blocks along H and D
    { name: "bilinear, H 35 → 70 (three backward blocks along H)", shape: [1, 2, 35, 4], opts: { mode: "bilinear", size: [70, 5] } },
    { name: "trilinear, D 18 → 27 and H 33 → 20, align_corners", shape: [1, 1, 18, 33, 2], opts: { mode: "trilinear", size: [27, 20, 3], alignCorners: true } },
  ];
  for (const c of cases)
    it(`${c.name}: forward and backward`, async () => {
      const x = uniform(prod(c.shape), 17);
      const r = await forwardBackward(dev(), x, c.shape, (t) => upsample(t, c.opts));
      const sp = c.shape.slice(2);
      const out = r.yShape.slice(2);
      const linear = c.opts.mode !== "nearest";
      const align = c.opts.alignCorners ?? false;
      const scale = c.opts.scale === undefined ? null : typeof c.opts.scale === "number" ? sp.map(() => c.opts.scale as number) : [...c.opts.scale];
      if (scale) expect(out).toEqual(sp.map((n, d) => Math.floor(n * scale[d]!)));
      else expect(out).toEqual(c.opts.size);
      const ratio = sp.map((n, d) => {
        const o = out[d]!;
        if (linear && align) return o > 1 ? (n - 1) / (o - 1) : 0;
        if (!linear && o === n) return 1; // PyTorch CPU's nearest_idx: copy when out == in ...
        if (!linear && o === 2 * n) return 0.5; // ... and halve when out == 2 in, whatever the scale
        return scale ? 1 / scale[d]! : n / o;
      });
      const ref = upsampleRef(x, c.shape, out, ratio, linear, align, r.dy);
      expectClose(r.y, ref.y, 1e-5);
      expectClose(r.dx, ref.dx, 1e-5);
    });

  it("rejects bad inputs with errors naming the problem", () => {
    const d = dev();
    const x4 = Tensor.zeros(d, [1, 1, 4, 4]);
    expect(() => upsample(Tensor.zeros(d, [4, 4]), { scale: 2 })).toThrow(/upsample: 'x' must have rank 3 or 4 or 5, got \[4, 4\]/);
    expect(() => upsample(Tensor.zeros(d, [1, 1, 4, 4], "u32"), { scale: 2 })).toThrow(/'x' must be f32, got u32/);
    expect(() => upsample(x4, { mode: "trilinear", scale: 2 })).toThrow(/'trilinear' needs a rank-5 'x', got \[1, 1, 4, 4\]/);
    expect(() => upsample(x4, { scale: [2, 2, 2] })).toThrow(/'scale' must be 2 positive numbers/);
    expect(() => upsample(x4, { scale: 0.1 })).toThrow(/gives an empty output \[0, 0\]/);
    expect(() => upsample(x4, { size: [3, 0] })).toThrow(/'size' must be 2 positive integers/);
    expect(() => upsample(x4, { scale: 2, size: [8, 8] })).toThrow(/exactly one of 'scale' and 'size'/);
    expect(() => upsample(x4, { mode: "nearest", scale: 2, alignCorners: true })).toThrow(/alignCorners is only valid with a linear mode/);
    expect(() => upsample(x4, { mode: "bicubic" as any, scale: 2 })).toThrow(/unknown mode 'bicubic'/);
  });
});

/** float64 PReLU: y, dx, dw for weight of 1 or C elements (channel = dim 1). */
function preluRef(x: number[], shape: number[], w: number[], dy: number[]) {
  const inner = w.length === 1 ? x.length : prod(shape.slice(2));
  const ch = (i: number) => (w.length === 1 ? 0 : Math.floor(i / inner) % w.length);
  const dw = new Array<number>(w.length).fill(0);
  const y = x.map((v, i) => (v > 0 ? v : w[ch(i)]! * v));
  const dx = x.map((v, i) => (v > 0 ? dy[i]! : w[ch(i)]! * dy[i]!));
  x.forEach((v, i) => {
    if (v <= 0) dw[ch(i)] += v * dy[i]!;
  });
  return { y, dx, dw };
}

describe("prelu against a float64 reference", () => {
  const dev = useDevice();
  const cases = [
    { name: "per-channel slopes on a 3d volume", shape: [2, 3, 4, 5, 6], c: 3 },
    { name: "one slope over enough elements for several partial sums", shape: [2, 3, 40, 41], c: 1 },
    { name: "per-channel slopes, several partial sums per channel", shape: [3, 2, 50, 50], c: 2 },
    { name: "rank-2 input with per-feature slopes", shape: [5, 7], c: 7 },
  ];
  for (const c of cases)
    it(`${c.name}: forward, dx and dweight`, async () => {
      const d = dev();
      const x = uniform(prod(c.shape), 21);
      const w = uniform(c.c, 23, 0, 0.5);
      const dy = uniform(x.length, 29);
      const xt = Tensor.from(d, x, c.shape);
      const wt = Tensor.from(d, w, [c.c]);
      xt.requiresGrad = true;
      wt.requiresGrad = true;
      const y = prelu(xt, wt);
      const ref = preluRef(x, c.shape, w, dy);
      expectClose(await y.read(), ref.y, 1e-6);
      backward([y], [Tensor.from(d, dy, c.shape)]);
      expectClose(await xt.grad!.read(), ref.dx, 1e-6);
      expect(wt.grad!.shape).toEqual([c.c]);
      const scale = Math.max(1, ...ref.dw.map(Math.abs));
      expectClose(await wt.grad!.read(), ref.dw, 1e-5 * scale);
    });

  it("rejects bad inputs with errors naming the problem", () => {
    const d = dev();
    const x = Tensor.zeros(d, [2, 3, 4]);
    expect(() => prelu(x, Tensor.zeros(d, [4]))).toThrow(/prelu: 'weight' \[4\] must have 1 element or one per channel \(dim 1\) of 'x' \[2, 3, 4\]/);
    expect(() => prelu(Tensor.zeros(d, [6]), Tensor.zeros(d, [6]))).toThrow(/one per channel/);
    expect(() => prelu(x, Tensor.zeros(d, [1, 3]))).toThrow(/'weight' must have rank 0 or 1, got \[1, 3\]/);
    expect(() => prelu(x, Tensor.zeros(d, [3], "i32"))).toThrow(/'weight' must be f32, got i32/);
    expect(() => prelu(Tensor.zeros(d, [2, 3], "u32"), Tensor.zeros(d, [1]))).toThrow(/'x' must be f32/);
  });
});

describe("launch splitting", () => {
  // 8 workgroups per dim forces the launches below (and prelu's per-channel reductions) onto x and y
  const dev = useDevice({ limits: { maxWorkgroupsPerDim: 8 } });
  it("gives the same results with launches split over x and y", async () => {
    const shape = [2, 3, 12, 12]; // dx: 14 workgroups
    const x = uniform(prod(shape), 31);
    const p = await forwardBackward(dev(), x, shape, (t) => maxPool2d(t, { kernel: 3, stride: 2, padding: 1 }));
    const pr = maxPoolRef(x, shape, [3, 3], [2, 2], [1, 1], [1, 1], p.dy);
    expectClose(p.y, pr.y, 0);
    expectClose(p.dx, pr.dx, 1e-6);
    const qs = [2, 4, 18, 16, 64]; // main_q forward: 4608 quads, 9 workgroups (its backward would need 288)
    const qx = uniform(prod(qs), 35);
    const qy = await maxPool3d(Tensor.from(dev(), qx, qs), { kernel: 2 }).read();
    expectClose(qy, maxPoolRef(qx, qs, [2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1]).y, 0);
    const us = [1, 3, 8, 9]; // y: 14 workgroups
    const ux = uniform(prod(us), 33);
    const u = await forwardBackward(dev(), ux, us, (t) => upsample(t, { mode: "bilinear", scale: 2 }));
    const ur = upsampleRef(ux, us, [16, 18], [0.5, 0.5], true, false, u.dy);
    expectClose(u.y, ur.y, 1e-5);
    expectClose(u.dx, ur.dx, 1e-5);
    const ps = [1, 9, 20, 20]; // forward: 57 workgroups; backward and reduce: one per channel, 9
    const px = uniform(prod(ps), 37), pw = uniform(9, 41, 0, 0.5), pdy = uniform(prod(ps), 43);
    const xt = Tensor.from(dev(), px, ps), wt = Tensor.from(dev(), pw, [9]);
    xt.requiresGrad = wt.requiresGrad = true;
    const y = prelu(xt, wt);
    backward([y], [Tensor.from(dev(), pdy, ps)]);
    const ref = preluRef(px, ps, pw, pdy);
    expectClose(await y.read(), ref.y, 1e-6);
    expectClose(await xt.grad!.read(), ref.dx, 1e-6);
    expectClose(await wt.grad!.read(), ref.dw, 1e-4);
  });

});

describe("buffer hygiene", () => {
  const dev = useDevice();
  it("releases every temporary (the pool stops growing)", async () => {
    const d = dev();
    const step = () =>
      tidy(d, () => {
        const x = Tensor.from(d, uniform(2 * 3 * 6 * 6, 1), [2, 3, 6, 6]);
        const w = Tensor.from(d, [0.1, 0.2, 0.3], [3]);
        x.requiresGrad = w.requiresGrad = true;
        const y = upsample(prelu(maxPool2d(x, { kernel: 3, stride: 2, padding: 1 }), w), { mode: "bilinear", scale: 1.5 });
        const v = Tensor.from(d, uniform(2 * 3 * 2 * 4 * 4, 3), [2, 3, 2, 4, 4]);
        v.requiresGrad = true;
        const u = maxPool3d(upsample(v, { mode: "trilinear", scale: [1, 2, 2] }), { kernel: [2, 2, 2] });
        backward([y, u], [Tensor.from(d, uniform(y.size, 2), y.shape), Tensor.from(d, uniform(u.size, 4), u.shape)]);
        v.grad!.dispose();
        x.grad!.dispose();
        w.grad!.dispose();
      });
    step();
    await d.flush();
    const inUse = d.pool.inUseBytes, created = d.pool.buffersCreated;
    for (let k = 0; k < 3; k++) step();
    await d.flush();
    expect(d.pool.inUseBytes).toBe(inUse);
    expect(d.pool.buffersCreated).toBe(created);
  });
});

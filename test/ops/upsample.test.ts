// upsample's ×2 fast paths (resample/upsample main2x8, resample/upsample_axis x2i4 and the
// vec4-load W adjoint of x2w4 / x2hw4) against a float64 reference, each case checking which
// entries it dispatched; the general paths and the older fast paths stay covered by
// test/ops/pool.test.ts ("upsampling against a float64 reference").
import { describe, expect, it, vi } from "vitest";
import { useDevice } from "../helpers.ts";
import { uniform } from "../random.ts";
import { Tensor, backward, upsample, type Device } from "../../src/node.ts";

const prod = (a: readonly number[]) => a.reduce((p, v) => p * v, 1);

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1]! * shape[d + 1]!;
  return s;
}

/** PyTorch's per-dim source taps in float32 arithmetic, as its CPU kernel does for f32 tensors. */
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

/** float64 F.interpolate as an explicit linear map over the spatial dims: y and dx = Aᵀ dy. */
function upsampleRef(x: number[], shape: number[], out: number[], ratio: number[], linear: boolean, align: boolean, dy: number[]) {
  const nd = out.length;
  const lead = shape.slice(0, 2), sp = shape.slice(2);
  const yShape = [...lead, ...out];
  const xs = strides(shape), ys = strides(yShape);
  const y: number[] = [];
  const dx = new Array<number>(x.length).fill(0);
  for (let o = 0; o < prod(yShape); o++) {
    const oi = yShape.map((d, i) => Math.floor(o / ys[i]!) % d);
    let terms: [number, number][] = [[oi[0]! * xs[0]! + oi[1]! * xs[1]!, 1]];
    for (let d = 0; d < nd; d++) {
      const [i0, i1, l0, l1] = taps(oi[2 + d]!, sp[d]!, ratio[d]!, linear, align);
      const st = xs[2 + d]!;
      terms = terms.flatMap(([f, w]) => [[f + i0 * st, w * l0], [f + i1 * st, w * l1]] as [number, number][]);
    }
    y.push(terms.reduce((a, [f, w]) => a + w * x[f]!, 0));
    for (const [f, w] of terms) dx[f] += w * dy[o]!;
  }
  return { y, dx };
}

function expectClose(actual: ArrayLike<number>, ref: number[], tol = 1e-5): void {
  expect(actual.length).toBe(ref.length);
  let worst = 0;
  for (let k = 0; k < ref.length; k++) worst = Math.max(worst, Math.abs(actual[k]! - ref[k]!));
  expect(worst).toBeLessThanOrEqual(tol);
}

/** Forward and backward through the op, with the entries of resample/* it dispatched. */
async function run(dev: Device, x: number[], shape: number[], opts: Parameters<typeof upsample>[1]) {
  const spy = vi.spyOn(dev, "dispatch");
  try {
    const xt = Tensor.from(dev, x, shape);
    xt.requiresGrad = true;
    const y = upsample(xt, opts);
    const dy = uniform(y.size, 99);
    const yv = await y.read();
    backward([y], [Tensor.from(dev, dy, y.shape)]);
    const dx = await xt.grad!.read();
    const entries = spy.mock.calls.map(([c]) => c).filter((c) => c.kernel.startsWith("resample/")).map((c) => `${c.kernel.slice(9)}:${c.entry ?? "main"}`);
    return { y: yv, yShape: y.shape, dy, dx, entries };
  } finally {
    spy.mockRestore();
  }
}

// Both paths: with fixed-size subgroups (lavapipe: 8) the fused W+H backward is x2hw4_sg
// (resample/upsample_axis_sg: neighbour columns by shuffle), without them x2hw4.
const PATHS = [{ subgroups: true }, { subgroups: false }];

/** The entries a case lists for the portable path, as the given device dispatches them. */
function onPath(d: Device, entries: string[]): string[] {
  if (d.subgroupSize === null) return entries;
  return entries.map((e) => (e === "upsample_axis:x2hw4" ? "upsample_axis_sg:x2hw4_sg" : e));
}

describe.each(PATHS)("upsample ×2 fast paths against a float64 reference (subgroups: $subgroups)", ({ subgroups }) => {
  const dev = useDevice({ subgroups });
  // entries: the forward's, then the backward's in order
  const cases: { name: string; shape: number[]; opts: Parameters<typeof upsample>[1]; entries: string[] }[] = [
    // main2x8 (input W a multiple of 4); backward x2hw4 (vec4-load W adjoint) then the D pass x2i4
    { name: "trilinear ×2, W 8, odd D and H, batch 2", shape: [2, 3, 3, 5, 8], opts: { mode: "trilinear", scale: 2 }, entries: ["upsample:main2x8", "upsample_axis:x2hw4", "upsample_axis:x2i4"] },
    // D 17: three D segments of x2i4 (SEG 8)
    { name: "trilinear ×2, non-cubic D 17 × H 19 × W 12", shape: [1, 2, 17, 19, 12], opts: { mode: "trilinear", scale: 2 }, entries: ["upsample:main2x8", "upsample_axis:x2hw4", "upsample_axis:x2i4"] },
    // D 35: five D segments of x2i4 (SEG 8), the last of 3; x2hw4_sg's subgroups span 8 rows of 1 quad
    { name: "trilinear ×2, D 35 × H 3 × W 4, 3 channels", shape: [1, 3, 35, 3, 4], opts: { mode: "trilinear", scale: 2 }, entries: ["upsample:main2x8", "upsample_axis:x2hw4", "upsample_axis:x2i4"] },
    { name: "trilinear ×2, size-1 D and H, W 4", shape: [1, 2, 1, 1, 4], opts: { mode: "trilinear", scale: 2 }, entries: ["upsample:main2x8", "upsample_axis:x2hw4", "upsample_axis:x2i4"] },
    { name: "trilinear ×2 by size, W 16, H 9", shape: [2, 1, 2, 9, 16], opts: { mode: "trilinear", size: [4, 18, 32] }, entries: ["upsample:main2x8", "upsample_axis:x2hw4", "upsample_axis:x2i4"] },
    // nearest ×2: the forward's own path (near2x4), the backward's passes with weights 0, 1, 1, 0
    { name: "nearest 3d ×2, W 8, odd D and H, batch 2", shape: [2, 2, 3, 9, 8], opts: { mode: "nearest", scale: 2 }, entries: ["upsample:near2x4", "upsample_axis:x2hw4", "upsample_axis:x2i4"] },
    // D kept (2D): main2x8 with one row load per step; backward x2hw4 alone (vec4-load W adjoint)
    // H 35: two H segments of main2x8 and of x2hw4 (32 rows each)
    { name: "bilinear ×2, W 4, H 35", shape: [1, 2, 35, 4], opts: { mode: "bilinear", scale: 2 }, entries: ["upsample:main2x8", "upsample_axis:x2hw4"] },
    { name: "bilinear ×2, W 6, H 35 (main2x4, scalar x2hw in two segments)", shape: [2, 1, 35, 6], opts: { mode: "bilinear", scale: 2 }, entries: ["upsample:main2x4", "upsample_axis:x2hw"] },
    { name: "bilinear ×2, W 12, H 17, batch 2", shape: [2, 3, 17, 12], opts: { mode: "bilinear", scale: 2 }, entries: ["upsample:main2x8", "upsample_axis:x2hw4"] },
    { name: "trilinear ×(1, 2, 2), W 4", shape: [1, 2, 3, 5, 4], opts: { mode: "trilinear", scale: [1, 2, 2] }, entries: ["upsample:main2x8", "upsample_axis:x2hw4"] },
    // H kept: main2x8's kept-H walk; backward W pass x2w4 (vec4 loads), D pass x2i4 (inner 5 · 8)
    { name: "trilinear ×(2, 1, 2), W 8, H 5 kept", shape: [1, 2, 3, 5, 8], opts: { mode: "trilinear", scale: [2, 1, 2] }, entries: ["upsample:main2x8", "upsample_axis:x2w4", "upsample_axis:x2i4"] },
    // W even but not a multiple of 4: main2x4; backward x2hw (scalar) then x2i4 (inner 5 · 6 = 30: no) → x2i
    { name: "trilinear ×2, W 6 (main2x4), H 5", shape: [1, 2, 3, 5, 6], opts: { mode: "trilinear", scale: 2 }, entries: ["upsample:main2x4", "upsample_axis:x2hw", "upsample_axis:x2i"] },
    // odd W 5, H 4: inner of the D pass 4 · 5 = 20, a multiple of 4 → x2i4
    { name: "trilinear ×2, W 5 (main2x), D pass x2i4", shape: [2, 1, 3, 4, 5], opts: { mode: "trilinear", scale: 2 }, entries: ["upsample:main2x", "upsample_axis:x2hw", "upsample_axis:x2i4"] },
    // H ×2 with W not ×2: the H pass is x2i4 over inner W 8, x2i over inner W 6
    { name: "bilinear ×(2, 1.5), W 8 → 12: H pass x2i4", shape: [1, 2, 3, 8], opts: { mode: "bilinear", scale: [2, 1.5] }, entries: ["upsample:mainh4", "upsample_axis:main", "upsample_axis:x2i4"] },
    { name: "bilinear ×(2, 1.5), W 6 → 9: H pass x2i", shape: [1, 2, 3, 6], opts: { mode: "bilinear", scale: [2, 1.5] }, entries: ["upsample:mainh", "upsample_axis:main", "upsample_axis:x2i"] },
    // 1-D linear ×2 at W 8: main2x8 with D and H kept, x2w4
    { name: "linear 1d ×2, W 8, batch 3", shape: [3, 2, 8], opts: { mode: "linear", scale: 2 }, entries: ["upsample:main2x8", "upsample_axis:x2w4"] },
    // align_corners ×2 takes none of the ×2 paths
    { name: "trilinear ×2 align_corners, W 8 (general paths)", shape: [1, 2, 3, 4, 8], opts: { mode: "trilinear", scale: 2, alignCorners: true }, entries: ["upsample:mainh4", "upsample_axis:main", "upsample_axis:main", "upsample_axis:main"] },
  ];
  for (const c of cases)
    it(`${c.name}: forward and backward`, async () => {
      const x = uniform(prod(c.shape), 17);
      const r = await run(dev(), x, c.shape, c.opts);
      const sp = c.shape.slice(2), out = r.yShape.slice(2);
      const linear = c.opts.mode !== "nearest";
      const align = c.opts.alignCorners ?? false;
      const ratio = sp.map((n, d) => {
        const o = out[d]!;
        if (linear && align) return o > 1 ? (n - 1) / (o - 1) : 0;
        if (!linear && o === n) return 1;
        if (!linear && o === 2 * n) return 0.5;
        const s = c.opts.scale;
        return s === undefined ? n / o : 1 / (typeof s === "number" ? s : s[d]!);
      });
      const ref = upsampleRef(x, c.shape, out, ratio, linear, align, r.dy);
      expectClose(r.y, ref.y, 1e-5);
      expectClose(r.dx, ref.dx, 1e-5);
      expect(r.entries).toEqual(onPath(dev(), c.entries));
    });
  // subgroups spanning rows (W 12, 20: 3 and 5 quads per row) and lanes past n in the last
  // subgroup, H segments of 32 and 3 rows in one subgroup (H 35, 2 quads), odd channels
  if (subgroups)
    it("ran x2hw4_sg where the device has subgroups, x2hw4 where not", async () => {
      const shape = [1, 3, 2, 35, 20];
      const x = uniform(prod(shape), 5);
      const r = await run(dev(), x, shape, { mode: "trilinear", scale: 2 });
      expect(r.entries).toEqual(onPath(dev(), ["upsample:main2x8", "upsample_axis:x2hw4", "upsample_axis:x2i4"]));
      const ref = upsampleRef(x, shape, [4, 70, 40], [0.5, 0.5, 0.5], true, false, r.dy);
      expectClose(r.dx, ref.dx, 1e-5);
      if (dev().subgroupSize !== null) expect(dev().pipelines.entries).toContain("resample/upsample_axis_sg:x2hw4_sg");
    });
  else
    it("ran no subgroup kernel", () => {
      expect(dev().subgroupSize).toBeNull();
      expect(dev().pipelines.entries.some((e) => e.includes("_sg"))).toBe(false);
    });
});

describe.each(PATHS)("upsample ×2 fast paths with launches split over x and y (subgroups: $subgroups)", ({ subgroups }) => {
  // 8 workgroups per dim: main2x8 needs 10 (640 blocks), x2hw4 18, x2i4 10
  const dev = useDevice({ subgroups, limits: { maxWorkgroupsPerDim: 8 } });
  it("trilinear ×2, W 16: same results as the float64 reference", async () => {
    const shape = [2, 8, 9, 5, 16];
    const x = uniform(prod(shape), 23);
    const r = await run(dev(), x, shape, { mode: "trilinear", scale: 2 });
    expect(r.entries).toEqual(onPath(dev(), ["upsample:main2x8", "upsample_axis:x2hw4", "upsample_axis:x2i4"]));
    const ref = upsampleRef(x, shape, [18, 10, 32], [0.5, 0.5, 0.5], true, false, r.dy);
    expectClose(r.y, ref.y, 1e-5);
    expectClose(r.dx, ref.dx, 1e-5);
  });
});

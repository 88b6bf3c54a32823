import { describe, expect, it } from "vitest";
import { expectGoldenClose, useDevice } from "../helpers.ts";
import { uniform } from "../random.ts";
import { Tensor, backward, convTranspose2d, convTranspose3d, type Device } from "../../src/node.ts";
import { ksPath } from "../../src/graph/ops/conv_transpose_ks.ts";

// Transposed convs whose kernel equals their stride (conv_transpose_ks.ts: one tap per output
// voxel, kernels/conv/conv_transposed_ks*.wgsl: the forward; the backward stays conv.ts's)
// against a float64 reference and against the general gather path (ksPath.enabled = false).

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  name: string;
  nd: 2 | 3;
  x: number[];
  w: number[]; // [Cin, Cout/g, ...k], k = stride
  groups: number;
  bias: boolean;
  entry: "main4" | "main"; // forward entry
}

/** y, and for upstream gradient dy: grad x, grad w, grad bias, all in float64. */
function reference(c: Case, xh: number[], wh: number[], bh: number[] | null, dy: number[]) {
  const x3 = c.nd === 3 ? c.x : [c.x[0]!, c.x[1]!, 1, c.x[2]!, c.x[3]!];
  const w3 = c.nd === 3 ? c.w : [c.w[0]!, c.w[1]!, 1, c.w[2]!, c.w[3]!];
  const [n, cin, d, h, wd] = x3 as [number, number, number, number, number];
  const [, coutG, kd, kh, kw] = w3 as [number, number, number, number, number];
  const cinG = cin / c.groups, cout = coutG * c.groups;
  const [od, oh, ow] = [d * kd, h * kh, wd * kw];
  const y = new Array<number>(n * cout * od * oh * ow).fill(0);
  const gx = new Array<number>(xh.length).fill(0), gw = new Array<number>(wh.length).fill(0);
  const gb = new Array<number>(cout).fill(0);
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < cout; oc++) {
      const g = Math.floor(oc / coutG), ocg = oc % coutG;
      for (let z = 0; z < od; z++)
        for (let u = 0; u < oh; u++)
          for (let v = 0; v < ow; v++) {
            const yi = (((b * cout + oc) * od + z) * oh + u) * ow + v;
            let s = bh ? bh[oc]! : 0;
            const tap = ((z % kd) * kh + (u % kh)) * kw + (v % kw);
            const xo = (Math.floor(z / kd) * h + Math.floor(u / kh)) * wd + Math.floor(v / kw);
            for (let icg = 0; icg < cinG; icg++) {
              const ic = g * cinG + icg;
              const xi = (b * cin + ic) * d * h * wd + xo, wi = (ic * coutG + ocg) * kd * kh * kw + tap;
              s += xh[xi]! * wh[wi]!;
              gx[xi]! += dy[yi]! * wh[wi]!;
              gw[wi]! += dy[yi]! * xh[xi]!;
            }
            y[yi] = s;
            gb[oc]! += dy[yi]!;
          }
    }
  const yShape = c.nd === 3 ? [n, cout, od, oh, ow] : [n, cout, oh, ow];
  return { y, gx, gw, gb, yShape };
}

const CASES: Case[] = [
  { name: "3D k2 s2, batch 2, 5 → 6 channels, odd 3×5×7 input (W tail)", nd: 3, x: [2, 5, 3, 5, 7], w: [5, 6, 2, 2, 2], groups: 1, bias: true, entry: "main" },
  { name: "3D k2 s2, groups 2, 3+3 → 3+3 channels, W 8, no bias", nd: 3, x: [2, 6, 3, 3, 8], w: [6, 3, 2, 2, 2], groups: 2, bias: false, entry: "main4" },
  { name: "3D k2 s2, 32 → 20 channels (two blocks of 16, the second partial), W 4", nd: 3, x: [1, 32, 2, 3, 4], w: [32, 20, 2, 2, 2], groups: 1, bias: true, entry: "main4" },
  { name: "3D k (1,2,3) = stride, 7 → 9 channels, W 5", nd: 3, x: [2, 7, 3, 2, 5], w: [7, 9, 1, 2, 3], groups: 1, bias: true, entry: "main" },
  { name: "3D k (3,1,1) = stride, groups 3, W 12", nd: 3, x: [1, 6, 2, 3, 12], w: [6, 5, 3, 1, 1], groups: 3, bias: true, entry: "main4" },
  { name: "2D k2 s2, batch 2, 3 → 17 channels, 5×6", nd: 2, x: [2, 3, 5, 6], w: [3, 17, 2, 2], groups: 1, bias: true, entry: "main" },
  { name: "2D k2 s2, groups 2, W 8, no bias", nd: 2, x: [2, 4, 3, 8], w: [4, 5, 2, 2], groups: 2, bias: false, entry: "main4" },
];

const PATHS = [
  { subgroups: true, kernel: "conv/conv_transposed_ks_sg" },
  { subgroups: false, kernel: "conv/conv_transposed_ks" },
];

async function run(d: Device, c: Case, seed: number, grads: boolean) {
  const xh = uniform(prod(c.x), seed), wh = uniform(prod(c.w), seed + 1);
  const cout = c.w[1]! * c.groups;
  const bh = c.bias ? uniform(cout, seed + 2) : null;
  const x = Tensor.from(d, xh, c.x), w = Tensor.from(d, wh, c.w);
  const b = bh ? Tensor.from(d, bh, [cout]) : null;
  if (grads) for (const t of [x, w, b]) if (t) t.requiresGrad = true;
  const stride = c.w.slice(2);
  const y = (c.nd === 3 ? convTranspose3d : convTranspose2d)(x, w, b, { stride, groups: c.groups });
  const ref = reference(c, xh, wh, bh, uniform(0, 1));
  const dyh = uniform(ref.y.length, seed + 3);
  const out: Record<string, ArrayLike<number>> = { y: await y.read() };
  if (grads) {
    const dy = Tensor.from(d, dyh, y.shape);
    backward([y], [dy]);
    out.gx = await x.grad!.read();
    out.gw = await w.grad!.read();
    if (b) out.gb = await b.grad!.read();
    for (const t of [dy, x.grad, w.grad, b?.grad]) t?.dispose();
  }
  for (const t of [x, w, b, y]) t?.dispose();
  return { out, xh, wh, bh, dyh, shape: y.shape };
}

describe.each(PATHS)("conv transpose, kernel = stride (subgroups: $subgroups)", ({ subgroups, kernel }) => {
  const dev = useDevice({ subgroups });

  for (const [i, c] of CASES.entries())
    it(`${c.name}: forward and backward match float64`, async () => {
      const d = dev();
      const r = await run(d, c, 100 + 10 * i, true);
      const ref = reference(c, r.xh, r.wh, r.bh, r.dyh);
      expect(r.shape).toEqual(ref.yShape);
      expectGoldenClose(r.out.y!, ref.y, `${c.name} y`);
      expectGoldenClose(r.out.gx!, ref.gx, `${c.name} grad_x`);
      expectGoldenClose(r.out.gw!, ref.gw, `${c.name} grad_weight`);
      if (c.bias) expectGoldenClose(r.out.gb!, ref.gb, `${c.name} grad_bias`);
      if (!subgroups || d.subgroupSize !== null) expect(d.pipelines.entries).toContain(`${kernel}:${c.entry}`);
    });

  it("matches the general gather path (conv_transposed.wgsl) on every case", async () => {
    const d = dev();
    for (const [i, c] of CASES.entries()) {
      const fast = await run(d, c, 7 + i, false);
      ksPath.enabled = false;
      try {
        const general = await run(d, c, 7 + i, false);
        expectGoldenClose(fast.out.y!, general.out.y!, `${c.name} y vs general`);
      } finally {
        ksPath.enabled = true;
      }
    }
    expect(d.pipelines.entries).toContain("conv/conv_transposed:main");
  });

  it("leaves output padding, padding and kernel != stride to the general path", async () => {
    const d = dev();
    const before = d.pipelines.entries.filter((e) => e.startsWith("conv/conv_transposed_ks")).length;
    const x = Tensor.from(d, uniform(2 * 3 * 4 * 4 * 4, 1), [2, 3, 4, 4, 4]);
    const w = Tensor.from(d, uniform(3 * 2 * 8, 2), [3, 2, 2, 2, 2]);
    const w3 = Tensor.from(d, uniform(3 * 2 * 27, 3), [3, 2, 3, 3, 3]);
    const ys = [
      convTranspose3d(x, w, null, { stride: 2, outputPadding: 1 }),
      convTranspose3d(x, w, null, { stride: 2, padding: 1 }),
      convTranspose3d(x, w3, null, { stride: 2 }),
      convTranspose3d(x, w, null, { stride: 1 }),
    ];
    expect(ys[0]!.shape).toEqual([2, 2, 9, 9, 9]);
    for (const y of ys) await y.read();
    // no new kernel_ks variant compiled: those four ran on conv_transposed
    expect(d.pipelines.entries.filter((e) => e.startsWith("conv/conv_transposed_ks")).length).toBe(before);
    expect(d.pipelines.entries).toContain("conv/conv_transposed:main");
    for (const t of [x, w, w3, ...ys]) t.dispose();
  });
});

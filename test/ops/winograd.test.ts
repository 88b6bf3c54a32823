// Winograd F(2×2, 3×3) conv2d (src/graph/ops/winograd.ts): forward and backward against a
// float64 reference and the direct conv2d, the eligible conv2d golden cases run through it, and
// the eligibility predicate. Tolerances are the conv tests' (rel_l2 1e-5, max_abs_rel 1e-4).
import { describe, expect, it } from "vitest";
import { goldenCases, useDevice, expectGoldenClose } from "../helpers.ts";
import { uniform } from "../random.ts";
import { Tensor, backward, conv2d, PulmoError, type Device } from "../../src/node.ts";
import { defaultTile, winogradConv2d, winogradEligible, WINOGRAD_F4_MAX_CIN, WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_CHANNEL_PRODUCT } from "../../src/graph/ops/winograd.ts";
import { ADAPTERS } from "../../src/golden/adapters/index.ts";
import { runCase } from "../../src/golden/runner.ts";

const prod = (v: number[]) => v.reduce((a, b) => a * b, 1);

/** float64 conv2d (3×3, stride 1) and the gradients of sum(y * dy), scatter form. */
function reference(x: number[], xs: number[], w: number[], cout: number, b: number[] | null, pad: [number, number], dy: number[]) {
  const [N, C, H, W] = xs as [number, number, number, number];
  const OH = H + 2 * pad[0] - 2, OW = W + 2 * pad[1] - 2;
  const y = new Array<number>(N * cout * OH * OW).fill(0);
  const gx = new Array<number>(x.length).fill(0), gw = new Array<number>(w.length).fill(0), gb = new Array<number>(cout).fill(0);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < cout; o++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const yi = ((n * cout + o) * OH + oh) * OW + ow;
          if (b) y[yi]! += b[o]!;
          gb[o]! += dy[yi]!;
          for (let c = 0; c < C; c++)
            for (let kh = 0; kh < 3; kh++)
              for (let kw = 0; kw < 3; kw++) {
                const ih = oh - pad[0] + kh, iw = ow - pad[1] + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const xi = ((n * C + c) * H + ih) * W + iw, wi = ((o * C + c) * 3 + kh) * 3 + kw;
                y[yi]! += x[xi]! * w[wi]!;
                gx[xi]! += dy[yi]! * w[wi]!;
                gw[wi]! += dy[yi]! * x[xi]!;
              }
        }
  return { y, yShape: [N, cout, OH, OW], gx, gw, gb };
}


interface Spec {
  name: string;
  x: [number, number, number, number];
  cout: number;
  pad: [number, number];
  bias: boolean;
}

/** (forward tile, backward tile) pairs: the default is F(4×4) forward where the output has 4×4,
 * F(2×2) backward; every pairing gives the same gradients. */
const TILES = [[2, 2], [4, 2], [2, 4], [4, 4]] as const;

const SPECS: Spec[] = [
  { name: "odd H, even W, N = 2, padding 1, bias, channels not multiples of 4", x: [2, 5, 7, 6], cout: 3, pad: [1, 1], bias: true },
  { name: "even H, odd W, padding 0, no bias", x: [1, 6, 8, 9], cout: 7, pad: [0, 0], bias: false },
  { name: "mixed padding [1, 0], odd output both ways", x: [2, 3, 5, 6], cout: 5, pad: [1, 0], bias: true },
  { name: "mixed padding [0, 1]", x: [1, 2, 6, 5], cout: 2, pad: [0, 1], bias: false },
  { name: "1×1 output (3×3 input, padding 0)", x: [2, 3, 3, 3], cout: 2, pad: [0, 0], bias: true },
  { name: "1×1 output (1×1 input, padding 1)", x: [1, 4, 1, 1], cout: 3, pad: [1, 1], bias: true },
  { name: "wider channels (partial GEMM tiles), 10×11", x: [1, 37, 10, 11], cout: 70, pad: [1, 1], bias: true },
];

async function checkSpec(dev: Device, c: Spec, seed: number, tile: 2 | 4, backTile: 2 | 4): Promise<void> {
  const [N, C] = c.x;
  const xh = uniform(prod(c.x), seed), wh = uniform(c.cout * C * 9, seed + 1);
  const bh = c.bias ? uniform(c.cout, seed + 2) : null;
  const OH = c.x[2] + 2 * c.pad[0] - 2, OW = c.x[3] + 2 * c.pad[1] - 2;
  const dyh = uniform(N * c.cout * OH * OW, seed + 3);
  const ref = reference(xh, c.x, wh, c.cout, bh, c.pad, dyh);
  {
    const x = Tensor.from(dev, xh, c.x), w = Tensor.from(dev, wh, [c.cout, C, 3, 3]);
    const b = bh ? Tensor.from(dev, bh, [c.cout]) : null;
    for (const t of [x, w, b]) if (t) t.requiresGrad = true;
    const y = winogradConv2d(x, w, b, c.pad, tile, backTile);
    expect(y.shape).toEqual(ref.yShape);
    backward([y], [Tensor.from(dev, dyh, ref.yShape)]);
    expectGoldenClose(await y.read(), ref.y, `${c.name} y`);
    expectGoldenClose(await x.grad!.read(), ref.gx, `${c.name} grad_x`);
    expectGoldenClose(await w.grad!.read(), ref.gw, `${c.name} grad_weight`);
    if (b) expectGoldenClose(await b.grad!.read(), ref.gb, `${c.name} grad_bias`);
    // and the direct conv2d on the same inputs
    const yd = conv2d(x, w, b, { padding: c.pad });
    expectGoldenClose(await y.read(), await yd.read(), `${c.name} y vs conv2d`);
    for (const t of [x, w, b, y, yd, x.grad, w.grad, b?.grad]) t?.dispose();
  }
}

describe("winogradConv2d", () => {
  const dev = useDevice();
  for (const [tile, back] of TILES)
    SPECS.forEach((c, i) =>
      it(`F(${tile}×${tile},3×3), backward F(${back}×${back}): matches the float64 reference and conv2d: ${c.name}`, () => checkSpec(dev(), c, 100 + 10 * i, tile, back)),
    );

  it("only x needs a gradient (no filter transform backward), and no grad at all", async () => {
    const d = dev();
    const xh = uniform(2 * 4 * 6 * 6, 7), wh = uniform(5 * 4 * 9, 8), dyh = uniform(2 * 5 * 6 * 6, 9);
    const ref = reference(xh, [2, 4, 6, 6], wh, 5, null, [1, 1], dyh);
    const x = Tensor.from(d, xh, [2, 4, 6, 6]), w = Tensor.from(d, wh, [5, 4, 3, 3]);
    x.requiresGrad = true;
    const y = winogradConv2d(x, w, null, [1, 1]);
    backward([y], [Tensor.from(d, dyh, [2, 5, 6, 6])]);
    expectGoldenClose(await x.grad!.read(), ref.gx, "grad_x");
    expect(w.grad).toBeNull();
    const y2 = winogradConv2d(Tensor.from(d, uniform(20 * 9, 3), [1, 20, 3, 3]), Tensor.from(d, uniform(2 * 20 * 9, 4), [2, 20, 3, 3]), null, [0, 0]);
    expect(y2.shape).toEqual([1, 2, 1, 1]);
    expect(y2.requiresGrad).toBe(false);
  });

  it("F(4×4) forward at the largest Cin the default picks it for (512) stays within the tolerance", async () => {
    const d = dev();
    const xs = [1, WINOGRAD_F4_MAX_CIN, 8, 8], cout = 4;
    const xh = uniform(prod(xs), 21), wh = uniform(cout * xs[1]! * 9, 22, -0.05, 0.05);
    const ref = reference(xh, xs, wh, cout, null, [1, 1], new Array<number>(prod([1, cout, 8, 8])).fill(0));
    expect(defaultTile(8, 8, WINOGRAD_F4_MAX_CIN)).toBe(4);
    expect(defaultTile(8, 8, WINOGRAD_F4_MAX_CIN + 1)).toBe(2);
    expect(defaultTile(3, 8, 64)).toBe(2);
    const x = Tensor.from(d, xh, xs), w = Tensor.from(d, wh, [cout, xs[1]!, 3, 3]);
    const y = winogradConv2d(x, w, null, [1, 1], 4);
    expectGoldenClose(await y.read(), ref.y, "y");
    for (const t of [x, w, y]) t.dispose();
  });

  it("refuses what it does not cover", () => {
    const d = dev();
    const x = Tensor.zeros(d, [1, 2, 5, 5]);
    expect(() => winogradConv2d(x, Tensor.zeros(d, [3, 2, 5, 5]), null, [1, 1])).toThrow(PulmoError);
    expect(() => winogradConv2d(x, Tensor.zeros(d, [3, 2, 3, 3]), null, [2, 1])).toThrow(PulmoError);
    expect(() => winogradConv2d(x, Tensor.zeros(d, [3, 4, 3, 3]), null, [1, 1])).toThrow(PulmoError);
    expect(() => winogradConv2d(Tensor.zeros(d, [1, 2, 1, 4]), Tensor.zeros(d, [3, 2, 3, 3]), null, [0, 0])).toThrow(PulmoError);
  });

  it("winogradEligible: the geometry it supports, channels where it pays", () => {
    const d = dev();
    const c = 128;
    expect(c * c).toBeGreaterThanOrEqual(WINOGRAD_MIN_CHANNEL_PRODUCT);
    const x = Tensor.zeros(d, [1, c, 8, 8]);
    const w = Tensor.zeros(d, [c, c, 3, 3]);
    expect(winogradEligible(x, w, { padding: 1 })).toBe(true);
    expect(winogradEligible(x, w, { padding: [0, 1], stride: [1, 1], dilation: 1, groups: 1 })).toBe(true);
    expect(winogradEligible(x, w, { padding: 2 })).toBe(false);
    expect(winogradEligible(x, w, { padding: 1, stride: 2 })).toBe(false);
    expect(winogradEligible(x, w, { padding: 1, dilation: [1, 2] })).toBe(false);
    expect(winogradEligible(x, Tensor.zeros(d, [c, c / 2, 3, 3]), { padding: 1, groups: 2 })).toBe(false);
    expect(winogradEligible(x, Tensor.zeros(d, [c, c, 5, 5]), { padding: 1 })).toBe(false);
    // channel counts: 64 → 256 (the product) pays, 64 → 64 and 32 → 1024 do not
    const m = WINOGRAD_MIN_CHANNELS;
    expect(winogradEligible(Tensor.zeros(d, [1, m, 8, 8]), Tensor.zeros(d, [WINOGRAD_MIN_CHANNEL_PRODUCT / m, m, 3, 3]), { padding: 1 })).toBe(true);
    expect(winogradEligible(Tensor.zeros(d, [1, m, 8, 8]), Tensor.zeros(d, [m, m, 3, 3]), { padding: 1 })).toBe(false);
    expect(winogradEligible(Tensor.zeros(d, [1, m / 2, 8, 8]), Tensor.zeros(d, [1024, m / 2, 3, 3]), { padding: 1 })).toBe(false);
    expect(winogradEligible(Tensor.zeros(d, [1, c, 1, 1]), w, {})).toBe(false);
  });
});

describe("conv2d golden cases through winogradConv2d (where eligible)", () => {
  const dev = useDevice();
  const geometryOk = (a: Record<string, any>, wShape: number[]) => {
    const ones = (v: any) => v === undefined || (Array.isArray(v) ? v.every((e: number) => e === 1) : v === 1);
    const pad = a.padding === undefined ? [0, 0] : Array.isArray(a.padding) ? a.padding : [a.padding, a.padding];
    return ones(a.stride) && ones(a.dilation) && (a.groups ?? 1) === 1 && wShape[2] === 3 && wShape[3] === 3 && pad.every((p: number) => p <= 1);
  };
  const cases = goldenCases().filter((c) => c.op === "conv2d" && geometryOk(c.attrs, c.file.tensors.get("weight")!.shape));
  it("has eligible conv2d golden cases", () => expect(cases.length).toBeGreaterThan(0));
  for (const [tile, back] of TILES) {
    ADAPTERS[`winograd_conv2d_${tile}_${back}`] = ({ inputs, attrs }) => {
      const p = attrs.padding === undefined ? [0, 0] : Array.isArray(attrs.padding) ? attrs.padding : [attrs.padding, attrs.padding];
      return { y: winogradConv2d(inputs.x!, inputs.weight!, inputs.bias ?? null, [p[0], p[1]], tile, back) };
    };
    for (const c of cases)
      it(`${c.name} F(${tile}×${tile},3×3), backward F(${back}×${back}) (forward + backward)`, async () => {
        const r = await runCase(dev(), { ...c, op: `winograd_conv2d_${tile}_${back}` });
        expect(r.detail).toBe("");
        expect(r.pass).toBe(true);
      });
  }
});

describe("conv2d routes eligible layers to the Winograd path", () => {
  const dev = useDevice();
  it("a 128→128 3×3 padding-1 conv2d runs winograd2d and matches the float64 reference, forward and backward", async () => {
    const d = dev();
    const xs = [1, 128, 5, 6], cout = 128;
    const xh = uniform(prod(xs), 31), wh = uniform(cout * 128 * 9, 32, -0.1, 0.1), bh = uniform(cout, 33), dyh = uniform(cout * 5 * 6, 34);
    const ref = reference(xh, xs, wh, cout, bh, [1, 1], dyh);
    const x = Tensor.from(d, xh, xs), w = Tensor.from(d, wh, [cout, 128, 3, 3]), b = Tensor.from(d, bh, [cout]);
    for (const t of [x, w, b]) t.requiresGrad = true;
    expect(winogradEligible(x, w, { padding: 1 })).toBe(true);
    const y = conv2d(x, w, b, { padding: 1 });
    backward([y], [Tensor.from(d, dyh, ref.yShape)]);
    expect(d.pipelines.kernels).toContain("conv/winograd2d");
    expectGoldenClose(await y.read(), ref.y, "y");
    expectGoldenClose(await x.grad!.read(), ref.gx, "grad_x");
    expectGoldenClose(await w.grad!.read(), ref.gw, "grad_weight");
    expectGoldenClose(await b.grad!.read(), ref.gb, "grad_bias");
    // stride 2 is not eligible: the direct kernels
    expect(winogradEligible(x, w, { padding: 1, stride: 2 })).toBe(false);
  });
});

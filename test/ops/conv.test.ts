import { describe, expect, it } from "vitest";
import { goldenSuite, useDevice, expectGoldenClose } from "../helpers.ts";
import { uniform } from "../random.ts";
import {
  Tensor,
  backward,
  conv2d,
  conv3d,
  convTranspose2d,
  convTranspose3d,
  tidy,
  PulmoError,
  type ConvTransposeOptions,
  type Device,
} from "../../src/node.ts";

describe("conv golden cases", () => goldenSuite(["conv3d", "conv2d", "conv_transpose3d", "conv_transpose2d"]));

const prod = (v: number[]) => v.reduce((a, b) => a * b, 1);
const to3 = (v: number[], fill: number) => (v.length === 2 ? [fill, ...v] : v);
const opt = (v: number | number[] | undefined, nd: number, def: number) =>
  v === undefined ? Array(nd).fill(def) : typeof v === "number" ? Array(nd).fill(v) : v;

interface RefResult {
  y: number[];
  yShape: number[];
  gx: number[];
  gw: number[];
  gb: number[];
}

/** float64 reference of conv / conv-transpose (any rank-2/3 spatial), written as the scatter
 * form of the definition: y, then grads of sum(y * dy) by accumulating every (output, tap) pair.
 * Independent of the engine's gather formulation. `dySeed` picks the upstream gradient. */
function reference(
  transposed: boolean,
  x: number[],
  xShape: number[],
  w: number[],
  wShape: number[],
  b: number[] | null,
  o: ConvTransposeOptions,
  dySeed: number,
): RefResult & { dy: number[] } {
  const nd = xShape.length - 2;
  const [N, Cin] = xShape as [number, number];
  const groups = o.groups ?? 1;
  const s = to3(opt(o.stride, nd, 1), 1), p = to3(opt(o.padding, nd, 0), 0), d = to3(opt(o.dilation, nd, 1), 1);
  const op = to3(opt(o.outputPadding, nd, 0), 0);
  const ins = to3(xShape.slice(2), 1), k = to3(wShape.slice(2), 1);
  const Cout = transposed ? wShape[1]! * groups : wShape[0]!;
  const outs = ins.map((i, a) =>
    transposed ? (i - 1) * s[a]! - 2 * p[a]! + d[a]! * (k[a]! - 1) + op[a]! + 1 : Math.floor((i + 2 * p[a]! - d[a]! * (k[a]! - 1) - 1) / s[a]!) + 1,
  );
  const cinG = Cin / groups, coutG = Cout / groups;
  const yShape = [N, Cout, ...(nd === 2 ? outs.slice(1) : outs)];
  const ysz = prod(yShape);
  const y = new Array<number>(ysz).fill(0);
  const dy = uniform(ysz, dySeed);
  const gx = new Array<number>(x.length).fill(0), gw = new Array<number>(w.length).fill(0), gb = new Array<number>(Cout).fill(0);
  const [ID, IH, IW] = ins as [number, number, number];
  const [OD, OH, OW] = outs as [number, number, number];
  const [KD, KH, KW] = k as [number, number, number];
  // "small" = positions of the non-transposed side's output (conv: y, transposed: x)
  const [SD, SH, SW] = transposed ? [ID, IH, IW] : [OD, OH, OW];
  const [BD, BH, BW] = transposed ? [OD, OH, OW] : [ID, IH, IW];
  for (let n = 0; n < N; n++)
    for (let g = 0; g < groups; g++)
      for (let ci = 0; ci < cinG; ci++)
        for (let co = 0; co < coutG; co++)
          for (let sd = 0; sd < SD; sd++)
            for (let sh = 0; sh < SH; sh++)
              for (let sw = 0; sw < SW; sw++)
                for (let kd = 0; kd < KD; kd++)
                  for (let kh = 0; kh < KH; kh++)
                    for (let kw = 0; kw < KW; kw++) {
                      const bd = sd * s[0]! - p[0]! + kd * d[0]!, bh = sh * s[1]! - p[1]! + kh * d[1]!, bw = sw * s[2]! - p[2]! + kw * d[2]!;
                      if (bd < 0 || bd >= BD || bh < 0 || bh >= BH || bw < 0 || bw >= BW) continue;
                      const kk = (kd * KH + kh) * KW + kw;
                      const icg = g * cinG + ci, ocg = g * coutG + co;
                      const [xp, yp] = transposed
                        ? [(sd * IH + sh) * IW + sw, (bd * OH + bh) * OW + bw]
                        : [(bd * IH + bh) * IW + bw, (sd * OH + sh) * OW + sw];
                      const xi = (n * Cin + icg) * ID * IH * IW + xp;
                      const yi = (n * Cout + ocg) * OD * OH * OW + yp;
                      const wi = transposed ? (icg * coutG + co) * KD * KH * KW + kk : (ocg * cinG + ci) * KD * KH * KW + kk;
                      y[yi]! += x[xi]! * w[wi]!;
                      gx[xi]! += dy[yi]! * w[wi]!;
                      gw[wi]! += dy[yi]! * x[xi]!;
                    }
  for (let n = 0; n < N; n++)
    for (let c = 0; c < Cout; c++)
      for (let q = 0; q < OD * OH * OW; q++) {
        const yi = (n * Cout + c) * OD * OH * OW + q;
        if (b) y[yi]! += b[c]!;
        gb[c]! += dy[yi]!;
      }
  return { y, yShape, gx, gw, gb, dy };
}


type ConvFn = (x: Tensor, w: Tensor, b?: Tensor | null, o?: ConvTransposeOptions) => Tensor;
interface Spec {
  name: string;
  fn: ConvFn;
  transposed: boolean;
  x: number[];
  w: number[];
  bias: boolean;
  opts: ConvTransposeOptions;
}

async function checkAgainstReference(dev: Device, c: Spec, seed: number): Promise<void> {
  const xh = uniform(prod(c.x), seed), wh = uniform(prod(c.w), seed + 1);
  const cout = c.transposed ? c.w[1]! * (c.opts.groups ?? 1) : c.w[0]!;
  const bh = c.bias ? uniform(cout, seed + 2) : null;
  const ref = reference(c.transposed, xh, c.x, wh, c.w, bh, c.opts, seed + 3);
  const x = Tensor.from(dev, xh, c.x), w = Tensor.from(dev, wh, c.w);
  const b = bh ? Tensor.from(dev, bh, [cout]) : null;
  for (const t of [x, w, b]) if (t) t.requiresGrad = true;
  const y = c.fn(x, w, b, c.opts);
  expect(y.shape).toEqual(ref.yShape);
  const seedT = Tensor.from(dev, ref.dy, ref.yShape);
  backward([y], [seedT]);
  expectGoldenClose(await y.read(), ref.y, `${c.name} y`);
  expectGoldenClose(await x.grad!.read(), ref.gx, `${c.name} grad_x`);
  expectGoldenClose(await w.grad!.read(), ref.gw, `${c.name} grad_weight`);
  if (b) expectGoldenClose(await b.grad!.read(), ref.gb, `${c.name} grad_bias`);
  for (const t of [x, w, b, y, seedT, x.grad, w.grad, b?.grad]) t?.dispose();
}

const SPECS: Spec[] = [
  {
    name: "conv3d groups=2, per-dim stride/padding/dilation, 2x3x1 kernel, 3 channels per group",
    fn: conv3d,
    transposed: false,
    x: [2, 4, 5, 6, 4],
    w: [6, 2, 2, 3, 1],
    bias: true,
    opts: { stride: [1, 2, 1], padding: [0, 1, 2], dilation: [2, 1, 1], groups: 2 },
  },
  {
    name: "conv2d depthwise (groups=3, multiplier 2), stride 2, dilation 2, no bias",
    fn: conv2d,
    transposed: false,
    x: [1, 3, 9, 7],
    w: [6, 1, 3, 3],
    bias: false,
    opts: { stride: 2, padding: 1, dilation: 2, groups: 3 },
  },
  {
    name: "conv2d with a large reduction (chunked weight and bias gradients)",
    fn: conv2d,
    transposed: false,
    x: [2, 2, 40, 36],
    w: [5, 2, 3, 3],
    bias: true,
    opts: { padding: 1 },
  },
  {
    name: "conv_transpose3d groups=2, per-dim stride/padding/output_padding/dilation",
    fn: convTranspose3d,
    transposed: true,
    x: [2, 4, 3, 3, 2],
    w: [4, 3, 3, 2, 2],
    bias: true,
    opts: { stride: [2, 1, 3], padding: [1, 0, 1], outputPadding: [1, 0, 2], dilation: [1, 2, 1], groups: 2 },
  },
  {
    name: "conv_transpose2d with dilation > stride and output_padding >= stride",
    fn: convTranspose2d,
    transposed: true,
    x: [1, 3, 4, 5],
    w: [3, 5, 2, 3],
    bias: true,
    opts: { stride: 1, dilation: 3, outputPadding: 2, padding: [1, 0] },
  },
  {
    name: "conv_transpose2d stride 3 with padding and dilation 2 (gcd stepping)",
    fn: convTranspose2d,
    transposed: true,
    x: [2, 2, 3, 4],
    w: [2, 2, 4, 3],
    bias: false,
    opts: { stride: [3, 2], dilation: [2, 2], padding: [2, 1], outputPadding: [1, 1] },
  },
  {
    // grad x runs on conv_transposed with 4 outputs of one W phase per invocation (W stride 3,
    // dilation 2: kstep 3, first taps left of the volume); grad w with 4 columns per invocation
    name: "conv2d groups=2, W stride 3 and dilation 2, wide rows (W-phase blocking of grad x)",
    fn: conv2d,
    transposed: false,
    x: [1, 4, 5, 23],
    w: [6, 2, 2, 4],
    bias: true,
    opts: { stride: [1, 3], padding: [1, 3], dilation: [1, 2], groups: 2 },
  },
  {
    name: "conv_transpose3d W stride 3, dilation 2, output_padding, wide rows (W-phase blocking)",
    fn: convTranspose3d,
    transposed: true,
    x: [1, 2, 2, 3, 9],
    w: [2, 3, 1, 2, 3],
    bias: true,
    opts: { stride: [1, 2, 3], padding: [0, 1, 2], dilation: [1, 1, 2], outputPadding: [0, 1, 1] },
  },
  {
    // grad x: 4 W taps of a phase share one input window (TPG = 4), 4 outputs per invocation
    name: "conv3d stride (1,2,2), 1x3x7 kernel, wide rows (grad x input windows over W taps)",
    fn: conv3d,
    transposed: false,
    x: [1, 2, 3, 4, 30],
    w: [3, 2, 1, 3, 7],
    bias: true,
    opts: { stride: [1, 2, 2], padding: [0, 1, 3] },
  },
  {
    // stride 1, 9 W taps: two windows of TPG = 8 taps, the second one partial
    name: "conv_transpose2d stride 1, 2x9 kernel (input windows of 8 W taps)",
    fn: convTranspose2d,
    transposed: true,
    x: [1, 2, 3, 12],
    w: [2, 3, 2, 9],
    bias: false,
    opts: { padding: [0, 2] },
  },
  // conv_direct tiles (forward; also grad x of the stride-1 convs): 8 consecutive W outputs per
  // invocation with up to 16 channels, W window loop (override KW) or the general tap loop
  {
    name: "conv3d stride 1, 3x3 taps, W 19 and 20 channels (8-output tiles, partial tile and channel block, W window)",
    fn: conv3d,
    transposed: false,
    x: [1, 3, 3, 4, 19],
    w: [20, 3, 2, 3, 3],
    bias: true,
    opts: { padding: 1 },
  },
  {
    name: "conv2d W stride 2, kernel width 3 (8-output tiles, strided W window)",
    fn: conv2d,
    transposed: false,
    x: [1, 3, 5, 21],
    w: [18, 3, 3, 3],
    bias: true,
    opts: { stride: 2, padding: 1 },
  },
  {
    name: "conv2d groups=2, W dilation 2 (8-output tiles, 5 channels per group, dilated W window)",
    fn: conv2d,
    transposed: false,
    x: [1, 6, 4, 20],
    w: [10, 3, 2, 3],
    bias: false,
    opts: { dilation: [1, 2], padding: [0, 2], groups: 2 },
  },
  {
    name: "conv3d W stride 3, kernel width 7 (8-output tiles, window too wide: general tap loop)",
    fn: conv3d,
    transposed: false,
    x: [1, 2, 2, 3, 40],
    w: [9, 2, 1, 2, 7],
    bias: true,
    opts: { stride: [1, 1, 3], padding: [0, 1, 3] },
  },
  {
    name: "conv3d 1x1x1 kernel, 17 channels (8-output tiles, one W tap)",
    fn: conv3d,
    transposed: false,
    x: [1, 5, 2, 2, 9],
    w: [17, 5, 1, 1, 1],
    bias: true,
    opts: {},
  },
  // weight gradient (conv_grad_weight, and conv_grad_weight_sg on devices with subgroups: up to
  // 16 A channels × 8 columns per invocation, A reads spread over the subgroup; main_win: rows of
  // KW taps sharing a sliding B window where there are >= 512 columns)
  {
    name: "conv3d 20→20 3x3x3 (weight gradient: 180 rows of 3 W taps, W-tap window, partial tile and channel block)",
    fn: conv3d,
    transposed: false,
    x: [1, 20, 3, 4, 6],
    w: [20, 20, 3, 3, 3],
    bias: true,
    opts: { padding: 1 },
  },
  {
    name: "conv2d groups=2, 60 channels per group, dilation (2,1) (weight gradient: 10 channels per group, W-tap window)",
    fn: conv2d,
    transposed: false,
    x: [2, 120, 4, 7],
    w: [20, 60, 3, 3],
    bias: false,
    opts: { padding: [2, 1], dilation: [2, 1], groups: 2 },
  },
  {
    name: "conv2d W stride 2, W dilation 2, 60 channels (weight gradient: W-tap window sliding by 2)",
    fn: conv2d,
    transposed: false,
    x: [1, 60, 5, 17],
    w: [8, 60, 3, 3],
    bias: true,
    opts: { stride: [1, 2], dilation: [1, 2], padding: [1, 2] },
  },
  {
    name: "conv3d 2x2x2 stride 2, 64 channels (weight gradient: stride >= window, 12 of 16 channels × 8 columns)",
    fn: conv3d,
    transposed: false,
    x: [1, 64, 4, 4, 6],
    w: [12, 64, 2, 2, 2],
    bias: false,
    opts: { stride: 2 },
  },
  {
    name: "conv_transpose3d groups=2, 18 input channels per group, stride 2 (weight gradient A = x: 16 + 2 channels)",
    fn: convTranspose3d,
    transposed: true,
    x: [1, 36, 2, 3, 5],
    w: [36, 3, 2, 2, 3],
    bias: true,
    opts: { stride: [2, 2, 1], padding: [0, 0, 1], groups: 2 },
  },
];

describe("conv against a float64 reference (shapes outside the golden set)", () => {
  const dev = useDevice();
  SPECS.forEach((c, i) => it(c.name, () => checkAgainstReference(dev(), c, 100 + 10 * i)));

  it("a 2D conv equals the 3D conv with D = 1", async () => {
    const d = dev();
    const xh = uniform(2 * 3 * 6 * 5, 7), wh = uniform(4 * 3 * 3 * 2, 8);
    const y2 = conv2d(Tensor.from(d, xh, [2, 3, 6, 5]), Tensor.from(d, wh, [4, 3, 3, 2]), null, { stride: 2, padding: 1 });
    const y3 = conv3d(Tensor.from(d, xh, [2, 3, 1, 6, 5]), Tensor.from(d, wh, [4, 3, 1, 3, 2]), null, { stride: [1, 2, 2], padding: [0, 1, 1] });
    expect(y3.shape).toEqual([2, 4, 1, 3, 3]);
    expect([...(await y2.read())]).toEqual([...(await y3.read())]);
  });

  it("gives the input gradient alone when weight and bias are frozen", async () => {
    const d = dev();
    for (const c of [SPECS[0]!, SPECS[3]!]) {
      const xh = uniform(prod(c.x), 31), wh = uniform(prod(c.w), 32);
      const ref = reference(c.transposed, xh, c.x, wh, c.w, null, c.opts, 33);
      const x = Tensor.from(d, xh, c.x), w = Tensor.from(d, wh, c.w);
      x.requiresGrad = true;
      const y = c.fn(x, w, null, c.opts);
      backward([y], [Tensor.from(d, ref.dy, ref.yShape)]);
      expectGoldenClose(await x.grad!.read(), ref.gx, `${c.name} grad_x only`);
      expect(w.grad).toBeNull();
    }
  });

  it("only computes the gradients that are needed and does not grow the pool", async () => {
    const d = dev();
    const x = Tensor.from(d, uniform(2 * 3 * 4 * 4 * 4, 1), [2, 3, 4, 4, 4]);
    const w = Tensor.from(d, uniform(5 * 3 * 27, 2), [5, 3, 3, 3, 3]);
    const b = Tensor.from(d, uniform(5, 3), [5]);
    w.requiresGrad = true;
    const step = () => {
      tidy(d, () => {
        const y = conv3d(x, w, b, { padding: 1 });
        const t = convTranspose3d(y, w, null, { padding: 1 });
        backward([t], [Tensor.from(d, uniform(t.size, 4), t.shape)]);
      });
      w.grad?.dispose();
      w.grad = null;
    };
    step();
    await d.flush();
    const inUse = d.pool.inUseBytes;
    step();
    await d.flush();
    expect(d.pool.inUseBytes).toBe(inUse);
    expect(x.grad).toBeNull();
    expect(b.grad).toBeNull();
  });
});

describe("conv without subgroups (portable kernels)", () => {
  // the default test device has subgroups where the adapter does (conv_direct_sg then takes
  // the window loop, conv_grad_weight_sg the weight gradient); this one runs the same cases on
  // conv_direct's own window loop and conv_grad_weight
  const dev = useDevice({ subgroups: false });
  SPECS.forEach((c, i) => it(c.name, () => checkAgainstReference(dev(), c, 100 + 10 * i)));
});

describe.each([{ subgroups: true }, { subgroups: false }])("pointwise (1×1×1) conv as a GEMM (subgroups: $subgroups)", ({ subgroups }) => {
  // k = 1, stride 1, no padding and a volume that is a multiple of 4: the weight gradient takes
  // conv_grad_weight_k1 (8 × 16 dw tile per lane, partial rows folded by sum_chunks) on every
  // device; the forward and input gradient take conv_k1_sg where subgroups exist and the input
  // channels per group are a multiple of 4 (16 output channels per lane), else conv_direct(_sg).
  // Channel counts that are not multiples of the tiles re-read a valid channel, store the valid ones.
  const dev = useDevice({ subgroups });
  const k1 = (name: string, x: number[], w: number[], opts: ConvTransposeOptions = {}, fn: ConvFn = conv3d, transposed = false): Spec => ({
    name,
    fn,
    transposed,
    x,
    w,
    bias: true,
    opts,
  });
  it("batch 2, groups 2, channels not multiples of 4, more than one tile, conv2d and conv_transpose3d", async () => {
    const d = dev();
    const cases = [
      k1("conv3d k1 batch 2 groups 2, 5→7 per group", [2, 10, 3, 4, 5], [14, 5, 1, 1, 1], { groups: 2 }),
      k1("conv3d k1 batch 2 groups 2, 4→5 per group", [2, 8, 2, 3, 4], [10, 4, 1, 1, 1], { groups: 2 }),
      k1("conv3d k1 20→36 (tiles with tails)", [1, 20, 2, 4, 6], [36, 20, 1, 1, 1]),
      k1("conv3d k1 3→1, long volume (several chunks)", [1, 3, 16, 16, 20], [1, 3, 1, 1, 1]),
      k1("conv3d k1 8→4, long volume (several forward chunks)", [1, 8, 16, 16, 20], [4, 8, 1, 1, 1]),
      k1("conv3d k1 4→4, 33×63×64 (3 forward steps per lane, short last chunk)", [1, 4, 33, 63, 64], [4, 4, 1, 1, 1]),
      k1("conv2d k1 batch 3, 8→5", [3, 8, 5, 8], [5, 8, 1, 1], {}, conv2d),
      k1("conv_transpose3d k1 4→6 groups 2", [2, 4, 2, 3, 2], [4, 3, 1, 1, 1], { groups: 2 }, convTranspose3d, true),
    ];
    for (const [i, c] of cases.entries()) await checkAgainstReference(d, c, 700 + 10 * i);
    expect(d.pipelines.entries).toContain("conv/conv_grad_weight_k1:main");
    if (subgroups && d.subgroupSize !== null) expect(d.pipelines.entries).toContain("conv/conv_k1_sg:main");
    if (!subgroups) expect(d.pipelines.kernels).not.toContain("conv/conv_k1_sg");
  });
});

describe("pointwise (1×1×1) conv outside the GEMM path (odd volume, stride, padding)", () => {
  const dev = useDevice();
  it("keeps the chunked conv_grad_weight and conv_direct kernels", async () => {
    const d = dev();
    const cases: Spec[] = [
      { name: "conv3d k1 odd volume 3×5×7", fn: conv3d, transposed: false, x: [2, 6, 3, 5, 7], w: [4, 6, 1, 1, 1], bias: true, opts: {} },
      { name: "conv3d k1 stride 2", fn: conv3d, transposed: false, x: [1, 4, 4, 6, 8], w: [5, 4, 1, 1, 1], bias: false, opts: { stride: 2 } },
      { name: "conv3d k1 padding 1", fn: conv3d, transposed: false, x: [1, 4, 2, 4, 4], w: [3, 4, 1, 1, 1], bias: true, opts: { padding: 1 } },
    ];
    for (const [i, c] of cases.entries()) await checkAgainstReference(d, c, 800 + 10 * i);
    expect(d.pipelines.kernels).not.toContain("conv/conv_grad_weight_k1");
    expect(d.pipelines.kernels).not.toContain("conv/conv_k1_sg");
  });
});

describe("conv with workgroups split over x and y", () => {
  // At most 3 workgroups per dim: these shapes launch more than 3 workgroups in the forward
  // gather (conv_direct: 5 tiles of 64 eight-wide W runs; conv_transposed: 8 tiles of 64
  // positions) and in the weight gradient (8 chunks of rows), so each is split over y.
  const dev = useDevice({ limits: { maxWorkgroupsPerDim: 3 } });
  const base = { bias: true, opts: { padding: 1 } };
  it("conv3d (forward gather split)", () =>
    checkAgainstReference(dev(), { ...base, name: "split conv3d", fn: conv3d, transposed: false, x: [1, 2, 5, 11, 33], w: [5, 2, 2, 3, 3] }, 500));
  it("conv3d (weight gradient split)", () =>
    checkAgainstReference(dev(), { ...base, name: "split conv3d dw", fn: conv3d, transposed: false, x: [1, 2, 3, 4, 5], w: [11, 2, 2, 3, 3] }, 550));
  it("conv3d k1 (conv_k1_sg and conv_grad_weight_k1 split)", () =>
    checkAgainstReference(dev(), { name: "split conv3d k1", fn: conv3d, transposed: false, x: [2, 8, 4, 8, 16], w: [20, 8, 1, 1, 1], bias: true, opts: {} }, 580));
  it("conv_transpose3d (forward gather split)", () =>
    checkAgainstReference(
      dev(),
      {
        name: "split conv_transpose3d",
        fn: convTranspose3d,
        transposed: true,
        x: [1, 2, 2, 6, 15],
        w: [2, 5, 2, 2, 3],
        bias: true,
        opts: { stride: [1, 2, 1], padding: [0, 1, 1], outputPadding: [0, 1, 0] },
      },
      600,
    ));
});

describe("conv bad inputs", () => {
  const dev = useDevice();
  const t = (shape: number[], dtype: "f32" | "i32" = "f32") => Tensor.zeros(dev(), shape, dtype);
  const throws = (f: () => unknown, msg: RegExp) => {
    expect(f).toThrow(PulmoError);
    expect(f).toThrow(msg);
  };

  it("rejects the wrong rank", () => {
    throws(() => conv3d(t([1, 2, 4, 4]), t([3, 2, 3, 3, 3])), /conv3d: 'x' must have rank 5, got \[1, 2, 4, 4\]/);
    throws(() => conv2d(t([1, 2, 4, 4]), t([3, 2, 3, 3, 3])), /conv2d: 'weight' must have rank 4/);
    throws(() => convTranspose2d(t([1, 2, 4, 4]), t([2, 3, 3, 3]), t([3, 1])), /conv_transpose2d: 'bias' must have rank 1/);
  });

  it("rejects a non-f32 dtype", () => {
    throws(() => conv2d(t([1, 2, 4, 4], "i32"), t([3, 2, 3, 3])), /conv2d: 'x' must be f32, got i32/);
    throws(() => convTranspose3d(t([1, 2, 4, 4, 4]), t([2, 3, 3, 3, 3], "i32")), /conv_transpose3d: 'weight' must be f32/);
    throws(() => conv3d(t([1, 2, 4, 4, 4]), t([3, 2, 3, 3, 3]), t([3], "i32")), /conv3d: 'bias' must be f32/);
  });

  it("rejects mismatched channels, groups and bias", () => {
    throws(() => conv2d(t([1, 2, 4, 4]), t([3, 4, 3, 3])), /conv2d: 'weight' \[3, 4, 3, 3\] expects 4 input channels.*'x' \[1, 2, 4, 4\] has 2/);
    throws(() => conv2d(t([1, 4, 4, 4]), t([3, 2, 3, 3]), null, { groups: 2 }), /conv2d: 'weight' \[3, 2, 3, 3\] has 3 output channels, not divisible by groups=2/);
    throws(() => conv2d(t([1, 3, 4, 4]), t([4, 1, 3, 3]), null, { groups: 2 }), /conv2d: 'x' \[1, 3, 4, 4\] has 3 channels, not divisible by groups=2/);
    throws(() => conv3d(t([1, 2, 4, 4, 4]), t([3, 2, 3, 3, 3]), t([4])), /conv3d: 'bias' must have shape \[3\].*got \[4\]/);
    throws(() => convTranspose2d(t([1, 2, 4, 4]), t([3, 2, 3, 3])), /conv_transpose2d: 'weight' \[3, 2, 3, 3\] expects 3 input channels.*'x' \[1, 2, 4, 4\] has 2/);
    throws(() => convTranspose2d(t([1, 2, 4, 4]), t([2, 2, 3, 3]), t([2]), { groups: 2 }), /conv_transpose2d: 'bias' must have shape \[4\]/);
  });

  it("rejects bad options and inputs smaller than the kernel", () => {
    throws(() => conv2d(t([1, 2, 4, 4]), t([3, 2, 3, 3]), null, { stride: 0 }), /conv2d: 'stride' must be an integer >= 1/);
    throws(() => conv2d(t([1, 2, 4, 4]), t([3, 2, 3, 3]), null, { padding: [1, 1, 1] }), /conv2d: 'padding' must be an integer >= 0 or 2 of them/);
    throws(() => conv3d(t([1, 2, 4, 4, 4]), t([3, 2, 3, 3, 3]), null, { groups: 1.5 }), /conv3d: 'groups' must be a positive integer/);
    throws(() => conv3d(t([1, 2, 2, 4, 4]), t([3, 2, 3, 3, 3])), /conv3d: 'x' \[1, 2, 2, 4, 4\] padded by \[0, 0, 0\] is smaller than the dilated kernel/);
    throws(
      () => convTranspose2d(t([1, 2, 4, 4]), t([2, 3, 3, 3]), null, { stride: 2, outputPadding: 2 }),
      /conv_transpose2d: 'outputPadding' \[2, 2\] must be smaller than stride \[2, 2\] or dilation \[1, 1\]/,
    );
    throws(() => convTranspose2d(t([1, 2, 1, 1]), t([2, 3, 1, 1]), null, { padding: 1 }), /conv_transpose2d: output size \[-1, -1\] is not positive/);
  });
});

import { describe, expect, it } from "vitest";
import { goldenSuite, useDevice } from "../helpers.ts";
import { uniform } from "../random.ts";
import { Tensor, backward, convLstm2d, lstmCell, tidy, PulmoError } from "../../src/node.ts";

describe("convlstm golden cases", () => goldenSuite(["convlstm2d"]));

type Act = "sigmoid" | "hard_sigmoid";

/** float64 reference of the fused cell: packed [N, 2, chw] (h then c). */
function cellRef(z: number[], c: number[], n: number, chw: number, act: Act): number[] {
  const a = act === "sigmoid" ? (v: number) => 1 / (1 + Math.exp(-v)) : (v: number) => Math.min(1, Math.max(0, 0.2 * v + 0.5));
  const out = new Array<number>(n * 2 * chw);
  for (let b = 0; b < n; b++)
    for (let r = 0; r < chw; r++) {
      const zb = b * 4 * chw + r;
      const i = a(z[zb]!), f = a(z[zb + chw]!), g = Math.tanh(z[zb + 2 * chw]!), o = a(z[zb + 3 * chw]!);
      const ct = f * c[b * chw + r]! + i * g;
      out[b * 2 * chw + r] = o * Math.tanh(ct);
      out[b * 2 * chw + chw + r] = ct;
    }
  return out;
}

const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);

/** Central finite differences of sum(cellRef * d) in float64. Valid away from hard_sigmoid's kinks. */
function cellGradRef(z: number[], c: number[], d: number[], n: number, chw: number, act: Act): [number[], number[]] {
  const eps = 1e-6;
  const fd = (v: number[], f: (w: number[]) => number) =>
    v.map((x, k) => {
      const p = [...v], m = [...v];
      p[k] = x + eps;
      m[k] = x - eps;
      return (f(p) - f(m)) / (2 * eps);
    });
  return [fd(z, (w) => dot(cellRef(w, c, n, chw, act), d)), fd(c, (w) => dot(cellRef(z, w, n, chw, act), d))];
}

function expectClose(actual: ArrayLike<number>, ref: number[], tol: number): void {
  expect(actual.length).toBe(ref.length);
  let worst = 0;
  for (let k = 0; k < ref.length; k++) worst = Math.max(worst, Math.abs(actual[k]! - ref[k]!));
  expect(worst).toBeLessThan(tol);
}

describe("fused lstm cell against a float64 reference", () => {
  const dev = useDevice();
  for (const act of ["sigmoid", "hard_sigmoid"] as const)
    it(`${act}: forward and backward for z and c_prev`, async () => {
      const [n, hidden, h, w] = [2, 3, 2, 5];
      const chw = hidden * h * w;
      // pre-activations past ±2.5 exercise hard_sigmoid's saturated (zero-gradient) range;
      // values within 1e-4 of the kinks are nudged off them so finite differences stay valid
      const z = uniform(n * 4 * chw, 7, -4, 4).map((v) => (Math.abs(Math.abs(v) - 2.5) < 1e-4 ? v + 1e-3 : v));
      const c = uniform(n * chw, 11, -2, 2);
      const d = uniform(n * 2 * chw, 13);
      const zt = Tensor.from(dev(), z, [n, 4 * hidden, h, w]);
      const ct = Tensor.from(dev(), c, [n, hidden, h, w]);
      zt.requiresGrad = true;
      ct.requiresGrad = true;
      const y = lstmCell(zt, ct, act);
      expect(y.shape).toEqual([n, 2, hidden, h, w]);
      expectClose(await y.read(), cellRef(z, c, n, chw, act), 1e-5);
      backward([y], [Tensor.from(dev(), d, y.shape)]);
      const [gz, gc] = cellGradRef(z, c, d, n, chw, act);
      expect(zt.grad!.shape).toEqual(zt.shape);
      expectClose(await zt.grad!.read(), gz, 1e-5);
      expectClose(await ct.grad!.read(), gc, 1e-5);
      if (act === "hard_sigmoid") expect(gz.some((v) => v === 0)).toBe(true);
    });

  it("works on a 3D spatial block and a 1-element batch", async () => {
    const [hidden, d0, d1, d2] = [2, 2, 3, 2];
    const chw = hidden * d0 * d1 * d2;
    const z = uniform(4 * chw, 3, -3, 3), c = uniform(chw, 5);
    const y = lstmCell(Tensor.from(dev(), z, [1, 4 * hidden, d0, d1, d2]), Tensor.from(dev(), c, [1, hidden, d0, d1, d2]), "sigmoid");
    expectClose(await y.read(), cellRef(z, c, 1, chw, "sigmoid"), 1e-5);
  });

  it("saturates without NaN at large pre-activations", async () => {
    const z = [100, -100, 100, 100, -100, 100, -100, -100];
    const y = await lstmCell(Tensor.from(dev(), z, [1, 8]), Tensor.from(dev(), [50, -50], [1, 2]), "sigmoid").read();
    expect([...y].every(Number.isFinite)).toBe(true);
    expectClose(y, cellRef(z, [50, -50], 1, 2, "sigmoid"), 1e-6);
  });

  it("frees its temporaries", async () => {
    const d = dev();
    const run = async () => {
      const z = Tensor.from(d, uniform(48, 1), [1, 8, 2, 3]);
      const c = Tensor.from(d, uniform(12, 2), [1, 2, 2, 3]);
      z.requiresGrad = true;
      const y = lstmCell(z, c, "hard_sigmoid");
      const seed = Tensor.from(d, uniform(24, 3), y.shape);
      backward([y], [seed]);
      await z.grad!.read();
      for (const t of [z, c, y, seed, z.grad!]) t.dispose();
    };
    await run();
    const inUse = d.pool.inUseBytes;
    await run();
    expect(d.pool.inUseBytes).toBe(inUse);
  });
});

describe("lstm cell bad input", () => {
  const dev = useDevice();
  it("rejects a gate tensor whose channels are not 4*hidden", () => {
    const z = Tensor.zeros(dev(), [1, 6, 2, 2]);
    const c = Tensor.zeros(dev(), [1, 2, 2, 2]);
    expect(() => lstmCell(z, c)).toThrow(PulmoError);
    expect(() => lstmCell(z, c)).toThrow(/lstm_cell: 'z' must have 4\*hidden channels.*\[1, 6, 2, 2\]/);
  });
  it("rejects a c_prev that does not match z", () => {
    const z = Tensor.zeros(dev(), [1, 8, 2, 2]);
    expect(() => lstmCell(z, Tensor.zeros(dev(), [1, 2, 2, 3]))).toThrow(/lstm_cell: 'cPrev' must have shape \[1, 2, 2, 2\].*got \[1, 2, 2, 3\]/);
    expect(() => lstmCell(z, Tensor.zeros(dev(), [2, 2, 2, 2]))).toThrow(PulmoError);
  });
  it("rejects an int tensor and an unknown activation", () => {
    const z = Tensor.zeros(dev(), [1, 8, 2, 2], "i32");
    const c = Tensor.zeros(dev(), [1, 2, 2, 2]);
    expect(() => lstmCell(z, c)).toThrow(/lstm_cell: 'z' must be f32/);
    expect(() => lstmCell(Tensor.zeros(dev(), [1, 8, 2, 2]), c, "relu" as any)).toThrow(/recurrentActivation/);
  });
});

/** float64 ConvLSTM: x [N, T, Cin, H, W], weight [4h, Cin+h, k, k]; every h_t [N, T, h, H, W]. */
function convLstmRef(x: number[], wt: number[], bias: number[] | null, shape: number[], hidden: number, k: number, act: Act): number[] {
  const [n, steps, cin, H, W] = shape as [number, number, number, number, number];
  const ctot = cin + hidden, hw = H * W, chw = hidden * hw, pad = k >> 1;
  const y = new Array<number>(n * steps * chw).fill(0);
  for (let b = 0; b < n; b++) {
    let h = new Array<number>(chw).fill(0), c = new Array<number>(chw).fill(0);
    for (let t = 0; t < steps; t++) {
      const inp = (ch: number, yy: number, xx: number) =>
        ch < cin ? x[(((b * steps + t) * cin + ch) * H + yy) * W + xx]! : h[(ch - cin) * hw + yy * W + xx]!;
      const z = new Array<number>(4 * chw).fill(0);
      for (let o = 0; o < 4 * hidden; o++)
        for (let yy = 0; yy < H; yy++)
          for (let xx = 0; xx < W; xx++) {
            let s = bias ? bias[o]! : 0;
            for (let ch = 0; ch < ctot; ch++)
              for (let ky = 0; ky < k; ky++)
                for (let kx = 0; kx < k; kx++) {
                  const iy = yy + ky - pad, ix = xx + kx - pad;
                  if (iy >= 0 && iy < H && ix >= 0 && ix < W) s += wt[((o * ctot + ch) * k + ky) * k + kx]! * inp(ch, iy, ix);
                }
            z[o * hw + yy * W + xx] = s;
          }
      const packed = cellRef(z, c, 1, chw, act);
      h = packed.slice(0, chw);
      c = packed.slice(chw);
      for (let r = 0; r < chw; r++) y[(b * steps + t) * chw + r] = h[r]!;
    }
  }
  return y;
}

function fdGrad(v: number[], f: (w: number[]) => number, eps = 1e-6): number[] {
  return v.map((x, k) => {
    const p = [...v], m = [...v];
    p[k] = x + eps;
    m[k] = x - eps;
    return (f(p) - f(m)) / (2 * eps);
  });
}

describe("convLstm2d against a float64 reference", () => {
  const dev = useDevice();
  const cases: { name: string; shape: number[]; hidden: number; k: number; act: Act; bias: boolean }[] = [
    { name: "kernel 1, no bias, sigmoid", shape: [2, 3, 2, 3, 2], hidden: 2, k: 1, act: "sigmoid", bias: false },
    { name: "kernel 5 wider than the image, hard_sigmoid", shape: [1, 2, 1, 3, 4], hidden: 2, k: 5, act: "hard_sigmoid", bias: true },
  ];
  for (const tc of cases)
    it(`${tc.name}: forward and BPTT gradients`, async () => {
      const { shape, hidden, k, act } = tc;
      const [n, steps, cin, H, W] = shape as [number, number, number, number, number];
      const wshape = [4 * hidden, cin + hidden, k, k];
      const x = uniform(n * steps * cin * H * W, 21, -1, 1);
      const wt = uniform(wshape.reduce((a, b) => a * b), 22, -0.6, 0.6);
      const bias = tc.bias ? uniform(4 * hidden, 23, -0.5, 0.5) : null;
      const d = uniform(n * steps * hidden * H * W, 24);
      const xt = Tensor.from(dev(), x, shape), wtt = Tensor.from(dev(), wt, wshape);
      const bt = bias ? Tensor.from(dev(), bias, [4 * hidden]) : null;
      for (const t of [xt, wtt, bt]) if (t) t.requiresGrad = true;
      const y = convLstm2d(xt, wtt, bt, { hidden, kernel: k, recurrentActivation: act });
      expect(y.shape).toEqual([n, steps, hidden, H, W]);
      expectClose(await y.read(), convLstmRef(x, wt, bias, shape, hidden, k, act), 1e-5);
      backward([y], [Tensor.from(dev(), d, y.shape)]);
      const loss = (xv: number[], wv: number[], bv: number[] | null) => dot(convLstmRef(xv, wv, bv, shape, hidden, k, act), d);
      expectClose(await xt.grad!.read(), fdGrad(x, (v) => loss(v, wt, bias)), 2e-5);
      expectClose(await wtt.grad!.read(), fdGrad(wt, (v) => loss(x, v, bias)), 2e-5);
      if (bias) expectClose(await bt!.grad!.read(), fdGrad(bias, (v) => loss(x, wt, v)), 2e-5);
    });

  it("returnSequences: false gives the last h_t", async () => {
    const shape = [1, 3, 2, 2, 3];
    const x = uniform(36, 31), wt = uniform(8 * 4 * 9, 32, -0.5, 0.5), bias = uniform(8, 33);
    const all = convLstmRef(x, wt, bias, shape, 2, 3, "sigmoid");
    const y = convLstm2d(Tensor.from(dev(), x, shape), Tensor.from(dev(), wt, [8, 4, 3, 3]), Tensor.from(dev(), bias, [8]), {
      hidden: 2,
      returnSequences: false,
    });
    expect(y.shape).toEqual([1, 2, 2, 3]);
    expectClose(await y.read(), all.slice(2 * 12), 1e-5);
  });

  it("frees every temporary of forward and backward", async () => {
    const d = dev();
    const run = async () => {
      const grads = tidy(d, () => {
        const x = Tensor.from(d, uniform(2 * 2 * 1 * 9, 41), [2, 2, 1, 3, 3]);
        const w = Tensor.from(d, uniform(8 * 3 * 9, 42, -0.5, 0.5), [8, 3, 3, 3]);
        const b = Tensor.from(d, uniform(8, 43), [8]);
        for (const t of [x, w, b]) t.requiresGrad = true;
        const y = convLstm2d(x, w, b, { hidden: 2, recurrentActivation: "hard_sigmoid" });
        backward([y], [Tensor.from(d, uniform(y.size, 44), y.shape)]);
        return [x.grad!, w.grad!, b.grad!];
      });
      for (const g of grads) await g.read();
      for (const g of grads) g.dispose();
    };
    const before = d.pool.inUseBytes;
    await run();
    expect(d.pool.inUseBytes).toBe(before);
    const created = d.pool.buffersCreated;
    await run();
    expect(d.pool.inUseBytes).toBe(before);
    expect(d.pool.buffersCreated).toBe(created);
  });
});

describe("convLstm2d bad input", () => {
  const dev = useDevice();
  const x = () => Tensor.zeros(dev(), [1, 2, 3, 4, 4]);
  const w = () => Tensor.zeros(dev(), [8, 5, 3, 3]);
  it("rejects a non-5D input", () => {
    expect(() => convLstm2d(Tensor.zeros(dev(), [1, 3, 4, 4]), w(), null, { hidden: 2 })).toThrow(/convlstm2d: 'x' must have rank 5, got \[1, 3, 4, 4\]/);
  });
  it("rejects a weight that does not fit Cin + hidden or 4*hidden", () => {
    expect(() => convLstm2d(x(), Tensor.zeros(dev(), [8, 3, 3, 3]), null, { hidden: 2 })).toThrow(
      /convlstm2d: 'weight' must have shape \[8, 5, 3, 3\], got \[8, 3, 3, 3\]/,
    );
    expect(() => convLstm2d(x(), w(), null, { hidden: 3 })).toThrow(/'weight' must have shape \[12, 6, 3, 3\]/);
  });
  it("rejects a bad bias, hidden, kernel or activation", () => {
    expect(() => convLstm2d(x(), w(), Tensor.zeros(dev(), [4]), { hidden: 2 })).toThrow(/'bias' must have shape \[8\], got \[4\]/);
    expect(() => convLstm2d(x(), w(), null, { hidden: 0 })).toThrow(/'hidden' must be a positive integer/);
    expect(() => convLstm2d(x(), Tensor.zeros(dev(), [8, 5, 2, 2]), null, { hidden: 2 })).toThrow(/'kernel' must be a positive odd integer/);
    expect(() => convLstm2d(x(), w(), null, { hidden: 2, kernel: 5 })).toThrow(/'weight' must have shape \[8, 5, 5, 5\]/);
    expect(() => convLstm2d(x(), w(), null, { hidden: 2, recurrentActivation: "tanh" as any })).toThrow(PulmoError);
  });
  it("rejects an empty sequence and an int input", () => {
    expect(() => convLstm2d(Tensor.zeros(dev(), [1, 0, 3, 4, 4]), w(), null, { hidden: 2 })).toThrow(/at least one time step/);
    expect(() => convLstm2d(Tensor.zeros(dev(), [1, 2, 3, 4, 4], "i32"), w(), null, { hidden: 2 })).toThrow(/'x' must be f32/);
  });
});

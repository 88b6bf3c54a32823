import { describe, expect, it } from "vitest";
import { poolAfterSteps, useDevice } from "../helpers.ts";
import { uniform, uniformF32 } from "../random.ts";
import {
  Tensor,
  backward,
  add,
  sub,
  mul,
  div,
  maximum,
  minimum,
  addScalar,
  mulScalar,
  powScalar,
  clamp,
  broadcastTo,
  sumToShape,
  PulmoError,
  type Device,
} from "../../src/node.ts";

// No golden cases exist for this family (the golden set covers matmul/linear); every op is
// checked against float64 references computed here instead.

const prod = (s: readonly number[]) => s.reduce((n, d) => n * d, 1);

function expectClose(actual: ArrayLike<number>, ref: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(ref.length);
  let scale = 1;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]!));
  for (let i = 0; i < ref.length; i++) {
    if (Math.abs(actual[i]! - ref[i]!) > tol * scale) expect.fail(`element ${i}: ${actual[i]} vs reference ${ref[i]}`);
  }
}

function broadcast(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    return x === 1 ? y : x;
  });
}
/** flat index into `shape` of output element `o` of `out` (NumPy broadcasting). */
function source(o: number, out: number[], shape: number[]): number {
  let idx = 0, stride = 1, rem = o;
  for (let d = out.length - 1; d >= 0; d--) {
    const c = rem % out[d]!;
    rem = Math.floor(rem / out[d]!);
    const k = d - (out.length - shape.length);
    if (k >= 0) {
      if (shape[k] !== 1) idx += c * stride;
      stride *= shape[k]!;
    }
  }
  return idx;
}

type Ref = (x: number, y: number) => [number, number, number]; // value, d/dx, d/dy
const REFS: Record<string, [(a: Tensor, b: Tensor) => Tensor, Ref]> = {
  add: [add, (x, y) => [x + y, 1, 1]],
  sub: [sub, (x, y) => [x - y, 1, -1]],
  mul: [mul, (x, y) => [x * y, y, x]],
  div: [div, (x, y) => [x / y, 1 / y, -x / (y * y)]],
  maximum: [maximum, (x, y) => [Math.max(x, y), x > y ? 1 : x === y ? 0.5 : 0, y > x ? 1 : x === y ? 0.5 : 0]],
  minimum: [minimum, (x, y) => [Math.min(x, y), x < y ? 1 : x === y ? 0.5 : 0, y < x ? 1 : x === y ? 0.5 : 0]],
};

function leaf(d: Device, data: Float32Array, shape: number[]): Tensor {
  const t = Tensor.from(d, data, shape);
  t.requiresGrad = true;
  return t;
}

/** Values on a coarse grid so maximum/minimum see ties. */
function grid(n: number, seed: number): Float32Array {
  return uniformF32(n, seed).map((v) => Math.round(v * 4) / 2);
}

describe("binary ops against a float64 reference, with broadcasting", () => {
  const dev = useDevice();
  const shapes: [number[], number[]][] = [
    [[2, 1, 4, 3], [5, 1, 3]],
    [[3, 4], [3, 4]],
    [[7], [40, 20, 7]], // long reduction for a's gradient: the two-pass sum
    [[2, 3, 1], []],
    // same shape: vec4 bulk (multiples of 64 elements) plus a scalar tail
    [[128], [128]],
    [[3, 1367], [3, 1367]],
  ];
  for (const [name, [fn, ref]] of Object.entries(REFS))
    for (const [as, bs] of shapes)
      it(`${name} ${JSON.stringify(as)} with ${JSON.stringify(bs)}: forward and both gradients`, async () => {
        const d = dev();
        const ah = grid(prod(as), 1);
        const bh = name === "div" ? uniformF32(prod(bs), 2, 0.5, 2) : grid(prod(bs), 2);
        const out = broadcast(as, bs);
        const dyh = uniformF32(prod(out), 3);
        const a = leaf(d, ah, as), b = leaf(d, bh, bs);
        const y = fn(a, b);
        expect(y.shape).toEqual(out);
        backward(y, [Tensor.from(d, dyh, out)]);
        const ry = new Float64Array(prod(out)), ga = new Float64Array(ah.length), gb = new Float64Array(bh.length);
        for (let o = 0; o < ry.length; o++) {
          const ia = source(o, out, as), ib = source(o, out, bs);
          const [v, dx, dyv] = ref(ah[ia]!, bh[ib]!);
          ry[o] = v;
          ga[ia]! += dyh[o]! * dx;
          gb[ib]! += dyh[o]! * dyv;
        }
        expectClose(await y.read(), ry);
        expect(a.grad!.shape).toEqual(as);
        expect(b.grad!.shape).toEqual(bs);
        expectClose(await a.grad!.read(), ga);
        expectClose(await b.grad!.read(), gb);
      });

  it("maximum and minimum propagate NaN from either side (PyTorch), scalar and vec4 paths", async () => {
    const d = dev();
    for (const n of [6, 128]) {
      const ah = Array.from({ length: n }, (_, i) => (i % 3 === 1 ? NaN : i % 3)), bh = Array.from({ length: n }, (_, i) => (i % 3 === 2 ? NaN : 1));
      for (const fn of [maximum, minimum]) {
        const y = await fn(Tensor.from(d, ah, [n]), Tensor.from(d, bh, [n])).read();
        for (let i = 0; i < n; i++) expect(Number.isNaN(y[i]!)).toBe(i % 3 !== 0);
      }
      // broadcast path: b is one NaN
      const yb = await maximum(Tensor.from(d, ah, [n]), Tensor.from(d, [NaN], [1])).read();
      expect([...yb].every(Number.isNaN)).toBe(true);
    }
  });

  it("many dims that cannot be merged (rank 6, alternating broadcast)", async () => {
    const d = dev();
    const as = [2, 1, 3, 1, 2, 1], bs = [1, 3, 1, 2, 1, 2];
    const ah = uniformF32(prod(as), 4), bh = uniformF32(prod(bs), 5);
    const out = broadcast(as, bs);
    const a = leaf(d, ah, as), b = leaf(d, bh, bs);
    const dyh = uniformF32(prod(out), 6);
    backward(mul(a, b), [Tensor.from(d, dyh, out)]);
    const gb = new Float64Array(bh.length);
    for (let o = 0; o < prod(out); o++) gb[source(o, out, bs)]! += dyh[o]! * ah[source(o, out, as)]!;
    expectClose(await b.grad!.read(), gb);
  });

  it("only inputs that require a gradient get one", async () => {
    const d = dev();
    const a = Tensor.from(d, [1, 2, 3], [3]);
    const b = leaf(d, Float32Array.from([4, 5, 6]), [3]);
    backward(mul(a, b), [Tensor.from(d, [1, 1, 1], [3])]);
    expect(a.grad).toBeNull();
    expect([...(await b.grad!.read())]).toEqual([1, 2, 3]);
  });

  it("broadcastTo copies and sums back; sumToShape keeps unit dims", async () => {
    const d = dev();
    const x = leaf(d, Float32Array.from([1, 2, 3]), [3, 1]);
    const y = broadcastTo(x, [2, 3, 4]);
    expect([...(await y.read())]).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    backward(y, [Tensor.from(d, uniformF32(24, 7).map(() => 1), [2, 3, 4])]);
    expect([...(await x.grad!.read())]).toEqual([8, 8, 8]);
    const s = sumToShape(Tensor.from(d, Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]), [1, 4]);
    expect(s.shape).toEqual([1, 4]);
    expect([...(await s.read())]).toEqual([60, 66, 72, 78]);
  });

  it("does not grow the buffer pool over repeated steps", async () => {
    const d = dev();
    const a = leaf(d, uniformF32(24, 8), [2, 3, 4]);
    const b = leaf(d, uniformF32(4, 9, 0.5, 1), [4]);
    const seed = Tensor.from(d, uniformF32(24, 10), [2, 3, 4]);
    const { inUse } = await poolAfterSteps(d, [a, b], () => {
      const y = add(div(mul(a, b), b), clamp(powScalar(sub(a, b), 2), 0, 1));
      backward(maximum(y, minimum(a, b)), [seed]);
    });
    expect(new Set(inUse).size).toBe(1);
  });
});

describe("scalar ops against a float64 reference", () => {
  const dev = useDevice();
  async function check(fn: (x: Tensor) => Tensor, f: (v: number) => number, df: (v: number) => number, xs: number[]) {
    const d = dev();
    const x = leaf(d, Float32Array.from(xs), [xs.length]);
    const dyh = uniformF32(xs.length, 11);
    const y = fn(x);
    backward(y, [Tensor.from(d, dyh, [xs.length])]);
    const x32 = Float32Array.from(xs);
    expectClose(await y.read(), [...x32].map(f));
    expectClose(await x.grad!.read(), [...x32].map((v, i) => dyh[i]! * df(v)));
  }
  const xs = uniform(37, 12, -3, 3);
  it("addScalar", () => check((x) => addScalar(x, 1.5), (v) => v + 1.5, () => 1, xs));
  it("mulScalar", () => check((x) => mulScalar(x, -0.75), (v) => v * -0.75, () => -0.75, xs));
  // 64- and 4163-element inputs: the vec4 bulk, and the bulk plus a scalar tail
  const long = uniform(4163, 13, -3, 3);
  it("mulScalar, powScalar and clamp over the vec4 bulk and a scalar tail", async () => {
    await check((x) => mulScalar(x, -0.75), (v) => v * -0.75, () => -0.75, long.slice(0, 64));
    await check((x) => powScalar(x, 3), (v) => v ** 3, (v) => 3 * v ** 2, long);
    await check((x) => clamp(x, -1, 0.5), (v) => Math.min(Math.max(v, -1), 0.5), (v) => (v >= -1 && v <= 0.5 ? 1 : 0), long);
  });
  it("powScalar with integral exponents works for negative bases", () =>
    check((x) => powScalar(x, 3), (v) => v ** 3, (v) => 3 * v ** 2, xs));
  it("powScalar with a negative integral exponent", () =>
    check((x) => powScalar(x, -2), (v) => v ** -2, (v) => -2 * v ** -3, [0.5, -0.7, 1.3, -2, 3]));
  it("powScalar with a fractional exponent", () =>
    check((x) => powScalar(x, 0.5), (v) => Math.sqrt(v), (v) => 0.5 / Math.sqrt(v), [0.25, 1, 2.5, 9]));
  it("powScalar with exponent 0: ones, zero gradient", () => check((x) => powScalar(x, 0), () => 1, () => 0, [-2, 0, 3]));
  it("powScalar with a fractional exponent of a negative base is NaN (as PyTorch)", async () => {
    const y = await powScalar(Tensor.from(dev(), [-4], [1]), 0.5).read();
    expect(Number.isNaN(y[0])).toBe(true);
  });
  it("clamp: gradient on the closed interval [lo, hi] (PyTorch)", () =>
    check(
      (x) => clamp(x, -1, 0.5),
      (v) => Math.min(Math.max(v, -1), 0.5),
      (v) => (v >= -1 && v <= 0.5 ? 1 : 0),
      [-2, -1, -0.5, 0, 0.5, 0.75, 3],
    ));
  it("clamp with one bound", async () => {
    await check((x) => clamp(x, 0), (v) => Math.max(v, 0), (v) => (v >= 0 ? 1 : 0), [-1, 0, 2]);
    await check((x) => clamp(x, null, 1), (v) => Math.min(v, 1), (v) => (v <= 1 ? 1 : 0), [-1, 1, 2]);
  });
});

describe("elementwise ops reject bad inputs", () => {
  const dev = useDevice();
  const t = (shape: number[], dtype: "f32" | "i32" = "f32") => Tensor.from(dev(), new Array(prod(shape)).fill(1), shape, dtype);
  it("shapes that do not broadcast", () => {
    expect(() => add(t([2, 3]), t([4, 3]))).toThrow(PulmoError);
    expect(() => mul(t([2, 3]), t([4, 3]))).toThrow(/mul: shapes \[2, 3\] and \[4, 3\] do not broadcast/);
  });
  it("non-f32 tensors", () => {
    expect(() => sub(t([2]), t([2], "i32"))).toThrow(/sub: 'b' must be f32, got i32/);
    expect(() => addScalar(t([2], "i32"), 1)).toThrow(/add_scalar: 'x' must be f32/);
  });
  it("more unmergeable dims than the kernel takes", () => {
    const a = [2, 1, 2, 1, 2, 1, 2, 1, 2], b = [1, 2, 1, 2, 1, 2, 1, 2, 1];
    expect(() => add(t(a), t(b))).toThrow(/add: broadcast of .* needs 9 dims after merging, more than 8/);
  });
  it("bad scalars and a clamp without bounds", () => {
    expect(() => mulScalar(t([2]), NaN)).toThrow(/mul_scalar: 's' must be a number/);
    expect(() => clamp(t([2]))).toThrow(/clamp: at least one of 'lo' and 'hi'/);
  });
  it("broadcastTo / sumToShape to an incompatible shape", () => {
    expect(() => broadcastTo(t([3]), [4, 2])).toThrow(/broadcast_to: 'x' \[3\] does not broadcast to \[4, 2\]/);
    expect(() => sumToShape(t([4, 2]), [3])).toThrow(/sum_to_shape: \[3\] does not broadcast to \[4, 2\]/);
  });
});

describe("elementwise ops past the per-dimension workgroup limit", () => {
  const dev = useDevice({ limits: { maxWorkgroupsPerDim: 4 } });
  it("binary forward and gradient over workgroups split across x and y", async () => {
    const d = dev();
    const ah = uniformF32(20 * 40, 70), bh = uniformF32(40, 71);
    const a = leaf(d, ah, [20, 40]), b = leaf(d, bh, [40]);
    const y = mul(a, b);
    backward(y, [Tensor.from(d, new Array(800).fill(1), [20, 40])]);
    const yv = await y.read();
    const gb = await b.grad!.read();
    for (let i = 0; i < 800; i++) expect(yv[i]).toBe(Math.fround(ah[i]! * bh[i % 40]!));
    for (let j = 0; j < 40; j++) {
      let s = 0;
      for (let r = 0; r < 20; r++) s += ah[r * 40 + j]!;
      expect(gb[j]).toBeCloseTo(s, 4);
    }
    const c = await clamp(a, 0, 0.5).read();
    for (let i = 0; i < 800; i++) expect(c[i]).toBe(Math.min(Math.max(ah[i]!, 0), 0.5));
  });
});

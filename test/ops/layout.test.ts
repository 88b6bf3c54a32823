import { describe, expect, it } from "vitest";
import { poolAfterSteps, useDevice } from "../helpers.ts";
import { uniformF32 } from "../random.ts";
import { Tensor, backward, permute, transpose, concat, slice, stack, pad, reshape, mul, PulmoError, type Device } from "../../src/node.ts";

// No golden cases exist for this family; every op is checked against references computed here.
// Layout ops only move values, so forward results and gradients must match exactly.

const prod = (s: readonly number[]) => s.reduce((n, d) => n * d, 1);

function coords(i: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return c;
}
function flat(c: readonly number[], shape: readonly number[]): number {
  return c.reduce((acc, v, d) => acc * shape[d]! + v, 0);
}

function leaf(d: Device, shape: number[], seed: number): [Tensor, Float32Array] {
  const h = uniformF32(prod(shape), seed);
  const t = Tensor.from(d, h, shape);
  t.requiresGrad = true;
  return [t, h];
}

/** Runs y = f(inputs), seeds a random dy, and returns y, dy and each input's gradient. */
async function run(d: Device, f: () => Tensor, inputs: Tensor[]) {
  const y = f();
  const dy = uniformF32(y.size, 99);
  backward(y, [Tensor.from(d, dy, y.shape)]);
  return {
    y: [...(await y.read())],
    shape: [...y.shape],
    dy,
    grads: await Promise.all(inputs.map(async (t) => [...(await t.grad!.read())])),
  };
}

describe("layout ops against references", () => {
  const dev = useDevice();

  it("permute: a rank-5 reorder, forward and backward (inverse permutation)", async () => {
    const d = dev();
    const xs = [2, 3, 1, 4, 5];
    const dims = [3, -1, 0, 2, 1];
    const norm = [3, 4, 0, 2, 1];
    const [x, xh] = leaf(d, xs, 1);
    const r = await run(d, () => permute(x, dims), [x]);
    const ys = norm.map((k) => xs[k]!);
    expect(r.shape).toEqual(ys);
    const ry = new Array(prod(ys)), gx = new Array(prod(xs));
    for (let i = 0; i < ry.length; i++) {
      const c = coords(i, ys);
      const src = new Array<number>(xs.length);
      norm.forEach((k, j) => (src[k] = c[j]!));
      ry[i] = xh[flat(src, xs)];
      gx[flat(src, xs)] = r.dy[i];
    }
    expect(r.y).toEqual(ry);
    expect(r.grads[0]).toEqual(gx);
  });

  it("transpose with negative dims matches the 2-D transpose", async () => {
    const d = dev();
    const [x, xh] = leaf(d, [2, 3, 4], 2);
    const r = await run(d, () => transpose(x, -1, 1), [x]);
    expect(r.shape).toEqual([2, 4, 3]);
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 4; j++) {
          expect(r.y[b * 12 + j * 3 + i]).toBe(xh[b * 12 + i * 4 + j]);
          expect(r.grads[0]![b * 12 + i * 4 + j]).toBe(r.dy[b * 12 + j * 3 + i]);
        }
  });

  for (const axis of [1, -1, 0])
    it(`concat along axis ${axis}: forward and slices of the gradient back`, async () => {
      const d = dev();
      const base = [2, 3, 4];
      const ax = axis < 0 ? axis + 3 : axis;
      const sizes = [1, 3, 2];
      const parts = sizes.map((s, i) => leaf(d, base.map((v, k) => (k === ax ? s : v)), 10 + i));
      const r = await run(d, () => concat(parts.map((p) => p[0]), axis), parts.map((p) => p[0]));
      const ys = base.map((v, k) => (k === ax ? 6 : v));
      expect(r.shape).toEqual(ys);
      const ry = new Array(prod(ys));
      const grads = parts.map((p) => new Array(p[1].length));
      for (let i = 0; i < ry.length; i++) {
        const c = coords(i, ys);
        let k = 0, off = c[ax]!;
        while (off >= sizes[k]!) off -= sizes[k++]!;
        const ps = base.map((v, j) => (j === ax ? sizes[k]! : v));
        const src = c.map((v, j) => (j === ax ? off : v));
        ry[i] = parts[k]![1][flat(src, ps)];
        grads[k]![flat(src, ps)] = r.dy[i];
      }
      expect(r.y).toEqual(ry);
      r.grads.forEach((g, k) => expect(g).toEqual(grads[k]));
    });

  for (const axis of [0, 1, 2, -1])
    it(`stack along axis ${axis}: forward and the gradient split back`, async () => {
      const d = dev();
      const xs = [3, 2];
      const parts = [0, 1, 2, 3].map((i) => leaf(d, xs, 20 + i));
      const r = await run(d, () => stack(parts.map((p) => p[0]), axis), parts.map((p) => p[0]));
      const ax = axis < 0 ? axis + 3 : axis;
      const ys = [...xs.slice(0, ax), 4, ...xs.slice(ax)];
      expect(r.shape).toEqual(ys);
      for (let i = 0; i < prod(ys); i++) {
        const c = coords(i, ys);
        const k = c[ax]!;
        const src = flat([...c.slice(0, ax), ...c.slice(ax + 1)], xs);
        expect(r.y[i]).toBe(parts[k]![1][src]);
        expect(r.grads[k]![src]).toBe(r.dy[i]);
      }
      r.grads.forEach((g, k) => expect(g.length).toBe(parts[k]![1].length));
    });

  for (const [axis, start, end, want] of [
    [1, 1, 4, [1, 4]],
    [-1, -3, -1, [2, 4]],
    [0, 0, 100, [0, 2]],
    [1, 3, 2, [3, 3]], // empty
  ] as [number, number, number, [number, number]][])
    it(`slice(axis ${axis}, ${start}, ${end}): Python bounds, backward zero-pads`, async () => {
      const d = dev();
      const xs = [2, 5, 5];
      const ax = axis < 0 ? axis + 3 : axis;
      const [x, xh] = leaf(d, xs, 30);
      const y = slice(x, axis, start, end);
      const ys = xs.map((v, k) => (k === ax ? want[1] - want[0] : v));
      expect([...y.shape]).toEqual(ys);
      const dy = uniformF32(y.size, 31);
      backward(y, [Tensor.from(d, dy, ys)]);
      const yv = [...(await y.read())];
      const gx = new Array(prod(xs)).fill(0);
      for (let i = 0; i < y.size; i++) {
        const c = coords(i, ys);
        c[ax]! += want[0];
        expect(yv[i]).toBe(xh[flat(c, xs)]);
        gx[flat(c, xs)] = dy[i];
      }
      expect([...(await x.grad!.read())]).toEqual(gx);
    });

  it("pad with positive and negative (cropping) amounts and a fill value; backward crops", async () => {
    const d = dev();
    const xs = [2, 3, 4];
    const pads: [number, number][] = [[1, 0], [0, 0], [2, -1]];
    const [x, xh] = leaf(d, xs, 40);
    const r = await run(d, () => pad(x, pads, 2.5), [x]);
    const ys = xs.map((v, k) => v + pads[k]![0] + pads[k]![1]);
    expect(r.shape).toEqual(ys);
    const gx = new Array(prod(xs)).fill(0);
    for (let i = 0; i < prod(ys); i++) {
      const c = coords(i, ys).map((v, k) => v - pads[k]![0]);
      const inside = c.every((v, k) => v >= 0 && v < xs[k]!);
      expect(r.y[i]).toBe(inside ? xh[flat(c, xs)] : 2.5);
      if (inside) gx[flat(c, xs)] = r.dy[i];
    }
    expect(r.grads[0]).toEqual(gx);
  });

  it("pad of an empty dim fills everything; a crop to zero gives an empty tensor", async () => {
    const d = dev();
    expect([...(await pad(Tensor.from(d, [], [0, 2]), [[1, 1], [0, 0]], 7).read())]).toEqual([7, 7, 7, 7]);
    expect(pad(Tensor.from(d, [1, 2], [2]), [[-1, -1]]).shape).toEqual([0]);
  });

  it("gradients flow through a chain of layout ops (concat → slice → reshape → permute → stack)", async () => {
    const d = dev();
    const [a, ah] = leaf(d, [2, 3], 50);
    const [b, bh] = leaf(d, [1, 3], 51);
    const y = stack([permute(reshape(slice(concat([a, b], 0), 0, 1, 3), [3, 2]), [1, 0]), mul(a, a)], 0);
    backward(y, [Tensor.from(d, new Array(12).fill(1), [2, 2, 3])]);
    // a[1] and b[0] reach y once through the slice; mul(a, a) adds 2a everywhere.
    const ga = await a.grad!.read();
    [...ah].forEach((v, i) => expect(ga[i]).toBeCloseTo(2 * v + (i >= 3 ? 1 : 0), 6));
    expect([...(await b.grad!.read())]).toEqual([1, 1, 1]);
    expect(bh.length).toBe(3);
  });

  it("does not grow the buffer pool over repeated steps", async () => {
    const d = dev();
    const [a] = leaf(d, [2, 3, 4], 60);
    const [b] = leaf(d, [2, 3, 4], 61);
    const seed = Tensor.from(d, uniformF32(2 * 4 * 9, 62), [2, 4, 9]);
    const { inUse } = await poolAfterSteps(d, [a, b], () => {
      const s = reshape(slice(stack([a, b], 1), 1, 1, 2), [2, 3, 4]);
      const c = concat([a, s], 1);
      const y = pad(transpose(c, 1, 2), [[0, 0], [0, 0], [1, 2]]);
      backward(y, [seed]);
    });
    expect(new Set(inUse).size).toBe(1);
  });
});

describe("layout ops reject bad inputs", () => {
  const dev = useDevice();
  const t = (shape: number[], dtype: "f32" | "i32" = "f32") => Tensor.from(dev(), new Array(prod(shape)).fill(1), shape, dtype);
  it("permute: wrong length, repeated or out-of-range dims, non-f32", () => {
    expect(() => permute(t([2, 3]), [0])).toThrow(PulmoError);
    expect(() => permute(t([2, 3]), [0])).toThrow(/permute: 'dims' must list 2 dims for 'x' \[2, 3\]/);
    expect(() => permute(t([2, 3]), [1, -1])).toThrow(/permute: 'dims' \[1,-1\] is not a permutation/);
    expect(() => permute(t([2, 3]), [0, 2])).toThrow(/permute: 'dims' 2 is out of range for shape \[2, 3\]/);
    expect(() => transpose(t([2, 3], "i32"), 0, 1)).toThrow(/transpose: 'x' must be f32/);
  });
  it("concat / stack: mismatched shapes, bad axis, empty list", () => {
    expect(() => concat([t([2, 3]), t([2, 4])], 0)).toThrow(/concat: 'tensors\[1\]' \[2, 4\] does not match 'tensors\[0\]' \[2, 3\] outside axis 0/);
    expect(() => concat([t([2, 3]), t([2, 3, 1])], 0)).toThrow(/concat: 'tensors\[1\]'/);
    expect(() => concat([t([2, 3])], 2)).toThrow(/concat: 'axis' 2 is out of range/);
    expect(() => concat([], 0)).toThrow(/concat: 'tensors' must be a non-empty array/);
    expect(() => stack([t([2, 3]), t([3, 2])], 0)).toThrow(/stack: 'tensors\[1\]' \[3, 2\] does not match/);
    expect(() => stack([t([2, 3])], -4)).toThrow(/stack: 'axis' -4 is out of range/);
    expect(() => concat([t([2]), t([2], "i32")], 0)).toThrow(/concat: 'tensors\[1\]' must be f32/);
  });
  it("slice / pad: bad axis, bounds, pad list", () => {
    expect(() => slice(t([2, 3]), 2, 0, 1)).toThrow(/slice: 'axis' 2 is out of range for shape \[2, 3\]/);
    expect(() => slice(t([2, 3]), 0, 0.5, 1)).toThrow(/slice: 'start' and 'end' must be integers/);
    expect(() => pad(t([2, 3]), [[1, 1]])).toThrow(/pad: 'pads' must give \[before, after\] for each of the 2 dims of 'x' \[2, 3\], got 1 pairs/);
    expect(() => pad(t([2, 3]), [[0, 0], [-2, -2]])).toThrow(/pad: 'pads\[1\]' \[-2,-2\] crops dim 1 of 'x' \[2, 3\] below zero/);
    expect(() => pad(t([2]), [[0.5, 0]])).toThrow(/pad: 'pads\[0\]' must be a pair of integers/);
  });
});

describe("layout ops past the per-dimension workgroup limit", () => {
  const dev = useDevice({ limits: { maxWorkgroupsPerDim: 4 } });
  it("permute and pad over workgroups split across x and y", async () => {
    const d = dev();
    const xh = uniformF32(20 * 40, 80);
    const x = Tensor.from(d, xh, [20, 40]);
    const y = await permute(x, [1, 0]).read();
    for (let i = 0; i < 20; i++) for (let j = 0; j < 40; j++) expect(y[j * 20 + i]).toBe(xh[i * 40 + j]);
    const p = await pad(x, [[1, 1], [0, 0]]).read();
    expect(p.length).toBe(22 * 40);
    expect([...p.slice(40, 40 + 800)]).toEqual([...xh]);
  });
});

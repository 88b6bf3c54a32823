import { describe, expect, it } from "vitest";
import { goldenSuite, useDevice } from "../helpers.ts";
import { rng, uniform } from "../random.ts";
import {
  Tensor,
  backward,
  gridSample3d,
  levelStartIndex,
  msDeformAttn3d,
  tidy,
  PulmoError,
  type Device,
  type SpatialShape3d,
} from "../../src/node.ts";

describe("attention golden cases", () => goldenSuite(["grid_sample3d", "ms_deform_attn3d"]));

// ---------------------------------------------------------------------------------------------
// float64 references (written independently of the kernels: plain loops over samples)

/** trilinear sample at voxel coordinate (px, py, pz) with zeros outside */
function trilinear(get: (z: number, y: number, x: number) => number, D: number, H: number, W: number, px: number, py: number, pz: number): number {
  const x0 = Math.floor(px), y0 = Math.floor(py), z0 = Math.floor(pz);
  let v = 0;
  for (let dz = 0; dz < 2; dz++)
    for (let dy = 0; dy < 2; dy++)
      for (let dx = 0; dx < 2; dx++) {
        const x = x0 + dx, y = y0 + dy, z = z0 + dz;
        if (x < 0 || y < 0 || z < 0 || x >= W || y >= H || z >= D) continue;
        const w = (dx ? px - x0 : 1 - px + x0) * (dy ? py - y0 : 1 - py + y0) * (dz ? pz - z0 : 1 - pz + z0);
        v += w * get(z, y, x);
      }
  return v;
}

function gridSampleRef(x: number[], xs: number[], grid: number[], gs: number[], align: boolean): number[] {
  const [N, C, D, H, W] = xs as [number, number, number, number, number];
  const So = gs[1]! * gs[2]! * gs[3]!;
  const un = (g: number, size: number) => (align ? ((g + 1) / 2) * (size - 1) : ((g + 1) * size - 1) / 2);
  const y: number[] = [];
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let o = 0; o < So; o++) {
        const g = (n * So + o) * 3;
        const base = (n * C + c) * D * H * W;
        y.push(trilinear((z, yy, xx) => x[base + (z * H + yy) * W + xx]!, D, H, W, un(grid[g]!, W), un(grid[g + 1]!, H), un(grid[g + 2]!, D)));
      }
  return y;
}

function deformRef(value: number[], vs: number[], shapes: SpatialShape3d[], loc: number[], Lq: number, nP: number, attn: number[]): number[] {
  const [N, S, nH, Dh] = vs as [number, number, number, number];
  const nL = shapes.length;
  const starts = [0];
  for (const [d, h, w] of shapes) starts.push(starts.at(-1)! + d * h * w);
  const y = new Array<number>(N * Lq * nH * Dh).fill(0);
  for (let n = 0; n < N; n++)
    for (let q = 0; q < Lq; q++)
      for (let h = 0; h < nH; h++)
        for (let c = 0; c < Dh; c++) {
          let acc = 0;
          for (let l = 0; l < nL; l++) {
            const [D, H, W] = shapes[l]!;
            for (let p = 0; p < nP; p++) {
              const s = (((n * Lq + q) * nH + h) * nL + l) * nP + p;
              const get = (z: number, yy: number, xx: number) => value[((n * S + starts[l]! + (z * H + yy) * W + xx) * nH + h) * Dh + c]!;
              acc += attn[s]! * trilinear(get, D, H, W, loc[3 * s]! * W - 0.5, loc[3 * s + 1]! * H - 0.5, loc[3 * s + 2]! * D - 0.5);
            }
          }
          y[((n * Lq + q) * nH + h) * Dh + c] = acc;
        }
  return y;
}

/** central finite differences of L = sum(f(params) * dy) with respect to every parameter */
function finiteDiff(params: number[], f: (p: number[]) => number[], dy: number[], h = 1e-6): number[] {
  const L = (p: number[]) => f(p).reduce((s, v, i) => s + v * dy[i]!, 0);
  return params.map((_, i) => {
    const plus = [...params], minus = [...params];
    plus[i]! += h;
    minus[i]! -= h;
    return (L(plus) - L(minus)) / (2 * h);
  });
}

function expectClose(actual: ArrayLike<number>, ref: number[], rel = 1e-5, what = "") {
  expect(actual.length, what).toBe(ref.length);
  let d2 = 0, r2 = 0, maxRef = 0, maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = actual[i]! - ref[i]!;
    d2 += d * d;
    r2 += ref[i]! * ref[i]!;
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(d));
  }
  expect(Math.sqrt(d2 / Math.max(r2, 1e-24)), `${what} rel-L2`).toBeLessThanOrEqual(rel);
  expect(maxDiff, `${what} max abs`).toBeLessThanOrEqual(10 * rel * Math.max(maxRef, 1e-12));
}

// ---------------------------------------------------------------------------------------------

async function checkGridSample(d: Device, xs: number[], gs: number[], align: boolean, seed: number) {
  const r = rng(seed);
  const x = uniform(xs.reduce((a, b) => a * b), r);
  // a little past [-1, 1] so zeros padding and partly-outside samples are exercised
  const grid = uniform(gs.reduce((a, b) => a * b), r, -1.2, 1.2);
  const ys = [xs[0]!, xs[1]!, gs[1]!, gs[2]!, gs[3]!];
  const dy = uniform(ys.reduce((a, b) => a * b), r);
  const tx = Tensor.from(d, x, xs);
  const tg = Tensor.from(d, grid, gs);
  tx.requiresGrad = tg.requiresGrad = true;
  const y = gridSample3d(tx, tg, { alignCorners: align });
  expect(y.shape).toEqual(ys);
  expectClose(await y.read(), gridSampleRef(x, xs, grid, gs, align), 1e-5, "y");
  backward(y, [Tensor.from(d, dy, ys)]);
  expectClose(await tx.grad!.read(), finiteDiff(x, (p) => gridSampleRef(p, xs, grid, gs, align), dy), 1e-5, "grad x");
  expectClose(await tg.grad!.read(), finiteDiff(grid, (p) => gridSampleRef(x, xs, p, gs, align), dy), 1e-4, "grad grid");
  for (const t of [tx.grad!, tg.grad!, tx, tg, y]) t.dispose();
}

function deformInputs(seed: number, N: number, shapes: SpatialShape3d[], nH: number, Dh: number, Lq: number, nP: number, locRange: [number, number] = [-0.15, 1.15]) {
  const r = rng(seed);
  const S = shapes.reduce((s, [a, b, c]) => s + a * b * c, 0);
  const nL = shapes.length;
  return {
    vs: [N, S, nH, Dh],
    ls: [N, Lq, nH, nL, nP, 3],
    as: [N, Lq, nH, nL, nP],
    value: uniform(N * S * nH * Dh, r),
    loc: uniform(N * Lq * nH * nL * nP * 3, r, ...locRange),
    attn: uniform(N * Lq * nH * nL * nP, r, 0, 1),
    dy: uniform(N * Lq * nH * Dh, r),
  };
}

describe("grid_sample3d against a float64 reference (shapes not in the golden set)", () => {
  const dev = useDevice();
  it("align_corners=False: forward, grad x and grad grid (finite differences)", () => checkGridSample(dev(), [2, 3, 3, 4, 5], [2, 2, 3, 2, 3], false, 1));
  it("align_corners=True", () => checkGridSample(dev(), [1, 2, 4, 3, 2], [1, 3, 1, 2, 3], true, 2));
  it("grid only needs a gradient: x gets none, grid gets the full one", async () => {
    const d = dev();
    const r = rng(3);
    const xs = [1, 2, 3, 3, 3], gs = [1, 2, 2, 2, 3];
    const x = uniform(54, r), grid = uniform(24, r), dy = uniform(16, r);
    const tx = Tensor.from(d, x, xs), tg = Tensor.from(d, grid, gs);
    tg.requiresGrad = true;
    const y = gridSample3d(tx, tg);
    backward(y, [Tensor.from(d, dy, [1, 2, 2, 2, 2])]);
    expect(tx.grad).toBeNull();
    expectClose(await tg.grad!.read(), finiteDiff(grid, (p) => gridSampleRef(x, xs, p, gs, false), dy), 1e-4, "grad grid");
  });
  it("a sample exactly on the outer edge, NaN and huge coordinates: zeros, finite gradients", async () => {
    const d = dev();
    const x = Array.from({ length: 8 }, (_, i) => i + 1);
    const tx = Tensor.from(d, x, [1, 1, 2, 2, 2]);
    // grid x = -1.5 is voxel coordinate -1 on a size-2 axis: the sample is 0, but voxel 0 carries
    // the gradient (as in PyTorch, which also keeps a corner with weight 0 in the backward)
    const tg = Tensor.from(d, [-1.5, 0, 0, NaN, 0, 0, 1e30, 0, 0, 0, 0, 0], [1, 1, 1, 4, 3]);
    tx.requiresGrad = tg.requiresGrad = true;
    const y = gridSample3d(tx, tg);
    const yv = await y.read();
    expect([...yv.slice(0, 3)]).toEqual([0, 0, 0]);
    expect(yv[3]).toBeCloseTo(4.5, 5); // centre of a 2x2x2 volume: mean of 1..8
    backward(y, [Tensor.from(d, [1, 1, 1, 1], [1, 1, 1, 1, 4])]);
    const gg = await tg.grad!.read();
    expect([...gg].every(Number.isFinite)).toBe(true);
    // d/dgx = (W/2) * 0.25 * (x at voxels with x-index 0: 1 + 3 + 5 + 7)
    expect(gg[0]).toBeCloseTo(4, 5);
    expect([...gg.slice(3, 9)]).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe("ms_deform_attn3d against a float64 reference (shapes not in the golden set)", () => {
  const dev = useDevice();
  it("channel blocks: Dh 12 (vec4 path, partial last block) and Dh 7 (scalar path), forward and grad value", async () => {
    const d = dev();
    const shapes: SpatialShape3d[] = [[3, 4, 2], [1, 2, 3]];
    const Lq = 4, nP = 2;
    for (const Dh of [12, 7]) {
      const t = deformInputs(9, 2, shapes, 3, Dh, Lq, nP);
      const value = Tensor.from(d, t.value, t.vs), loc = Tensor.from(d, t.loc, t.ls), attn = Tensor.from(d, t.attn, t.as);
      value.requiresGrad = true;
      const y = msDeformAttn3d(value, shapes, loc, attn);
      expect(y.shape).toEqual([2, Lq, 3 * Dh]);
      expectClose(await y.read(), deformRef(t.value, t.vs, shapes, t.loc, Lq, nP, t.attn), 1e-5, `y (Dh ${Dh})`);
      backward(y, [Tensor.from(d, t.dy, y.shape)]);
      const gv = finiteDiff(t.value, (v) => deformRef(v, t.vs, shapes, t.loc, Lq, nP, t.attn), t.dy);
      expectClose(await value.grad!.read(), gv, 1e-5, `grad value (Dh ${Dh})`);
    }
  });
  it("three levels, two heads: forward and all three gradients (finite differences)", async () => {
    const d = dev();
    const shapes: SpatialShape3d[] = [[3, 4, 2], [2, 2, 3], [1, 1, 1]];
    const Lq = 3, nP = 3;
    const t = deformInputs(4, 2, shapes, 2, 5, Lq, nP);
    const value = Tensor.from(d, t.value, t.vs), loc = Tensor.from(d, t.loc, t.ls), attn = Tensor.from(d, t.attn, t.as);
    value.requiresGrad = loc.requiresGrad = attn.requiresGrad = true;
    const y = msDeformAttn3d(value, shapes, loc, attn);
    expect(y.shape).toEqual([2, Lq, 10]);
    expectClose(await y.read(), deformRef(t.value, t.vs, shapes, t.loc, Lq, nP, t.attn), 1e-5, "y");
    backward(y, [Tensor.from(d, t.dy, y.shape)]);
    const f = (v: number[], l: number[], a: number[]) => deformRef(v, t.vs, shapes, l, Lq, nP, a);
    expectClose(await value.grad!.read(), finiteDiff(t.value, (p) => f(p, t.loc, t.attn), t.dy), 1e-5, "grad value");
    expectClose(await loc.grad!.read(), finiteDiff(t.loc, (p) => f(t.value, p, t.attn), t.dy), 1e-4, "grad loc");
    expectClose(await attn.grad!.read(), finiteDiff(t.attn, (p) => f(t.value, t.loc, p), t.dy), 1e-5, "grad attn");
  });

  it("many colliding samples over a large value (multi-pass sort, two-level scan): analytic grad value, bitwise deterministic", async () => {
    const d = dev();
    // 67200 samples = 67200 sort entries, one per sample (66 sort blocks: 1056 histogram counts
    // → 2 scan levels); 2 * (11*21*21 + 4*4*4) * 2 padded base-cell keys need 15 key bits → 4
    // radix passes. Locations cluster in a corner so hundreds of samples hit the same voxels.
    const shapes: SpatialShape3d[] = [[10, 20, 20], [3, 3, 3]];
    const Lq = 4200, nP = 2, nH = 2, Dh = 3, N = 2;
    const t = deformInputs(5, N, shapes, nH, Dh, Lq, nP, [0, 0.2]);
    const S = 4027;
    // analytic float64 reference: scatter every sample's weighted dy onto its 8 corners
    const ref = new Array<number>(N * S * nH * Dh).fill(0);
    const starts = levelStartIndex(shapes);
    for (let s = 0; s < t.attn.length; s++) {
      const l = Math.floor(s / nP) % 2, qh = Math.floor(s / (nP * 2)), h = qh % nH, n = Math.floor(qh / nH / Lq);
      const [D, H, W] = shapes[l]!;
      const px = t.loc[3 * s]! * W - 0.5, py = t.loc[3 * s + 1]! * H - 0.5, pz = t.loc[3 * s + 2]! * D - 0.5;
      const x0 = Math.floor(px), y0 = Math.floor(py), z0 = Math.floor(pz);
      for (let k = 0; k < 8; k++) {
        const x = x0 + (k & 1), y = y0 + ((k >> 1) & 1), z = z0 + (k >> 2);
        if (x < 0 || y < 0 || z < 0 || x >= W || y >= H || z >= D) continue;
        const w = (k & 1 ? px - x0 : 1 - px + x0) * ((k >> 1) & 1 ? py - y0 : 1 - py + y0) * (k >> 2 ? pz - z0 : 1 - pz + z0);
        const row = (n * S + starts[l]! + (z * H + y) * W + x) * nH + h;
        for (let c = 0; c < Dh; c++) ref[row * Dh + c]! += t.attn[s]! * w * t.dy[qh * Dh + c]!;
      }
    }
    const run = async () =>
      tidy(d, () => {
        const value = Tensor.from(d, t.value, t.vs);
        value.requiresGrad = true;
        const y = msDeformAttn3d(value, shapes, Tensor.from(d, t.loc, t.ls), Tensor.from(d, t.attn, t.as));
        backward(y, [Tensor.from(d, t.dy, y.shape)]);
        return value.grad!;
      }).read();
    const g1 = await run();
    expectClose(g1, ref, 1e-5, "grad value");
    const g2 = await run();
    expect(Buffer.from(g2.buffer).equals(Buffer.from(g1.buffer))).toBe(true);
  });

  it("forward + backward return every temporary to the pool", async () => {
    const d = dev();
    const shapes: SpatialShape3d[] = [[2, 3, 2], [1, 2, 2]];
    const t = deformInputs(6, 1, shapes, 2, 4, 5, 2);
    const step = () => {
      const value = Tensor.from(d, t.value, t.vs), loc = Tensor.from(d, t.loc, t.ls), attn = Tensor.from(d, t.attn, t.as);
      value.requiresGrad = loc.requiresGrad = attn.requiresGrad = true;
      const x = Tensor.from(d, t.value.slice(0, 48), [1, 2, 2, 3, 4]), grid = Tensor.from(d, t.loc.slice(0, 18).map((v) => 2 * v - 1), [1, 1, 2, 3, 3]);
      x.requiresGrad = grid.requiresGrad = true;
      const y = msDeformAttn3d(value, shapes, loc, attn);
      const z = gridSample3d(x, grid);
      const seeds = [Tensor.from(d, t.dy, y.shape), Tensor.from(d, new Array(z.size).fill(1), z.shape)];
      backward([y, z], seeds);
      for (const g of [value, loc, attn, x, grid]) g.grad!.dispose();
      for (const g of [value, loc, attn, x, grid, y, z, ...seeds]) g.dispose();
    };
    step();
    await d.flush();
    const inUse = d.pool.inUseBytes;
    const created = d.pool.buffersCreated;
    step();
    step();
    await d.flush();
    expect(d.pool.inUseBytes).toBe(inUse);
    expect(d.pool.buffersCreated).toBe(created);
  });
});

describe("attention with a lowered workgroup limit (dispatches split over x and y)", () => {
  const dev = useDevice({ limits: { maxWorkgroupsPerDim: 3 } });
  it("grid_sample3d forward and backward", () => checkGridSample(dev(), [1, 2, 3, 4, 5], [1, 2, 4, 5, 3], false, 7));
  it("ms_deform_attn3d forward and grad value (400 samples: 7 per-sample workgroups)", async () => {
    const d = dev();
    const shapes: SpatialShape3d[] = [[2, 2, 3], [1, 2, 2]];
    const Lq = 25, nP = 4;
    const t = deformInputs(8, 1, shapes, 2, 4, Lq, nP);
    const value = Tensor.from(d, t.value, t.vs);
    value.requiresGrad = true;
    const y = msDeformAttn3d(value, shapes, Tensor.from(d, t.loc, t.ls), Tensor.from(d, t.attn, t.as));
    expectClose(await y.read(), deformRef(t.value, t.vs, shapes, t.loc, Lq, nP, t.attn), 1e-5, "y");
    backward(y, [Tensor.from(d, t.dy, y.shape)]);
    expectClose(await value.grad!.read(), finiteDiff(t.value, (p) => deformRef(p, t.vs, shapes, t.loc, Lq, nP, t.attn), t.dy), 1e-5, "grad value");
  });
});

describe("attention input validation", () => {
  const dev = useDevice();
  const f = (d: Device, shape: number[], dtype: "f32" | "i32" = "f32") => Tensor.from(d, new Array(shape.reduce((a, b) => a * b, 1)).fill(0), shape, dtype);

  it("grid_sample3d: rank, grid last dim, batch, dtype, unsupported options", () => {
    const d = dev();
    const x = f(d, [1, 2, 3, 3, 3]), grid = f(d, [1, 2, 2, 2, 3]);
    expect(() => gridSample3d(f(d, [2, 3, 3, 3]), grid)).toThrow(/grid_sample3d: 'x' must have rank 5, got \[2, 3, 3, 3\]/);
    expect(() => gridSample3d(x, f(d, [1, 2, 2, 3]))).toThrow(/'grid' must have rank 5/);
    expect(() => gridSample3d(x, f(d, [1, 2, 2, 2, 2]))).toThrow(/'grid' must have last dimension 3.*\[1, 2, 2, 2, 2\]/);
    expect(() => gridSample3d(x, f(d, [2, 2, 2, 2, 3]))).toThrow(/'grid' batch 2 does not match 'x' batch 1/);
    expect(() => gridSample3d(x, f(d, [1, 2, 2, 2, 3], "i32"))).toThrow(/'grid' must be f32, got i32/);
    expect(() => gridSample3d(x, grid, { paddingMode: "border" as any })).toThrow(/padding_mode 'border' is not supported/);
    expect(() => gridSample3d(x, grid, { mode: "nearest" as any })).toThrow(PulmoError);
  });

  it("ms_deform_attn3d: S against spatial_shapes, levels, shapes, ranks, dtype", () => {
    const d = dev();
    const shapes: SpatialShape3d[] = [[2, 2, 2], [1, 1, 2]];
    const value = f(d, [1, 10, 2, 3]), loc = f(d, [1, 4, 2, 2, 3, 3]), attn = f(d, [1, 4, 2, 2, 3]);
    expect(() => msDeformAttn3d(value, shapes, loc, attn)).not.toThrow();
    expect(() => msDeformAttn3d(f(d, [1, 11, 2, 3]), shapes, loc, attn)).toThrow(/'value' has S=11 but 'spatial_shapes' .* sum to 10 voxels/);
    expect(() => msDeformAttn3d(value, [[2, 2, 2]], loc, attn)).toThrow(/'sampling_locations' has 2 levels but 'spatial_shapes' lists 1/);
    expect(() => msDeformAttn3d(value, shapes, loc, f(d, [1, 4, 2, 2, 2]))).toThrow(/'attention_weights' must be \[1, 4, 2, 2, 3\]/);
    expect(() => msDeformAttn3d(value, shapes, f(d, [1, 4, 3, 2, 3, 3]), f(d, [1, 4, 3, 2, 3]))).toThrow(/nH=2/);
    expect(() => msDeformAttn3d(value, shapes, f(d, [1, 4, 2, 2, 3, 2]), attn)).toThrow(/last dimension 3/);
    expect(() => msDeformAttn3d(f(d, [10, 2, 3]), shapes, loc, attn)).toThrow(/'value' must have rank 4, got \[10, 2, 3\]/);
    expect(() => msDeformAttn3d(value, shapes, loc, f(d, [1, 4, 2, 2, 3], "i32"))).toThrow(/'attention_weights' must be f32, got i32/);
    expect(() => msDeformAttn3d(value, [[2, 2, 2], [1, 0, 2]] as any, loc, attn)).toThrow(/\[D, H, W\] of positive integers/);
    expect(() => msDeformAttn3d(value, [], loc, attn)).toThrow(PulmoError);
  });

  it("levelStartIndex", () => {
    expect(levelStartIndex([[4, 5, 6], [2, 3, 3], [1, 1, 1]])).toEqual([0, 120, 138]);
    expect(() => levelStartIndex([[4, 5]] as any)).toThrow(PulmoError);
  });
});

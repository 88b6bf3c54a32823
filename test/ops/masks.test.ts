import { describe, expect, it } from "vitest";
import { goldenSuite } from "../helpers.ts";
import {
  connectedComponents,
  dilateSlicesDisk,
  diskFootprint,
  distanceTransform,
  erode6,
  expandMargin,
  maskMetrics,
  percentileSorted,
  squaredDistanceTransform,
  surface,
  type Shape3,
  type Spacing3,
  type Volume,
} from "../../src/pipeline/masks/index.ts";
import { PulmoError } from "../../src/runtime/errors.ts";
import { rng } from "../random.ts";

describe("golden", () => {
  goldenSuite(["metrics", "expand_margin", "dilate_slices_disk", "connected_components"]);
});

function randomMask(shape: Shape3, density: number, seed: number): { data: Uint8Array; shape: Shape3 } {
  const r = rng(seed);
  const n = shape[0] * shape[1] * shape[2];
  return { data: Uint8Array.from({ length: n }, () => (r() < density ? 1 : 0)), shape };
}

function zeros(shape: Shape3): Uint8Array {
  return new Uint8Array(shape[0] * shape[1] * shape[2]);
}

function withVoxels(shape: Shape3, voxels: [number, number, number][]): Volume {
  const data = zeros(shape);
  for (const [z, y, x] of voxels) data[(z * shape[1] + y) * shape[2] + x] = 1;
  return { data, shape };
}

const coords = (shape: Shape3, i: number): [number, number, number] => {
  const x = i % shape[2];
  const y = Math.floor(i / shape[2]) % shape[1];
  const z = Math.floor(i / (shape[1] * shape[2]));
  return [z, y, x];
};

/** Brute force: min over every site of the squared distance, in the same D, H, W summation order. */
function bruteSquaredEdt(v: Volume, spacing: Spacing3, axes = [true, true, true]): Float64Array {
  const n = v.data.length;
  const out = new Float64Array(n).fill(Infinity);
  const sites: number[] = [];
  for (let i = 0; i < n; i++) if (v.data[i]) sites.push(i);
  for (let i = 0; i < n; i++) {
    const a = coords(v.shape, i);
    for (const j of sites) {
      const b = coords(v.shape, j);
      if ((!axes[0] && a[0] !== b[0]) || (!axes[1] && a[1] !== b[1]) || (!axes[2] && a[2] !== b[2])) continue;
      const t0 = (a[0] - b[0]) * spacing[0],
        t1 = (a[1] - b[1]) * spacing[1],
        t2 = (a[2] - b[2]) * spacing[2];
      out[i] = Math.min(out[i]!, t0 * t0 + t1 * t1 + t2 * t2);
    }
  }
  return out;
}

function expectClose(actual: Float64Array, expected: Float64Array): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!,
      e = expected[i]!;
    if (e === Infinity) expect(a, `index ${i}`).toBe(Infinity);
    else expect(Math.abs(a - e), `index ${i}: ${a} vs ${e}`).toBeLessThanOrEqual(1e-12 * Math.max(1, e));
  }
}

const count = (m: { data: ArrayLike<number> }) => Array.from(m.data).reduce((a, b) => a + (b ? 1 : 0), 0);

describe("distance transform", () => {
  it("matches brute force on random volumes with anisotropic spacing", () => {
    const cases: [Shape3, Spacing3, number][] = [
      [[5, 7, 6], [2.5, 0.7, 1.3], 0.1],
      [[9, 4, 11], [0.8, 1.9, 0.45], 0.03],
      [[3, 12, 10], [3, 1, 1], 0.25],
      [[1, 13, 1], [1, 0.6, 1], 0.15],
      [[6, 6, 6], [1, 1, 1], 0.01],
    ];
    cases.forEach(([shape, sp, density], k) => {
      const v = randomMask(shape, density, 100 + k);
      expectClose(squaredDistanceTransform(v, sp), bruteSquaredEdt(v, sp));
    });
  });

  it("is bit-exact against the brute force on integer-valued squared distances", () => {
    const v = randomMask([7, 8, 9], 0.05, 7);
    expect(Array.from(squaredDistanceTransform(v, [2.5, 1, 1]))).toEqual(Array.from(bruteSquaredEdt(v, [2.5, 1, 1])));
  });

  it("restricted to H and W is a per-slice 2D transform", () => {
    const v = randomMask([4, 9, 8], 0.04, 3);
    v.data[0] = 0;
    expectClose(squaredDistanceTransform(v, [1, 0.5, 2], [false, true, true]), bruteSquaredEdt(v, [1, 0.5, 2], [false, true, true]));
  });

  it("gives Infinity everywhere for an empty mask and 0 on the sites", () => {
    expect([...squaredDistanceTransform({ data: zeros([2, 3, 4]), shape: [2, 3, 4] }, [1, 1, 1])].every((d) => d === Infinity)).toBe(true);
    const v = withVoxels([3, 3, 3], [[1, 1, 1]]);
    const d = distanceTransform(v, [2, 1, 1]);
    expect(d[13]).toBe(0);
    expect(d[0]).toBeCloseTo(Math.sqrt(4 + 1 + 1), 14);
    expect(d[4]).toBe(2); // (0, 1, 1): one slice away
  });

  it("rejects bad shapes and spacings", () => {
    expect(() => squaredDistanceTransform({ data: zeros([2, 2, 2]), shape: [2, 2, 3] }, [1, 1, 1])).toThrow(/8 values for shape \[2, 2, 3\]/);
    expect(() => squaredDistanceTransform({ data: zeros([2, 2, 2]), shape: [2, 2, 2] }, [1, 0, 1])).toThrow(PulmoError);
    expect(() => squaredDistanceTransform({ data: zeros([2, 2, 2]), shape: [2, 2, 2] }, [1, 1] as never)).toThrow(/spacing/);
  });
});

describe("metrics", () => {
  it("computes numpy's linear percentile", () => {
    expect(percentileSorted([1, 2, 3, 4, 10], 95)).toBe(8.799999999999999);
    expect(percentileSorted([0.5, 1.5], 95)).toBe(1.45);
    expect(percentileSorted([3], 95)).toBe(3);
    expect(percentileSorted([0, 1, Math.SQRT2, 2, Math.sqrt(5), 3], 95)).toBe(2.8090169943749475);
    expect(percentileSorted([Infinity, Infinity], 95)).toBe(Infinity);
    expect(percentileSorted([], 95)).toBeNaN();
  });

  it("single voxels: identical and apart", () => {
    const shape: Shape3 = [4, 5, 6];
    const a = withVoxels(shape, [[0, 0, 0]]);
    const same = maskMetrics(a, a, [2, 1, 1]);
    expect(same).toMatchObject({ dice: 1, jaccard: 1, precision: 1, recall: 1, fpr: 0, hausdorff: 0, hausdorff95: 0 });
    expect(same.meanSurfaceDistance).toBe(0);
    expect(same.medianSurfaceDistance).toBe(0);
    const b = withVoxels(shape, [[2, 3, 4]]);
    const apart = maskMetrics(a, b, [2, 1, 1]);
    const d = Math.sqrt(16 + 9 + 16);
    expect(apart).toMatchObject({ dice: 0, jaccard: 0, precision: 0, recall: 0, fpr: 1 / 119 });
    for (const k of ["hausdorff", "hausdorff95", "meanSurfaceDistance", "medianSurfaceDistance"] as const) expect(apart[k]).toBe(d);
  });

  it("measures to the other mask's surface, not to the mask", () => {
    // target: a 5x5x5 cube; pred: its centre voxel. The centre is 2 voxels from the cube's surface.
    const shape: Shape3 = [7, 7, 7];
    const cube: [number, number, number][] = [];
    for (let z = 1; z < 6; z++) for (let y = 1; y < 6; y++) for (let x = 1; x < 6; x++) cube.push([z, y, x]);
    const m = maskMetrics(withVoxels(shape, [[3, 3, 3]]), withVoxels(shape, cube), [1, 1, 1]);
    expect(m.precision).toBe(1);
    expect(m.recall).toBe(1 / 125);
    expect(m.hausdorff).toBe(Math.sqrt(12)); // a cube corner to the centre
    expect(Math.min(m.medianSurfaceDistance, m.meanSurfaceDistance)).toBeGreaterThan(0);
  });

  it("empty masks: dice 1 for both empty, NaN/Infinity distances", () => {
    const shape: Shape3 = [3, 4, 5];
    const empty = { data: zeros(shape), shape };
    const both = maskMetrics(empty, empty, [1, 1, 1]);
    expect(both.dice).toBe(1);
    expect(both.jaccard).toBe(1);
    expect(both.precision).toBeNaN();
    expect(both.recall).toBeNaN();
    expect(both.fpr).toBe(0);
    for (const k of ["hausdorff", "hausdorff95", "meanSurfaceDistance", "medianSurfaceDistance"] as const) expect(both[k]).toBeNaN();

    const one = withVoxels(shape, [[1, 1, 1], [1, 1, 2]]);
    for (const [p, t] of [
      [empty, one],
      [one, empty],
    ]) {
      const m = maskMetrics(p!, t!, [1, 1, 1]);
      expect(m.dice).toBe(0);
      expect(m.jaccard).toBe(0);
      for (const k of ["hausdorff", "hausdorff95", "meanSurfaceDistance", "medianSurfaceDistance"] as const) expect(m[k]).toBe(Infinity);
    }
    const m = maskMetrics(empty, one, [1, 1, 1]);
    expect(m.precision).toBeNaN();
    expect(m.recall).toBe(0);
    const full = { data: new Uint8Array(60).fill(1), shape };
    expect(maskMetrics(full, full, [1, 1, 1]).fpr).toBeNaN();
  });

  it("surface of a mask touching the volume border keeps the border voxels", () => {
    const shape: Shape3 = [3, 4, 5];
    const full = { data: new Uint8Array(60).fill(1), shape };
    expect(count(erode6(full))).toBe(1 * 2 * 3);
    const s = surface(full);
    expect(count(s)).toBe(60 - 6);
    expect(s.data[0]).toBe(1);
    expect(s.data[(1 * 4 + 1) * 5 + 1]).toBe(0);
    const m = maskMetrics(full, full, [1, 1, 1]);
    expect(m.hausdorff).toBe(0);
    expect(m.dice).toBe(1);
  });
});

describe("expandMargin", () => {
  it("matches a brute-force ellipsoid expansion, inclusive, minus avoid", () => {
    const shape: Shape3 = [6, 9, 8];
    const sp: Spacing3 = [2.5, 1, 1];
    const mask = randomMask(shape, 0.02, 11);
    const avoid = randomMask(shape, 0.2, 12);
    const d2 = bruteSquaredEdt(mask, sp);
    for (const margin of [0, 1, 2.5, 3, 5]) {
      const y = expandMargin(mask, avoid, sp, margin);
      const want = Array.from(d2, (d, i) => (Math.sqrt(d) <= margin && !avoid.data[i] ? 1 : 0));
      expect(Array.from(y.data), `margin ${margin}`).toEqual(want);
    }
  });

  it("single voxel: every voxel whose offset is within the margin, boundary included", () => {
    const shape: Shape3 = [9, 9, 9];
    const y = expandMargin(withVoxels(shape, [[4, 4, 4]]), null, [2, 1, 1], 4);
    let want = 0;
    for (let z = -4; z <= 4; z++) for (let yy = -4; yy <= 4; yy++) for (let x = -4; x <= 4; x++) if (4 * z * z + yy * yy + x * x <= 16) want++;
    expect(count(y)).toBe(want);
    expect(y.data[(4 * 9 + 4) * 9 + 0]).toBe(1); // exactly 4 mm in W
    expect(y.data[(2 * 9 + 4) * 9 + 4]).toBe(1); // exactly 4 mm in D (2 slices of 2 mm)
  });

  it("empty mask stays empty; avoid covering the mask removes it", () => {
    const shape: Shape3 = [3, 3, 3];
    expect(count(expandMargin({ data: zeros(shape), shape }, null, [1, 1, 1], 10))).toBe(0);
    const m = withVoxels(shape, [[0, 0, 0]]);
    expect(count(expandMargin(m, m, [1, 1, 1], 0))).toBe(0);
    expect(count(expandMargin(m, null, [1, 1, 1], 100))).toBe(27);
  });

  it("rejects a negative margin and mismatched avoid", () => {
    const shape: Shape3 = [2, 2, 2];
    const m = { data: zeros(shape), shape };
    expect(() => expandMargin(m, null, [1, 1, 1], -1)).toThrow(/margin/);
    expect(() => expandMargin(m, { data: zeros([2, 2, 3]), shape: [2, 2, 3] }, [1, 1, 1], 1)).toThrow(/does not match/);
  });
});

describe("dilateSlicesDisk", () => {
  function bruteDilate(v: Volume, diameter: number): number[] {
    const { radius: r, size, data: fp } = diskFootprint(diameter);
    const [D, H, W] = v.shape;
    const out = new Array<number>(D * H * W).fill(0);
    for (let z = 0; z < D; z++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          if (!v.data[(z * H + y) * W + x]) continue;
          for (let dy = -r; dy <= r; dy++)
            for (let dx = -r; dx <= r; dx++) {
              const yy = y + dy,
                xx = x + dx;
              if (fp[(dy + r) * size + dx + r] && yy >= 0 && yy < H && xx >= 0 && xx < W) out[(z * H + yy) * W + xx] = 1;
            }
        }
    return out;
  }

  it("uses skimage's disk(diameter // 2)", () => {
    const fp = diskFootprint(7);
    expect(fp.size).toBe(7);
    expect(count(fp)).toBe(29);
    const rows = Array.from({ length: 7 }, (_, y) => Array.from(fp.data.subarray(y * 7, y * 7 + 7)).join(""));
    expect(rows).toEqual(["0001000", "0111110", "0111110", "1111111", "0111110", "0111110", "0001000"]);
    expect(count(diskFootprint(1))).toBe(1);
    expect(count(diskFootprint(3))).toBe(5);
    expect(diskFootprint(6).size).toBe(7);
  });

  it("matches a brute-force footprint dilation, clipped at the border, no growth along D", () => {
    const v = randomMask([4, 11, 13], 0.03, 5);
    v.data[0] = 1; // a corner voxel
    for (const d of [0, 1, 2, 3, 5, 7, 8, 15]) expect(Array.from(dilateSlicesDisk(v, d).data), `diameter ${d}`).toEqual(bruteDilate(v, d));
  });

  it("single voxel and empty mask", () => {
    const shape: Shape3 = [3, 9, 9];
    const y = dilateSlicesDisk(withVoxels(shape, [[1, 4, 4]]), 7);
    expect(count(y)).toBe(29);
    expect(count({ data: y.data.subarray(0, 81) })).toBe(0);
    expect(count(dilateSlicesDisk({ data: zeros(shape), shape }, 7))).toBe(0);
    expect(() => dilateSlicesDisk({ data: zeros(shape), shape }, 2.5)).toThrow(/diameter/);
  });
});

describe("connectedComponents", () => {
  it("distinguishes 6, 18 and 26 connectivity", () => {
    const shape: Shape3 = [2, 2, 2];
    const edge = withVoxels(shape, [[0, 0, 0], [0, 1, 1]]);
    const corner = withVoxels(shape, [[0, 0, 0], [1, 1, 1]]);
    expect([6, 18, 26].map((c) => connectedComponents(edge, c as 6 | 18 | 26).count)).toEqual([2, 1, 1]);
    expect([6, 18, 26].map((c) => connectedComponents(corner, c as 6 | 18 | 26).count)).toEqual([2, 2, 1]);
    expect(() => connectedComponents(edge, 8 as never)).toThrow(/6, 18 or 26/);
  });

  it("does not wrap around the volume border", () => {
    // (0, 0, W-1) and (0, 1, 0) are neighbours in memory, not in space; likewise across slices.
    const rows = connectedComponents(withVoxels([1, 3, 4], [[0, 0, 3], [0, 1, 0]]));
    expect(rows.count).toBe(2);
    const slices = connectedComponents(withVoxels([2, 3, 4], [[0, 2, 3], [1, 0, 0]]));
    expect(slices.count).toBe(2);
    expect(slices.sizes).toEqual([1, 1]);
  });

  it("labels in raster order, largest with ties to the first", () => {
    const shape: Shape3 = [1, 5, 5];
    const v = withVoxels(shape, [[0, 0, 3], [0, 0, 4], [0, 3, 0], [0, 4, 0], [0, 4, 4]]);
    const c = connectedComponents(v);
    expect(c.count).toBe(3);
    expect(c.sizes).toEqual([2, 2, 1]);
    expect(c.labels[3]).toBe(1);
    expect(c.labels[15]).toBe(2);
    expect(c.largestLabel).toBe(1);
    expect(Array.from(c.largest.data).flatMap((b, i) => (b ? [i] : []))).toEqual([3, 4]);
  });

  it("single voxel, empty and full masks", () => {
    const shape: Shape3 = [3, 3, 3];
    const one = connectedComponents(withVoxels(shape, [[2, 2, 2]]));
    expect(one.count).toBe(1);
    expect(one.largest.data[26]).toBe(1);
    const none = connectedComponents({ data: zeros(shape), shape });
    expect(none.count).toBe(0);
    expect(none.largestLabel).toBe(0);
    expect(count(none.largest)).toBe(0);
    const full = connectedComponents({ data: new Float32Array(27).fill(1), shape }, 6);
    expect(full.count).toBe(1);
    expect(full.sizes).toEqual([27]);
  });

  it("agrees with a union-find reference on random masks", () => {
    const shape: Shape3 = [6, 7, 8];
    for (const conn of [6, 18, 26] as const) {
      const v = randomMask(shape, 0.3, conn);
      const n = v.data.length;
      const parent = Int32Array.from({ length: n }, (_, i) => i);
      const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i]!)));
      for (let i = 0; i < n; i++) {
        if (!v.data[i]) continue;
        const a = coords(shape, i);
        for (let j = i + 1; j < n; j++) {
          if (!v.data[j]) continue;
          const b = coords(shape, j);
          const dz = Math.abs(a[0] - b[0]), dy = Math.abs(a[1] - b[1]), dx = Math.abs(a[2] - b[2]);
          if (Math.max(dz, dy, dx) === 1 && dz + dy + dx <= (conn === 6 ? 1 : conn === 18 ? 2 : 3)) parent[find(i)] = find(j);
        }
      }
      const roots = new Set<number>();
      for (let i = 0; i < n; i++) if (v.data[i]) roots.add(find(i));
      const c = connectedComponents(v, conn);
      expect(c.count, `connectivity ${conn}`).toBe(roots.size);
      for (let i = 0; i < n; i++)
        for (let j = i + 1; j < n; j++) if (v.data[i] && v.data[j] && (find(i) === find(j)) !== (c.labels[i] === c.labels[j])) throw new Error(`voxels ${i}, ${j} disagree`);
    }
  });
});

import { describe, expect, it } from "vitest";
import {
  EMPTY_MASK_CONVENTIONS, GridMismatchError, checkSameGrid, croppedMetrics, evaluateCase, evaluationJson, evaluationRows, formatCsv,
  formatTable, summarize,
} from "../../src/pipeline/evaluate.ts";
import { maskMetrics, type Shape3 } from "../../src/pipeline/masks/index.ts";
import { rng } from "../random.ts";

const SHAPE: Shape3 = [6, 12, 14];
const SP = [2.5, 0.9, 0.8] as const;
const N = SHAPE[0] * SHAPE[1] * SHAPE[2];
const idx = (z: number, y: number, x: number) => (z * SHAPE[1] + y) * SHAPE[2] + x;

function box(z0: number, z1: number, y0: number, y1: number, x0: number, x1: number, into: Uint8Array = new Uint8Array(N)): Uint8Array {
  for (let z = z0; z < z1; z++) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) into[idx(z, y, x)] = 1;
  return into;
}
const g = (data: Uint8Array, spacing: readonly number[] = SP) => ({ data, shape: SHAPE, spacing });

describe("croppedMetrics", () => {
  it("equals maskMetrics on the whole volume, border-touching and blobby masks included", () => {
    const r = rng(5);
    for (let k = 0; k < 12; k++) {
      const a = new Uint8Array(N), b = new Uint8Array(N);
      const p = k < 6 ? 0.02 : 0.3; // sparse and dense; dense ones touch the border
      // sparse ones stay inside z 1..4, y 2..9, x 3..10 so the crop is strictly inside the volume
      for (let z = 0; z < SHAPE[0]; z++)
        for (let y = 0; y < SHAPE[1]; y++)
          for (let x = 0; x < SHAPE[2]; x++) {
            const inside = z >= 1 && z < 5 && y >= 2 && y < 10 && x >= 3 && x < 11;
            if (k >= 6 || inside) {
              a[idx(z, y, x)] = r() < p * (k < 6 ? 8 : 1) ? 1 : 0;
              b[idx(z, y, x)] = r() < p * (k < 6 ? 8 : 1) ? 1 : 0;
            }
          }
      box(2, 4, 3 + (k % 3), 8, 4, 9, a);
      const full = maskMetrics({ data: a, shape: SHAPE }, { data: b, shape: SHAPE }, SP);
      expect(croppedMetrics({ data: a, shape: SHAPE }, { data: b, shape: SHAPE }, SP)).toEqual(full);
    }
  });
});

describe("evaluateCase", () => {
  it("volumes, volume difference, OAR overlap and the golden metrics with spacing", () => {
    const ref = box(1, 5, 2, 8, 2, 8); // 4·6·6 = 144 voxels
    const pred = box(1, 5, 2, 8, 3, 9); // shifted one column: 120 shared
    const heart = box(0, 6, 0, 12, 8, 14); // columns 8..13: pred has 4·6·1 = 24 voxels there, ref 0
    const e = evaluateCase(g(pred), g(ref), { oars: { heart: g(heart) } });
    const cc = (2.5 * 0.9 * 0.8) / 1000;
    expect(e.dice).toBeCloseTo((2 * 120) / 288, 12);
    expect(e.referenceCc).toBeCloseTo(144 * cc, 12);
    expect(e.volumeDifferenceCc).toBeCloseTo(0, 12);
    expect(e.volumeDifferencePercent).toBe(0);
    expect(e.oarOverlap.heart!.predictionCc).toBeCloseTo(24 * cc, 12);
    expect(e.oarOverlap.heart!.referenceCc).toBe(0);
    expect(e.hausdorff).toBeCloseTo(0.8, 5); // one column of 0.8 mm
    expect(e.empty).toBeNull();
    expect(e.tumours).toBeUndefined();
    const bigger = evaluateCase(g(box(1, 5, 2, 8, 2, 9)), g(ref)); // 168 vs 144 voxels
    expect(bigger.volumeDifferencePercent).toBeCloseTo((100 * 24) / 144, 10);
  });

  it("per-tumour metrics: prediction components matched to reference components by overlap", () => {
    const ref = box(1, 4, 1, 4, 1, 4); // tumour 1: 27 voxels
    box(1, 4, 7, 11, 8, 12, ref); // tumour 2: 48 voxels
    const pred = box(1, 4, 1, 4, 1, 4); // exact on tumour 1
    box(1, 4, 7, 11, 9, 12, pred); // 36 of tumour 2
    box(5, 6, 0, 1, 13, 14, pred); // a false-positive voxel far from both
    const e = evaluateCase(g(pred), g(ref));
    expect(e.tumours).toHaveLength(2);
    const [t1, t2] = e.tumours!;
    expect(t1!.dice).toBe(1);
    expect(t1!.hausdorff95).toBe(0);
    expect(t1!.predictionComponents).toBe(1);
    expect(t2!.dice).toBeCloseTo((2 * 36) / (36 + 48), 12);
    expect(t2!.referenceCc).toBeCloseTo((48 * 2.5 * 0.9 * 0.8) / 1000, 12);
    expect(e.unmatchedPredictionComponents).toBe(1);
    // the whole-case metrics still see the stray voxel
    expect(e.dice).toBeCloseTo((2 * 63) / (64 + 75), 12);
    const rows = evaluationRows([{ name: "c1", evaluation: e }]);
    expect(rows.map((r) => r[0])).toEqual(["case", "c1", "c1#1", "c1#2"]);
  });

  it("MONAI's empty-mask conventions, printed as n/a and inf", () => {
    const empty = new Uint8Array(N);
    const both = evaluateCase(g(empty), g(new Uint8Array(N)));
    expect(both.dice).toBe(1);
    expect(both.hausdorff95).toBeNaN();
    expect(both.empty).toBe("both empty");
    const predEmpty = evaluateCase(g(empty), g(box(1, 3, 1, 3, 1, 3)));
    expect(predEmpty.dice).toBe(0);
    expect(predEmpty.hausdorff).toBe(Infinity);
    expect(predEmpty.volumeDifferencePercent).toBe(-100);
    expect(predEmpty.empty).toBe("prediction empty");
    const refEmpty = evaluateCase(g(box(1, 3, 1, 3, 1, 3)), g(empty));
    expect(refEmpty.dice).toBe(0);
    expect(refEmpty.volumeDifferencePercent).toBeNaN();
    const rows = evaluationRows([{ name: "both", evaluation: both }, { name: "pe", evaluation: predEmpty }]);
    const table = formatTable(rows);
    expect(table).toMatch(/both .* n\/a .* both empty/);
    expect(table).toMatch(/pe .* inf .* prediction empty/);
    const json = JSON.parse(evaluationJson([{ name: "both", evaluation: both }, { name: "pe", evaluation: predEmpty }]));
    expect(json.conventions.emptyMasks).toBe(EMPTY_MASK_CONVENTIONS);
    expect(json.cases[0].hausdorff).toBeNull();
    expect(json.cases[1].hausdorff).toBe("inf");
    expect(json.summary.dice).toEqual({ n: 2, excluded: 0, mean: 0.5, median: 0.5, sd: Math.SQRT1_2 });
    expect(json.summary.hausdorff).toMatchObject({ n: 0, excluded: 2, mean: null });
  });

  it("different grids are a GridMismatchError naming shape, spacing or affine", () => {
    const m = box(1, 3, 1, 3, 1, 3);
    const other = { data: new Uint8Array(5 * 12 * 14), shape: [5, 12, 14] as Shape3, spacing: SP };
    expect(() => evaluateCase(other, g(m))).toThrow(GridMismatchError);
    expect(() => evaluateCase(other, g(m))).toThrow(/prediction has shape \[5, 12, 14\] but the reference \[6, 12, 14\]/);
    expect(() => evaluateCase(g(m, [2.5, 0.9, 0.9]), g(m))).toThrow(/spacing \[2.5, 0.9, 0.9\] mm but the reference \[2.5, 0.9, 0.8\]/);
    const aff = (t: number) => [[0.8, 0, 0, t], [0, 0.9, 0, 0], [0, 0, 2.5, 0], [0, 0, 0, 1]];
    expect(() => checkSameGrid({ ...g(m), affine: aff(0) }, { ...g(m), affine: aff(10) }, "the prediction")).toThrow(/different affines .*different origin/);
    expect(() => evaluateCase(g(m), g(m), { oars: { lung: other } })).toThrow(/OAR 'lung' has shape/);
  });
});

describe("summaries and tables", () => {
  it("mean, median and sample SD of the finite values", () => {
    expect(summarize([4, 1, 3, 2])).toEqual({ n: 4, excluded: 0, mean: 2.5, median: 2.5, sd: Math.sqrt(5 / 3) });
    expect(summarize([1, NaN, Infinity, 3, 2])).toEqual({ n: 3, excluded: 2, mean: 2, median: 2, sd: 1 });
    expect(summarize([7]).sd).toBeNaN();
    expect(summarize([]).mean).toBeNaN();
  });

  it("folder tables end with mean, median, SD (sample) and n rows; CSV quotes what needs it", () => {
    const ref = box(1, 5, 2, 8, 2, 8);
    const cases = [0, 1, 2].map((s) => ({ name: `case${s}`, evaluation: evaluateCase(g(box(1, 5, 2, 8, 2 + s, 8 + s)), g(ref)) }));
    const rows = evaluationRows(cases);
    expect(rows.slice(-4).map((r) => r[0])).toEqual(["mean", "median", "SD (sample)", "n (finite)"]);
    const dices = cases.map((c) => c.evaluation.dice);
    expect(Number(rows.at(-4)![1])).toBeCloseTo(dices.reduce((a, b) => a + b) / 3, 4);
    expect(formatCsv([["a,b", 'q"'], ["1", "2"]])).toBe('"a,b","q"""\n1,2\n');
  });
});

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readNifti } from "../../src/io/nifti.ts";
import { evaluateCase } from "../../src/pipeline/evaluate.ts";
import { expandMargin } from "../../src/pipeline/masks/index.ts";
import { listing, pulmo, useTmp, writeVolume } from "./helpers.ts";

const SHAPE: [number, number, number] = [6, 10, 12];
const N = 6 * 10 * 12;
const SP: [number, number, number] = [2.5, 0.9, 0.8];
function cube(z0: number, z1: number, y0: number, y1: number, x0: number, x1: number): Uint8Array {
  const m = new Uint8Array(N);
  for (let z = z0; z < z1; z++) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[(z * 10 + y) * 12 + x] = 1;
  return m;
}

describe("pulmo evaluate", () => {
  const tmp = useTmp("evaluate");

  it("one pair: table with the conventions on stdout, JSON and CSV files equal to evaluateCase", async () => {
    const d = join(tmp(), "one");
    mkdirSync(d);
    const ref = cube(1, 5, 2, 8, 2, 8), pred = cube(1, 5, 2, 8, 3, 9), heart = cube(0, 6, 0, 10, 8, 12);
    writeVolume(join(d, "ref.nii.gz"), ref, SHAPE, SP);
    writeVolume(join(d, "pred.nii"), pred, SHAPE, SP);
    writeVolume(join(d, "heart.nii.gz"), heart, SHAPE, SP);
    const r = await pulmo("evaluate", "--pred", join(d, "pred.nii"), "--ref", join(d, "ref.nii.gz"), "--oar", `heart=${join(d, "heart.nii.gz")}`, "--json", join(d, "m.json"), "--csv", join(d, "m.csv"));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Dice .* HD95 mm/);
    expect(r.out).toMatch(/pred∩heart cc/);
    expect(r.out).toMatch(/both empty → Dice 1/);
    const sp = SP.map(Math.fround); // as stored in the file
    const expected = evaluateCase({ data: pred, shape: SHAPE, spacing: sp }, { data: ref, shape: SHAPE, spacing: sp }, { oars: { heart: { data: heart, shape: SHAPE, spacing: sp } } });
    const json = JSON.parse(readFileSync(join(d, "m.json"), "utf8"));
    expect(json.cases[0].name).toBe("pred");
    expect(json.cases[0].dice).toBeCloseTo(expected.dice, 12);
    expect(json.cases[0].hausdorff95).toBeCloseTo(expected.hausdorff95, 10);
    expect(json.cases[0].oarOverlap.heart.predictionCc).toBeCloseTo(expected.oarOverlap.heart!.predictionCc, 12);
    const csv = readFileSync(join(d, "m.csv"), "utf8").trim().split("\n");
    expect(csv).toHaveLength(2);
    expect(Number(csv[1]!.split(",")[1])).toBeCloseTo(expected.dice, 4);
  });

  it("different grids: a clear error, exit 1, and no output file", async () => {
    const d = join(tmp(), "grid");
    mkdirSync(d);
    writeVolume(join(d, "ref.nii"), cube(1, 5, 2, 8, 2, 8), SHAPE, SP);
    writeVolume(join(d, "shape.nii"), new Uint8Array(5 * 10 * 12), [5, 10, 12], SP);
    writeVolume(join(d, "spacing.nii"), cube(1, 5, 2, 8, 2, 8), SHAPE, [3, 0.9, 0.8]);
    let r = await pulmo("evaluate", "--pred", join(d, "shape.nii"), "--ref", join(d, "ref.nii"), "--json", join(d, "x.json"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/prediction has shape \[5, 10, 12\] but the reference \[6, 10, 12\]/);
    r = await pulmo("evaluate", "--pred", join(d, "spacing.nii"), "--ref", join(d, "ref.nii"), "--csv", join(d, "x.csv"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/spacing \[3, 0.9, 0.8\] mm but the reference \[2.5, 0.9, 0.8\] mm/);
    expect(listing(d)).toEqual(["ref.nii", "shape.nii", "spacing.nii"]);
  });

  it("usage mistakes exit 2 and name the flag", async () => {
    expect((await pulmo("evaluate", "--pred", "a.nii")).err).toMatch(/--ref is required/);
    expect((await pulmo("evaluate")).code).toBe(2);
    const r = await pulmo("evaluate", "--pred", "a", "--ref", "b", "--oar", "heart");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--oar takes NAME=FILE, got "heart"/);
    expect((await pulmo("evaluate", "--pred", "a", "--pred-dir", "b")).err).toMatch(/not both/);
  });

  it("folder mode: cases matched by name, OARs inside each case folder, mean/median/SD rows, a missing case fails the run", async () => {
    const refDir = join(tmp(), "refs"), predDir = join(tmp(), "preds");
    mkdirSync(refDir);
    mkdirSync(predDir);
    const shifts = [0, 1, 2];
    shifts.forEach((s, k) => {
      const c = join(refDir, `case${k}`);
      mkdirSync(c);
      writeVolume(join(c, "gtv.nii.gz"), cube(1, 5, 2, 8, 2, 8), SHAPE, SP);
      writeVolume(join(c, "heart.nii.gz"), cube(0, 6, 0, 10, 9, 12), SHAPE, SP);
      writeVolume(join(predDir, `case${k}.nii.gz`), cube(1, 5, 2, 8, 2 + s, 8 + s), SHAPE, SP);
    });
    let r = await pulmo("evaluate", "--pred-dir", predDir, "--ref-dir", refDir, "--ref-file", "gtv.nii.gz", "--oar", "heart=heart.nii.gz", "--json", join(tmp(), "f.json"));
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    expect(lines.some((l) => l.startsWith("mean "))).toBe(true);
    expect(lines.some((l) => l.startsWith("SD (sample)"))).toBe(true);
    const json = JSON.parse(readFileSync(join(tmp(), "f.json"), "utf8"));
    const dices = json.cases.map((c: { dice: number }) => c.dice);
    expect(json.summary.dice.mean).toBeCloseTo(dices.reduce((a: number, b: number) => a + b) / 3, 12);
    expect(json.cases[2].oarOverlap.heart.predictionCc).toBeGreaterThan(0);
    mkdirSync(join(refDir, "case3"));
    writeVolume(join(refDir, "case3", "gtv.nii.gz"), cube(1, 5, 2, 8, 2, 8), SHAPE, SP);
    writeVolume(join(refDir, "case3", "heart.nii.gz"), cube(0, 6, 0, 10, 9, 12), SHAPE, SP);
    r = await pulmo("evaluate", "--pred-dir", predDir, "--ref-dir", refDir, "--ref-file", "gtv.nii.gz", "--oar", "heart=heart.nii.gz");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/FAILED case3: no prediction for this case/);
    expect(r.out).toMatch(/case2/); // the others are still reported
  });
});

describe("pulmo expand", () => {
  const tmp = useTmp("expand");

  it("writes expandMargin of the GTV minus the union of the avoidance masks, on the GTV's grid", async () => {
    const gtv = cube(2, 4, 4, 6, 4, 6), heart = cube(0, 6, 0, 10, 7, 12), spine = cube(0, 6, 8, 10, 0, 12);
    writeVolume(join(tmp(), "gtv.nii.gz"), gtv, SHAPE, SP);
    writeVolume(join(tmp(), "heart.nii"), heart, SHAPE, SP);
    writeVolume(join(tmp(), "spine.nii"), spine, SHAPE, SP);
    const out = join(tmp(), "out", "ctv.nii.gz");
    const r = await pulmo("expand", "--gtv", join(tmp(), "gtv.nii.gz"), "--margin-mm", "3", "--avoid", join(tmp(), "heart.nii"), "--avoid", join(tmp(), "spine.nii"), "--out", out);
    expect(r.code).toBe(0);
    const v = readNifti(readFileSync(out));
    expect(v.datatype).toBe("uint8");
    expect(v.shape).toEqual(SHAPE);
    const avoid = Uint8Array.from(heart, (h, i) => h | spine[i]!);
    const expected = expandMargin({ data: gtv, shape: SHAPE }, { data: avoid, shape: SHAPE }, SP.map(Math.fround) as typeof SP, 3).data;
    expect(Array.from(v.data)).toEqual(Array.from(expected));
    expect(r.out).toMatch(/cm³/);
  });

  it("an avoidance mask on another grid is an error and nothing is written", async () => {
    writeVolume(join(tmp(), "small.nii"), new Uint8Array(5 * 10 * 12), [5, 10, 12], SP);
    const out = join(tmp(), "bad.nii.gz");
    const r = await pulmo("expand", "--gtv", join(tmp(), "gtv.nii.gz"), "--margin-mm", "5", "--avoid", join(tmp(), "small.nii"), "--out", out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/avoidance mask .*small.nii has shape \[5, 10, 12\] but the GTV/);
    expect(existsSync(out)).toBe(false);
    expect((await pulmo("expand", "--gtv", "g", "--margin-mm", "-1", "--out", "o")).err).toMatch(/--margin-mm must be in \[0, ∞\]/);
  });
});

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildModel, nn, readNifti, segment, writeNifti, type SegmentationNet } from "../../src/node.ts";
import { readCtSeries, rasterizeRoi, writeCtSeries } from "../../src/io/dicom/index.ts";
import { presetFor, presetOptions } from "../../src/pipeline/presets.ts";
import { applyOverrides } from "../../src/cli/segment.ts";
import { bundleSegmentOptions, writeModelBundle } from "../../src/pipeline/bundle.ts";
import { useDevice } from "../helpers.ts";
import { listing, pulmo, useTmp, writeVolume } from "./helpers.ts";

/** shared/reference/models.py PRESETS["unet3d"]["tiny"]: 3 levels → sizes multiples of 4. */
const TINY = { enc: [[4, 6], [6, 10], [10, 16]], dec: [[10, 8], [6, 6]] };
const CONFIG = JSON.stringify(TINY);
const SHAPE: [number, number, number] = [8, 12, 12];
const N = 8 * 12 * 12;
const SP: [number, number, number] = [2.5, 0.9, 0.9];
const WINDOW = ["--patch", "8,8,8", "--overlap", "0.5"];

/** A CT in HU: air, a soft-tissue block and a bright "tumour". */
function ct(seed = 0): Float32Array {
  const v = new Float32Array(N).fill(-1000);
  for (let z = 1; z < 7; z++) for (let y = 2; y < 10; y++) for (let x = 2 + seed; x < 10; x++) v[(z * 12 + y) * 12 + x] = 40;
  for (let z = 3; z < 6; z++) for (let y = 4; y < 8; y++) for (let x = 5; x < 8; x++) v[(z * 12 + y) * 12 + x] = 300;
  return v;
}

describe("pulmo segment", () => {
  const dev = useDevice();
  const tmp = useTmp("segment");
  let net: SegmentationNet;
  let weights: string, otherWeights: string;

  beforeAll(async () => {
    nn.setInitSeed(4321);
    net = buildModel(dev(), "unet3d", TINY);
    weights = join(tmp(), "tiny.safetensors");
    writeFileSync(weights, await net.toSafetensors());
    const other = buildModel(dev(), "unet3d", { enc: [[4, 6], [6, 12], [12, 16]], dec: [[12, 8], [6, 6]] });
    otherWeights = join(tmp(), "other.safetensors");
    writeFileSync(otherWeights, await other.toSafetensors());
    other.dispose();
    net.eval();
  });
  afterAll(() => net?.dispose());

  const args = (...extra: string[]) => ["--model", "unet3d", "--config", CONFIG, "--weights", weights, ...WINDOW, "--quiet", ...extra];

  /** What the library gives for the same CT, preset and overrides. */
  async function expected(data: Float32Array, extra: Parameters<typeof applyOverrides>[1] = {}) {
    const opts = applyOverrides(presetOptions(presetFor("unet3d"), { shape: SHAPE, config: TINY }), { patch: [8, 8, 8], overlap: 0.5, ...extra });
    return (await segment(net, { data, shape: SHAPE, spacing: SP.map(Math.fround) }, opts)).mask;
  }

  it("a NIfTI CT → a uint8 mask on the CT's grid (header and affine kept), equal to segment()", async () => {
    const d = join(tmp(), "single");
    mkdirSync(d);
    writeVolume(join(d, "ct.nii.gz"), ct(), SHAPE, SP, "int16");
    const out = join(d, "mask.nii.gz");
    const r = await pulmo("segment", join(d, "ct.nii.gz"), ...args("--out", out, "--threshold", "0.5"));
    expect(r.err).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ct: [\d.]+ s, [\d.]+ cm³ → .*mask.nii.gz/);
    const m = readNifti(readFileSync(out));
    const c = readNifti(readFileSync(join(d, "ct.nii.gz")));
    expect(m.datatype).toBe("uint8");
    expect(m.shape).toEqual(SHAPE);
    expect(m.affine).toEqual(c.affine);
    const want = await expected(ct(), { threshold: 0.5 });
    expect(Array.from(m.data)).toEqual(Array.from(want));
    expect(listing(d)).toEqual(["ct.nii.gz", "mask.nii.gz"]);
  });

  it("a folder of cases: one bad case is reported and the others written; a rerun skips finished cases; --force redoes them", async () => {
    const inDir = join(tmp(), "cases"), outDir = join(tmp(), "masks");
    mkdirSync(inDir);
    writeVolume(join(inDir, "a.nii.gz"), ct(0), SHAPE, SP, "int16");
    mkdirSync(join(inDir, "b"));
    writeVolume(join(inDir, "b", "ct.nii"), ct(1), SHAPE, SP, "int16");
    writeFileSync(join(inDir, "c.nii"), "this is not a NIfTI file at all, just some text padding it out to more than 348 bytes. ".repeat(5));
    let r = await pulmo("segment", inDir, ...args("--out", outDir));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\[3\/3\] c: FAILED: CT .*c.nii: nifti: .*not a NIfTI-1 file/);
    expect(r.out).toMatch(/3 cases: 2 segmented, 0 skipped, 1 failed/);
    expect(listing(outDir)).toEqual(["a.nii.gz", "b.nii.gz"]);
    expect(Array.from(readNifti(readFileSync(join(outDir, "b.nii.gz"))).data)).toEqual(Array.from(await expected(ct(1))));
    const before = statSync(join(outDir, "a.nii.gz")).mtimeMs;
    r = await pulmo("segment", inDir, ...args("--out", outDir));
    expect(r.out).toMatch(/a: skipped/);
    expect(r.out).toMatch(/3 cases: 0 segmented, 2 skipped, 1 failed/);
    expect(statSync(join(outDir, "a.nii.gz")).mtimeMs).toBe(before);
    writeVolume(join(inDir, "c.nii"), ct(2), SHAPE, SP, "int16"); // fixed
    r = await pulmo("segment", inDir, ...args("--out", outDir, "--force"));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/3 cases: 3 segmented, 0 skipped, 0 failed/);
    expect(listing(outDir)).toEqual(["a.nii.gz", "b.nii.gz", "c.nii.gz"]);
  });

  it("a DICOM series folder → the mask and an RTSTRUCT that rasterises back onto it", async () => {
    const d = join(tmp(), "dicom", "series");
    mkdirSync(d, { recursive: true });
    const files = writeCtSeries(ct(), SHAPE, { origin: [-5, -5, 10], rowDirection: [1, 0, 0], columnDirection: [0, 1, 0], spacing: SP }, { seed: 7 });
    files.forEach((f, k) => writeFileSync(join(d, `slice${String(k).padStart(3, "0")}.dcm`), f));
    // The untrained net's probabilities sit near 0.5: threshold at their 70th percentile so the
    // mask is a structured ~30 % of the volume, neither empty nor full.
    const opts = applyOverrides(presetOptions(presetFor("unet3d"), { shape: SHAPE, config: TINY }), { patch: [8, 8, 8], overlap: 0.5 });
    const probs = (await segment(net, { data: ct(), shape: SHAPE, spacing: SP }, { ...opts, returnProbabilities: true })).probabilities!.slice(N);
    const t = Array.from(probs).sort((a, b) => a - b)[Math.floor(0.7 * N)]!;
    const out = join(tmp(), "dicom", "gtv.nii.gz");
    const r = await pulmo("segment", d, ...args("--out", out, "--threshold", String(t)));
    expect(r.err).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
    const mask = readNifti(readFileSync(out));
    expect(Array.from(mask.data)).toEqual(Array.from(await expected(ct(), { threshold: t })));
    // RAS sform: DICOM's LPS origin (-5, -5, 10) with x and y negated
    expect(mask.affine[0]![3]).toBeCloseTo(5, 5);
    expect(mask.affine[1]![3]).toBeCloseTo(5, 5);
    expect(mask.affine[2]![3]).toBeCloseTo(10, 5);
    const rt = readFileSync(join(tmp(), "dicom", "gtv_rtstruct.dcm"));
    const series = readCtSeries(files);
    const back = rasterizeRoi(rt, "GTV", series);
    let tp = 0, np = 0, nb = 0;
    for (let i = 0; i < N; i++) {
      np += mask.data[i]!;
      nb += back[i]!;
      if (mask.data[i] && back[i]) tp++;
    }
    expect(np).toBeGreaterThan(0); 
    expect(np).toBeLessThan(N);
    console.info(`dicom round trip: ${np} voxels, Dice ${((2 * tp) / (np + nb)).toFixed(4)}`);
    expect((2 * tp) / (np + nb)).toBeGreaterThanOrEqual(0.98);
  });

  it("a model bundle carries its own options; a plain state dict without --model is named as such", async () => {
    const d = join(tmp(), "bundle");
    mkdirSync(d);
    const spec = {
      model: "unet3d", config: net.config, description: "tiny test net",
      preprocess: { normalization: { kind: "window-minmax" as const } },
      window: { patch: [8, 8, 8], overlap: 0.25, gaussian: false },
      postprocess: { mode: "threshold" as const, threshold: 0.5, keepLargest: true },
    };
    const bundle = join(d, "b.safetensors");
    writeFileSync(bundle, await writeModelBundle(net, spec));
    writeVolume(join(d, "ct.nii.gz"), ct(), SHAPE, SP, "int16");
    const out = join(d, "m.nii.gz");
    const r = await pulmo("segment", join(d, "ct.nii.gz"), "--weights", bundle, "--out", out, "--quiet");
    expect(r.code).toBe(0);
    const want = (await segment(net, { data: ct(), shape: SHAPE, spacing: SP.map(Math.fround) }, bundleSegmentOptions(spec))).mask;
    expect(Array.from(readNifti(readFileSync(out)).data)).toEqual(Array.from(want));
    const r2 = await pulmo("segment", join(d, "ct.nii.gz"), "--weights", weights, "--out", join(d, "x.nii.gz"), "--quiet");
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/not a model bundle.*a plain state dict needs --model NAME and --config/);
    expect(listing(d)).toEqual(["b.safetensors", "ct.nii.gz", "m.nii.gz"]);
  });

  it("ctv_unet: the iGTV mask as the second input (--igtv); missing or on another grid is an error", async () => {
    const d = join(tmp(), "ctv");
    mkdirSync(d);
    const cfg = { enc: [[4, 4], [8, 8], [16, 16]], dec: [[8, 8], [4, 4]] }; // models.py PRESETS.ctv_unet.tiny
    nn.setInitSeed(99);
    const ctvNet = buildModel(dev(), "ctv_unet", cfg);
    try {
      writeFileSync(join(d, "ctv.safetensors"), await ctvNet.toSafetensors());
      ctvNet.eval();
      const igtv = new Uint8Array(N);
      for (let z = 3; z < 6; z++) for (let y = 4; y < 8; y++) for (let x = 5; x < 8; x++) igtv[(z * 12 + y) * 12 + x] = 1;
      writeVolume(join(d, "ct.nii"), ct(), SHAPE, SP, "int16");
      writeVolume(join(d, "igtv.nii"), igtv, SHAPE, SP);
      writeVolume(join(d, "small.nii"), new Uint8Array(4 * 12 * 12), [4, 12, 12], SP);
      const cli = ["--model", "ctv_unet", "--config", JSON.stringify(cfg), "--weights", join(d, "ctv.safetensors"), ...WINDOW, "--quiet"];
      const o = applyOverrides(presetOptions(presetFor("ctv_unet"), { shape: SHAPE, inputs: { igtv: { data: igtv, shape: SHAPE } } }), { patch: [8, 8, 8], overlap: 0.5 });
      const probs = (await segment(ctvNet, { data: ct(), shape: SHAPE, spacing: SP }, { ...o, returnProbabilities: true })).probabilities!;
      const t = Array.from(probs).sort((a, b) => a - b)[Math.floor(0.7 * N)]!;
      const want = (await segment(ctvNet, { data: ct(), shape: SHAPE, spacing: SP }, applyOverrides(o, { threshold: t }))).mask;
      const r = await pulmo("segment", join(d, "ct.nii"), ...cli, "--igtv", join(d, "igtv.nii"), "--threshold", String(t), "--out", join(d, "ctv_mask.nii.gz"));
      expect(r.code).toBe(0);
      expect(Array.from(readNifti(readFileSync(join(d, "ctv_mask.nii.gz"))).data)).toEqual(Array.from(want));
      const noIgtv = await pulmo("segment", join(d, "ct.nii"), ...cli, "--out", join(d, "x.nii.gz"));
      expect(noIgtv.code).toBe(1);
      expect(noIgtv.err).toMatch(/iGTV mask as its second input: give --igtv FILE/);
      const wrongGrid = await pulmo("segment", join(d, "ct.nii"), ...cli, "--igtv", join(d, "small.nii"), "--out", join(d, "x.nii.gz"));
      expect(wrongGrid.code).toBe(1);
      expect(wrongGrid.err).toMatch(/the iGTV .*small.nii has shape \[4, 12, 12\] but the CT/);
      expect(existsSync(join(d, "x.nii.gz"))).toBe(false);
    } finally {
      ctvNet.dispose();
    }
  });

  describe("bad input: a clear error, exit 1, nothing under the output name", () => {
    const bad = async (name: string, contents: Uint8Array | string, pattern: RegExp, extra: string[] = []) => {
      const d = join(tmp(), `bad-${name}`);
      mkdirSync(d);
      const input = join(d, name);
      writeFileSync(input, contents);
      const out = join(d, "out.nii.gz");
      const r = await pulmo("segment", input, ...args("--out", out, ...extra));
      expect(r.code).toBe(1);
      expect(r.err).toMatch(pattern);
      expect(listing(d)).toEqual([name]);
    };
    const valid = () => writeNifti({ data: ct(), shape: SHAPE, spacing: SP }, { datatype: "int16" });

    it("a non-NIfTI file", () => bad("x.nii", "hello ".repeat(100), /not a NIfTI-1 file/));
    it("a corrupt gzip stream", () => {
      const gz = gzipSync(valid());
      gz.fill(0x55, 20, 60);
      return bad("x.nii.gz", gz, /nifti: .*(gzip|corrupt|invalid)/i);
    });
    it("an unsupported NIfTI datatype", () => {
      const b = valid();
      new DataView(b.buffer).setInt16(70, 128, true); // RGB24
      return bad("rgb.nii", b, /unsupported datatype code 128/);
    });
    it("NaN voxels", () => {
      // writeNifti refuses NaN, so patch voxel 100 of a valid float32 file
      const b = writeNifti({ data: ct(), shape: SHAPE, spacing: SP }, { datatype: "float32" });
      new DataView(b.buffer).setFloat32(352 + 4 * 100, NaN, true);
      return bad("nan.nii", b, /voxel 100 is NaN/);
    });
    it("an empty (0-byte) file", () => bad("empty.nii", new Uint8Array(0), /the file is empty \(0 bytes\)/));
    it("an empty volume (a zero dimension)", () => {
      const b = valid();
      new DataView(b.buffer).setInt16(42, 0, true); // dim[1] = nx = 0
      return bad("zero.nii", b, /dimensions .* must all be ≥ 1/);
    });
  });

  it("weights for another model or config: named, exit 1, nothing written", async () => {
    const d = join(tmp(), "wrong-weights");
    mkdirSync(d);
    writeVolume(join(d, "ct.nii"), ct(), SHAPE, SP, "int16");
    const out = join(d, "out.nii.gz");
    const r = await pulmo("segment", join(d, "ct.nii"), "--model", "unet3d", "--config", CONFIG, "--weights", otherWeights, ...WINDOW, "--quiet", "--out", out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/weights .*other.safetensors do not fit model 'unet3d' with config .*: \d+ problem\(s\): mis-shaped/);
    expect(existsSync(out)).toBe(false);
    const resunet = JSON.stringify({ in_channels: 1, num_classes: 2, channels: [4, 6, 8], strides: [2, 2], num_res_units: 1 });
    const r2 = await pulmo("segment", join(d, "ct.nii"), "--model", "resunet", "--config", resunet, "--weights", weights, ...WINDOW, "--quiet", "--out", out);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/do not fit model 'resunet'.*(missing|unexpected)/);
    expect(existsSync(out)).toBe(false);
  });

  it("a missing input, a missing weights file and usage mistakes", async () => {
    let r = await pulmo("segment", join(tmp(), "nope.nii.gz"), ...args());
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/input .*nope.nii.gz: no such file or folder/);
    writeVolume(join(tmp(), "ok.nii"), ct(), SHAPE, SP, "int16");
    r = await pulmo("segment", join(tmp(), "ok.nii"), "--model", "unet3d", "--config", CONFIG, "--weights", join(tmp(), "missing.safetensors"), "--out", join(tmp(), "x.nii.gz"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/weights .*missing.safetensors: no such file/);
    expect(existsSync(join(tmp(), "x.nii.gz"))).toBe(false);
    r = await pulmo("segment", join(tmp(), "ok.nii"), "--model", "unet3d", "--weights", weights, "--patch", "8,8");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--patch takes D,H,W/);
    r = await pulmo("segment", join(tmp(), "ok.nii"), ...args("--gaussian", "--constant"));
    expect(r.code).toBe(2);
    r = await pulmo("segment", join(tmp(), "ok.nii"), "--model", "unet3d", "--config", "{bad json", "--weights", weights);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--config is not valid JSON/);
  });
});

import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readNifti } from "../../src/io/nifti.ts";
import { listRois, rasterizeRoi, readCtSeries } from "../../src/io/dicom/index.ts";
import { maskMetrics } from "../../src/pipeline/masks/index.ts";
import { makePhantom } from "../../src/pipeline/phantom.ts";
import { OVERLAY_COLOURS } from "../../src/pipeline/overlay.ts";
import { writeSafetensors } from "../../weights/safetensors.ts";
import { DEFAULT_BUNDLE } from "../../src/cli/segment.ts";
import { chunks, decodePng } from "../io/png_reader.ts";
import { pulmo, useTmp } from "./helpers.ts";

const count = (px: Uint8Array, c: readonly number[]) => {
  let n = 0;
  for (let i = 0; i < px.length; i += 3) if (px[i] === c[0] && px[i + 1] === c[1] && px[i + 2] === c[2]) n++;
  return n;
};

describe("pulmo demo", () => {
  const tmp = useTmp("demo");

  // The target: Dice ≥ 0.8 on the default phantom (unseen in training), exit code 0.
  it("segments the default phantom with the bundled model at Dice ≥ 0.8 and writes every output", async () => {
    expect(existsSync(DEFAULT_BUNDLE), `${DEFAULT_BUNDLE} (train it: npx tsx scripts/train_demo.ts)`).toBe(true);
    const out = join(tmp(), "demo");
    const r = await pulmo("demo", "--out", out, "--quiet");
    for (const f of ["ct.nii.gz", "gtv_reference.nii.gz", "gtv_predicted.nii.gz", "overlay_axial.png", "overlay_coronal.png", "overlay_sagittal.png", "rtstruct.dcm", "result.json"])
      expect(existsSync(join(out, f)), f).toBe(true);

    // the Dice printed and the Dice written agree, and both pass
    const result = JSON.parse(readFileSync(join(out, "result.json"), "utf8"));
    const dice = result.evaluation.cases[0].dice as number;
    expect(dice).toBeGreaterThanOrEqual(0.8);
    expect(r.code, r.err).toBe(0);
    expect(result.evaluation.cases[0].tumours[0].dice).toBeGreaterThan(0.5); // the large tumour is found
    const printed = /^GTV\s+([0-9.]+)/m.exec(r.out);
    expect(printed, r.out).not.toBeNull();
    expect(Number(printed![1])).toBeCloseTo(dice, 3);
    expect(r.out).toMatch(/HD95 mm/);
    expect(r.out).toMatch(/inference \(GPU\)/);

    // NIfTI: the reference is the phantom's GTV; the prediction is on the same grid and matches the report
    const p = makePhantom();
    const ref = readNifti(readFileSync(join(out, "gtv_reference.nii.gz")));
    const pred = readNifti(readFileSync(join(out, "gtv_predicted.nii.gz")));
    const ct = readNifti(readFileSync(join(out, "ct.nii.gz")));
    expect(Array.from(ref.data)).toEqual(Array.from(p.masks.gtv));
    expect(pred.shape).toEqual(ct.shape);
    expect(pred.affine).toEqual(ct.affine);
    const predMask = Uint8Array.from(pred.data);
    expect(maskMetrics({ data: predMask, shape: p.shape }, { data: p.masks.gtv, shape: p.shape }, p.spacing).dice).toBeCloseTo(dice, 10);

    // PNGs: valid files showing the CT (greys) and both contours
    for (const view of ["axial", "coronal", "sagittal"]) {
      const bytes = readFileSync(join(out, `overlay_${view}.png`));
      for (const c of chunks(bytes)) expect(c.crcOk, `${view} ${c.type}`).toBe(true);
      const img = decodePng(bytes);
      expect(img.width).toBeGreaterThan(100);
      expect(count(img.pixels, OVERLAY_COLOURS.reference) + count(img.pixels, OVERLAY_COLOURS.both), `${view} reference contour`).toBeGreaterThan(20);
      expect(count(img.pixels, OVERLAY_COLOURS.prediction) + count(img.pixels, OVERLAY_COLOURS.both), `${view} prediction contour`).toBeGreaterThan(20);
      let greys = 0;
      for (let i = 0; i < img.pixels.length; i += 3) if (img.pixels[i] === img.pixels[i + 1] && img.pixels[i + 1] === img.pixels[i + 2] && img.pixels[i]! > 20 && img.pixels[i]! < 235) greys++;
      expect(greys, `${view} CT pixels`).toBeGreaterThan(img.width * img.height * 0.2);
    }

    // DICOM: the RTSTRUCT's predicted ROI rasterises back onto its CT series as the NIfTI mask
    const files = readdirSync(join(out, "ct")).sort();
    const series = readCtSeries(files.map((f) => readFileSync(join(out, "ct", f))));
    const rt = readFileSync(join(out, "rtstruct.dcm"));
    expect(listRois(rt).map((x) => x.name)).toEqual(["GTV_pulmo", "GTV_reference"]);
    const back = rasterizeRoi(rt, "GTV_pulmo", series);
    expect(maskMetrics({ data: back, shape: p.shape }, { data: predMask, shape: p.shape }, p.spacing).dice).toBeGreaterThanOrEqual(0.98);
  }, 600_000);

  it("fails with a clear message for a missing or wrong weights file", async () => {
    const missing = await pulmo("demo", "--out", join(tmp(), "x"), "--weights", join(tmp(), "nope.safetensors"), "--quiet");
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/demo model .*nope\.safetensors is missing/);
    const plain = join(tmp(), "plain.safetensors");
    writeFileSync(plain, writeSafetensors({ w: { shape: [1], data: [1] } }));
    const wrong = await pulmo("demo", "--out", join(tmp(), "y"), "--weights", plain, "--quiet");
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/not a model bundle/);
    expect(existsSync(join(tmp(), "y"))).toBe(false); // nothing half-written
  }, 120_000);
});

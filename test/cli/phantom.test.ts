import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readNifti } from "../../src/io/nifti.ts";
import { rasterizeRoi, readCtSeries, listRois } from "../../src/io/dicom/index.ts";
import { makePhantom } from "../../src/pipeline/phantom.ts";
import { maskMetrics } from "../../src/pipeline/masks/index.ts";
import { phantom } from "../../src/cli/phantom.ts";
import { listing, pulmo, useTmp } from "./helpers.ts";

const SHAPE: [number, number, number] = [24, 64, 64];
const SPACING: [number, number, number] = [6, 4.8, 4.8];

describe("pulmo phantom", () => {
  const tmp = useTmp("phantom");

  it("writes the CT, every mask and phantom.json as the generator makes them, with a consistent affine", async () => {
    const out = join(tmp(), "nifti");
    const r = await pulmo("phantom", "--seed", "5", "--shape", SHAPE.join(","), "--spacing", SPACING.join(","), "--tumours", "2", "--out", out);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/2 tumour\(s\)/);
    expect(listing(out)).toEqual(["body.nii.gz", "bone.nii.gz", "ct.nii.gz", "ctv.nii.gz", "gtv.nii.gz", "heart.nii.gz", "igtv.nii.gz", "lungs.nii.gz", "oesophagus.nii.gz", "phantom.json"]);
    const p = makePhantom({ seed: 5, shape: SHAPE, spacing: SPACING, tumours: 2 });
    const ct = readNifti(readFileSync(join(out, "ct.nii.gz")));
    expect(ct.datatype).toBe("int16");
    expect(ct.shape).toEqual(SHAPE);
    // NIfTI stores float32
    const close = (a: readonly number[], b: readonly number[]) => a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 4));
    close(ct.spacing, SPACING);
    expect(Buffer.from(ct.data.buffer).equals(Buffer.from(p.ct.buffer))).toBe(true);
    // RAS affine of the LPS grid centred on the field of view: x and y flip sign
    const [D, H, W] = SHAPE, [dz, dy, dx] = SPACING;
    close(ct.affine[0]!, [-dx, 0, 0, -(dx / 2 - (W * dx) / 2)]);
    close(ct.affine[1]!, [0, -dy, 0, -(dy / 2 - (H * dy) / 2)]);
    close(ct.affine[2]!, [0, 0, dz, dz / 2 - (D * dz) / 2]);
    for (const m of ["gtv", "igtv", "ctv", "body", "lungs", "heart", "oesophagus", "bone"] as const) {
      const v = readNifti(readFileSync(join(out, `${m}.nii.gz`)));
      expect(v.datatype).toBe("uint8");
      expect(v.affine).toEqual(ct.affine);
      expect(Buffer.from(Uint8Array.from(v.data)).equals(Buffer.from(p.masks[m]))).toBe(true);
    }
    const info = JSON.parse(readFileSync(join(out, "phantom.json"), "utf8"));
    expect(info.tumours.map((t: { centre: number[] }) => t.centre)).toEqual(p.tumours.map((t) => t.centre));
    expect(info.tumours[0].volumeCc).toBeCloseTo(p.tumours[0]!.volumeCc, 4);
    expect(info.ctvMarginMm).toBe(p.ctvMarginMm);
  });

  it("with --dicom writes a CT series with the same HU and an RTSTRUCT whose GTV, iGTV and CTV rasterise back", async () => {
    const out = join(tmp(), "dicom");
    expect(await phantom(["--seed", "3", "--shape", SHAPE.join(","), "--spacing", SPACING.join(","), "--dicom", "--out", out])).toBe(0);
    const files = readdirSync(join(out, "ct")).sort();
    expect(files.length).toBe(SHAPE[0]);
    const series = readCtSeries(files.map((f) => readFileSync(join(out, "ct", f))));
    const p = makePhantom({ seed: 3, shape: SHAPE, spacing: SPACING });
    expect(series.shape).toEqual(SHAPE);
    expect(series.spacing.map((s) => +s.toFixed(4))).toEqual(SPACING);
    expect(Array.from(series.data)).toEqual(Array.from(p.ct));
    const rt = readFileSync(join(out, "rtstruct.dcm"));
    expect(listRois(rt).map((r) => r.name)).toEqual(["GTV", "iGTV", "CTV"]);
    for (const [roi, mask] of [["GTV", p.masks.gtv], ["iGTV", p.masks.igtv], ["CTV", p.masks.ctv]] as const) {
      const back = rasterizeRoi(rt, roi, series);
      expect(maskMetrics({ data: back, shape: SHAPE }, { data: mask, shape: SHAPE }, SPACING).dice, roi).toBeGreaterThanOrEqual(0.98);
    }
  });

  it("rejects bad options with a usage error naming the flag", async () => {
    const r = await pulmo("phantom", "--shape", "24,64", "--out", join(tmp(), "bad"));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--shape must be three positive integers/);
    const s = await pulmo("phantom", "--spacing", "1,0,1", "--out", join(tmp(), "bad"));
    expect(s.code).toBe(2);
    const t = await pulmo("phantom", "--tumours", "4", "--out", join(tmp(), "bad"));
    expect(t.code).toBe(2);
    // a field of view too small to show the lungs is not an error: its tumours go to the mediastinum
    const smallDir = join(tmp(), "small");
    const small = await pulmo("phantom", "--shape", "4,8,8", "--spacing", "1,1,1", "--out", smallDir);
    expect(small.code).toBe(0);
    const sites = JSON.parse(readFileSync(join(smallDir, "phantom.json"), "utf8")).tumours.map((t: { site: string }) => t.site);
    expect(sites.length).toBeGreaterThan(0);
    for (const site of sites) expect(site).toBe("mediastinum");
  });
});

// External validation of what we write: Debian dicom3tools' dciodvfy (IOD conformance) and pydicom
// (an independent reader). Both are installed by scripts/setup.sh.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeRtstruct } from "../../src/io/dicom/index.ts";
import { syntheticSeries } from "./dicom_helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "pulmo-dicom-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// pydicom is a Debian package: use Debian's python even when another python3 comes first on PATH
const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

const shape: [number, number, number] = [4, 24, 28];
const { files, series } = syntheticSeries(shape, [2.5, 0.9, 0.8], { seed: "validate", patientName: "Test^Patient", patientId: "PULMO-1" });
const mask = new Uint8Array(shape[0] * shape[1] * shape[2]);
for (let z = 1; z < 4; z++) for (let y = 0; y < 24; y++) for (let x = 0; x < 28; x++) {
  const r = Math.hypot(x - 14, y - 12);
  if (r < 9 && r > 3) mask[(z * 24 + y) * 28 + x] = 1; // a ring: outer contour and hole on each slice
}
const rtPath = join(dir, "rtstruct.dcm");
const ctPath = join(dir, "ct0.dcm");
writeFileSync(rtPath, writeRtstruct(mask, series, { roiName: "GTV", colour: [255, 0, 0], algorithm: "AUTOMATIC", description: "Pulmo test", seed: 2 }));
writeFileSync(ctPath, files[0]!);

function dciodvfy(path: string): string[] {
  const r = spawnSync("dciodvfy", [path], { encoding: "utf8" });
  if (r.error) throw new Error(`dciodvfy could not run (${r.error.message}); scripts/setup.sh installs dicom3tools`);
  return `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => l.trim() !== "");
}

describe("written DICOM passes external validators", () => {
  it("dciodvfy reports no errors for the RTSTRUCT and a CT slice", () => {
    for (const path of [rtPath, ctPath]) {
      const lines = dciodvfy(path);
      expect(lines.length).toBeGreaterThan(0); // it names the IOD it checked
      expect(lines.filter((l) => l.startsWith("Error"))).toEqual([]);
    }
    expect(dciodvfy(rtPath)[0]).toBe("RTStructureSet");
    expect(dciodvfy(ctPath)[0]).toBe("CTImage");
  });

  it("pydicom reads the RTSTRUCT back: ROI name, contours, referenced UIDs", () => {
    const script = `
import json, sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
rfr = ds.ReferencedFrameOfReferenceSequence[0]
rs = rfr.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
contours = ds.ROIContourSequence[0].ContourSequence
print(json.dumps({
  "roi": ds.StructureSetROISequence[0].ROIName,
  "algorithm": ds.StructureSetROISequence[0].ROIGenerationAlgorithm,
  "colour": [int(v) for v in ds.ROIContourSequence[0].ROIDisplayColor],
  "contours": len(contours),
  "points": [int(c.NumberOfContourPoints) for c in contours],
  "dataLengths": [len(c.ContourData) for c in contours],
  "frame": rfr.FrameOfReferenceUID,
  "series": rs.SeriesInstanceUID,
  "images": [i.ReferencedSOPInstanceUID for i in rs.ContourImageSequence],
  "contourImages": [c.ContourImageSequence[0].ReferencedSOPInstanceUID for c in contours],
  "patientId": ds.PatientID,
  "study": ds.StudyInstanceUID,
  "modality": ds.Modality,
}))`;
    const r = spawnSync(python, ["-c", script, rtPath], { encoding: "utf8" });
    if (r.error || r.status !== 0) throw new Error(`pydicom read failed: ${r.error?.message ?? r.stderr}`);
    const got = JSON.parse(r.stdout);
    expect(got.roi).toBe("GTV");
    expect(got.algorithm).toBe("AUTOMATIC");
    expect(got.colour).toEqual([255, 0, 0]);
    expect(got.contours).toBe(6); // 3 slices × (outer boundary + hole)
    expect(got.dataLengths).toEqual(got.points.map((n: number) => 3 * n));
    expect(got.frame).toBe(series.reference.frameOfReferenceUid);
    expect(got.series).toBe(series.reference.seriesInstanceUid);
    expect(got.images).toEqual(series.reference.sopInstanceUids);
    expect(got.contourImages).toEqual([1, 1, 2, 2, 3, 3].map((k) => series.reference.sopInstanceUids[k]));
    expect([got.patientId, got.study, got.modality]).toEqual(["PULMO-1", series.reference.studyInstanceUid, "RTSTRUCT"]);
  });
});

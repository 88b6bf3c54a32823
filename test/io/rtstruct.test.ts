import { describe, expect, it } from "vitest";
import { DicomError, TAGS, listRois, rasterizeRoi, readCtSeries, readDicom, writeCtSeries, writeRtstruct, writeRtstructRois, type CtSeries, type Vec3 } from "../../src/io/dicom/index.ts";
import { maskMetrics } from "../../src/pipeline/masks/index.ts";
import { AXIAL, fixture, syntheticSeries } from "./dicom_helpers.ts";

const expectError = (f: () => unknown, message: RegExp) => {
  expect(f).toThrow(DicomError);
  expect(f).toThrow(message);
};

/** pydicom's rtstruct.dcm references this frame of reference and series; its contours lie at z = −200, −190, −180 mm. */
function pydicomRtstructSeries(): CtSeries {
  const files = writeCtSeries(new Float32Array(3 * 50 * 50), [3, 50, 50], { origin: [-245, -245, -200], ...AXIAL, spacing: [10, 10, 10] }, {
    frameOfReferenceUid: "1.2.826.0.1.3680043.8.498.2010020400001.2",
    seriesInstanceUid: "1.2.826.0.1.3680043.8.498.2010020400001.2.1.1",
    studyInstanceUid: "1.2.826.0.1.3680043.8.498.2010020400001.2.1",
    seed: "pydicom",
  });
  return readCtSeries(files);
}

function volume(shape: [number, number, number], inside: (z: number, y: number, x: number) => boolean): Uint8Array {
  const [d, h, w] = shape;
  const m = new Uint8Array(d * h * w);
  for (let z = 0; z < d; z++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (inside(z, y, x)) m[(z * h + y) * w + x] = 1;
  return m;
}

describe("RTSTRUCT read (pydicom's rtstruct.dcm)", () => {
  it("lists ROIs with number, name, colour and contour count", () => {
    const rois = listRois(fixture("rtstruct.dcm"));
    expect(rois.map(({ number, name, colour, contourCount, contourTypes }) => ({ number, name, colour, contourCount, contourTypes }))).toEqual([
      { number: 1, name: "patient", colour: [220, 160, 120], contourCount: 3, contourTypes: ["CLOSED_PLANAR"] },
      { number: 2, name: "Isocenter 1", colour: [255, 64, 255], contourCount: 1, contourTypes: ["POINT"] },
      { number: 3, name: "Isocenter 2", colour: [255, 64, 255], contourCount: 1, contourTypes: ["POINT"] },
    ]);
  });

  it("rasterises its 400×300 mm rectangles onto a matching series", () => {
    const series = pydicomRtstructSeries();
    const mask = rasterizeRoi(fixture("rtstruct.dcm"), "patient", series);
    // pixel centres at −245 + 10i: x ∈ (−200, 200) → columns 5..44, y ∈ (−150, 150) → rows 10..39
    const want = volume([3, 50, 50], (_z, y, x) => x >= 5 && x <= 44 && y >= 10 && y <= 39);
    expect([...mask]).toEqual([...want]);
    expect(rasterizeRoi(fixture("rtstruct.dcm"), 1, series)).toEqual(mask);
  });

  it("errors: ROI not found (lists the ROIs), no closed contours, wrong series, not an RTSTRUCT", () => {
    const rt = fixture("rtstruct.dcm");
    const series = pydicomRtstructSeries();
    expectError(() => rasterizeRoi(rt, "GTV", series), /ROI 'GTV' not found; the structure set has 1 'patient', 2 'Isocenter 1', 3 'Isocenter 2'/);
    expectError(() => rasterizeRoi(rt, 7, series), /ROI number 7 not found/);
    expectError(() => rasterizeRoi(rt, "Isocenter 1", series), /ROI 2 'Isocenter 1' has no CLOSED_PLANAR contours \(types: POINT\)/);
    const other = syntheticSeries([3, 4, 4], [1, 1, 1], { seed: "other" }).series;
    expectError(() => rasterizeRoi(rt, "patient", other), /ROI 1 'patient' is in frame of reference 1\.2\.826\.0\.1\.3680043\.8\.498\.2010020400001\.2, the series is in 2\.25\.\d+: the RTSTRUCT does not belong to this series/);
    const sameFrame = readCtSeries(writeCtSeries(new Float32Array(3 * 50 * 50), [3, 50, 50], { origin: [-245, -245, -200], ...AXIAL, spacing: [10, 10, 10] }, { frameOfReferenceUid: "1.2.826.0.1.3680043.8.498.2010020400001.2" }));
    expectError(() => rasterizeRoi(rt, "patient", sameFrame), /the RTSTRUCT references series 1\.2\.826\.0\.1\.3680043\.8\.498\.2010020400001\.2\.1\.1, not the given series 2\.25\.\d+/);
    const tooFew = readCtSeries(writeCtSeries(new Float32Array(2 * 50 * 50), [2, 50, 50], { origin: [-245, -245, -170], ...AXIAL, spacing: [10, 10, 10] }, { frameOfReferenceUid: series.reference.frameOfReferenceUid, seriesInstanceUid: series.reference.seriesInstanceUid }));
    expectError(() => rasterizeRoi(rt, "patient", tooFew), /ROI 1 'patient' contour 1 lies -30\.00 mm along the slice normal from the first slice, outside the series/);
    expectError(() => listRois(fixture("CT_small.dcm")), /not an RT Structure Set: SOPClassUID 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2, Modality CT/);
  });
});

describe("RTSTRUCT write → rasterise round trip", () => {
  const shape: [number, number, number] = [12, 40, 44];
  const { series } = syntheticSeries(shape, [2.5, 0.9, 0.8], { seed: "rt" });
  const masks: Record<string, Uint8Array> = {
    sphere: volume(shape, (z, y, x) => Math.hypot((x - 21) * 0.8, (y - 19) * 0.9, (z - 5.5) * 2.5) < 11),
    torus: volume(shape, (z, y, x) => {
      const r = Math.hypot((x - 22) * 0.8, (y - 20) * 0.9);
      return z >= 2 && z <= 9 && r > 4 && r < 12;
    }),
    twoBlobs: volume(shape, (z, y, x) => Math.hypot(x - 10, y - 10, z - 4) < 5 || Math.hypot(x - 32, y - 28, (z - 7) * 2) < 6),
    border: volume(shape, (z, y, x) => x < 6 || y >= 37 || z === 0 || z === 11 || (x + y) % 7 === 0),
    diagonal: volume(shape, (z, y, x) => z === 3 && (x + y) % 2 === 0 && x > 5 && x < 15 && y > 5 && y < 15),
  };
  for (const [name, mask] of Object.entries(masks))
    it(`reproduces the ${name} mask (Dice ≥ 0.98; exact by pixel centre)`, () => {
      const bytes = writeRtstruct(mask, series, { roiName: name, colour: [0, 200, 0], algorithm: "AUTOMATIC", description: "test", seed: 1 });
      const back = rasterizeRoi(bytes, name, series);
      const m = maskMetrics({ data: back, shape }, { data: mask, shape }, series.spacing);
      expect(m.dice).toBeGreaterThanOrEqual(0.98);
      expect(m.dice).toBe(1);
      expect(m.hausdorff).toBe(0);
    });

  it("round-trips on an oblique grid (contours through patient coordinates)", () => {
    const c = Math.cos(0.5), s = Math.sin(0.5);
    const g = { origin: [5, 7, -3] as Vec3, rowDirection: [c, 0, s] as Vec3, columnDirection: [0, 1, 0] as Vec3, spacing: [3, 1.1, 0.7] as Vec3 };
    const sh: [number, number, number] = [6, 20, 24];
    const obl = readCtSeries(writeCtSeries(new Float32Array(6 * 20 * 24), sh, g, { seed: 4 }));
    const mask = volume(sh, (z, y, x) => Math.hypot(x - 12, y - 10) < 3 + z);
    expect(rasterizeRoi(writeRtstruct(mask, obl, { roiName: "GTV" }), "GTV", obl)).toEqual(mask);
  });

  it("writes several ROIs, references every slice, and each contour its own slice", () => {
    const bytes = writeRtstructRois(
      [
        { mask: masks.sphere!, name: "GTV", colour: [255, 0, 0], interpretedType: "GTV" },
        { mask: masks.torus!, name: "CTV", colour: [0, 0, 255], interpretedType: "CTV", number: 5 },
      ],
      series,
      { seed: "multi", structureSetLabel: "Test" },
    );
    expect(listRois(bytes).map((r) => [r.number, r.name, r.colour, r.generationAlgorithm])).toEqual([
      [1, "GTV", [255, 0, 0], "AUTOMATIC"],
      [5, "CTV", [0, 0, 255], "AUTOMATIC"],
    ]);
    expect(rasterizeRoi(bytes, "CTV", series)).toEqual(masks.torus);
    const ds = readDicom(bytes).dataset;
    const frame = ds.getSequence(TAGS.ReferencedFrameOfReferenceSequence)[0]!;
    expect(frame.getString(TAGS.FrameOfReferenceUID)).toBe(series.reference.frameOfReferenceUid);
    const refSeries = frame.getSequence(TAGS.RTReferencedStudySequence)[0]!.getSequence(TAGS.RTReferencedSeriesSequence)[0]!;
    expect(refSeries.getString(TAGS.SeriesInstanceUID)).toBe(series.reference.seriesInstanceUid);
    expect(refSeries.getSequence(TAGS.ContourImageSequence).map((i) => i.getString(TAGS.ReferencedSOPInstanceUID))).toEqual(series.reference.sopInstanceUids);
    for (const contour of ds.getSequence(TAGS.ROIContourSequence)[0]!.getSequence(TAGS.ContourSequence)) {
      const z = contour.getNumbers(TAGS.ContourData)[2]!;
      const k = series.slicePositions.findIndex((p) => Math.abs(p - z) < 1e-3);
      expect(contour.getSequence(TAGS.ContourImageSequence)[0]!.getString(TAGS.ReferencedSOPInstanceUID)).toBe(series.reference.sopInstanceUids[k]);
    }
    expect(ds.getString(TAGS.PatientID)).toBe(series.reference.patientId);
    expect(ds.getString(TAGS.StudyInstanceUID)).toBe(series.reference.studyInstanceUid);
  });

  it("falls back to implicit VR when a contour is too long for explicit VR's 16-bit length", () => {
    const big = readCtSeries(writeCtSeries(new Float32Array(700 * 700), [1, 700, 700], { origin: [-300.1234, -300.5678, 0], ...AXIAL, spacing: [1, 0.8571, 0.8571] }, { seed: 5 }));
    // comb-edged rectangle: every row steps in and out, ~2700 vertices (about 80 kB of DS text)
    const mask = volume([1, 700, 700], (_z, y, x) => y >= 10 && y < 690 && x >= 20 + (y % 2) * 2 && x < 680 - (y % 2) * 2);
    const bytes = writeRtstruct(mask, big, { roiName: "Body" });
    expect(readDicom(bytes).transferSyntaxUid).toBe("1.2.840.10008.1.2");
    const back = rasterizeRoi(bytes, "Body", big);
    expect(back.length).toBe(mask.length);
    expect(back.reduce((n, v, i) => n + (v !== mask[i] ? 1 : 0), 0)).toBe(0);
  });

  it("write errors: wrong mask size, duplicate ROI numbers, bad colour", () => {
    expectError(() => writeRtstruct(new Uint8Array(5), series, { roiName: "GTV" }), /mask 'GTV' has 5 voxels, the series grid \[12,40,44\] has 21120/);
    expectError(() => writeRtstructRois([{ mask: masks.sphere!, name: "A" }, { mask: masks.sphere!, name: "B", number: 1 }], series), /ROI number 1 of 'B' is not a new positive integer/);
    expectError(() => writeRtstruct(masks.sphere!, series, { roiName: "GTV", colour: [300, 0, 0] }), /colour \[300,0,0\] of 'GTV' must be three integers 0–255/);
  });
});

import { describe, expect, it } from "vitest";
import { DicomError, TAGS, geometryFromNiftiAffine, niftiAffineOf, patientToVoxel, readCtSeries, readDicom, voxelToPatient, writeCtSeries, type Vec3 } from "../../src/io/dicom/index.ts";
import { AXIAL, syntheticSeries } from "./dicom_helpers.ts";

const shuffle = <T>(a: T[], seed: number): T[] => {
  const out = a.slice();
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
};

const expectError = (f: () => unknown, message: RegExp) => {
  expect(f).toThrow(DicomError);
  expect(f).toThrow(message);
};

describe("CT series assembly", () => {
  it("sorts shuffled slices along the normal and keeps HU, spacing (row, column order) and UIDs", () => {
    const shape: [number, number, number] = [5, 6, 7];
    const { files, hu } = syntheticSeries(shape, [2.5, 0.9, 0.7], { seed: "sort", patientName: "Doe^Jane", patientId: "P1" });
    const s = readCtSeries(shuffle(files, 7));
    expect(s.shape).toEqual(shape);
    expect(s.spacing).toEqual([2.5, 0.9, 0.7]);
    expect([...s.data]).toEqual([...hu]);
    expect(s.slicePositions).toEqual([12.5, 15, 17.5, 20, 22.5]);
    expect(s.reference.sopInstanceUids).toEqual(files.map((f) => readDicom(f).dataset.getString(TAGS.SOPInstanceUID)));
    expect(s.reference.patientName).toBe("Doe^Jane");
    expect(s.reference.sopClassUid).toBe("1.2.840.10008.5.1.4.1.1.2");
    expect(s.geometry.origin).toEqual([-30, -20, 12.5]);
    expect(s.geometry.affine).toEqual([[0.7, 0, 0, -30], [0, 0.9, 0, -20], [0, 0, 2.5, 12.5], [0, 0, 0, 1]]);
    // the pixel spacing attribute is [row spacing, column spacing] = [dy, dx]
    expect(readDicom(files[0]!).dataset.getNumbers(TAGS.PixelSpacing)).toEqual([0.9, 0.7]);
  });

  it("handles an oblique orientation: the affine maps each voxel to ImagePositionPatient and back", () => {
    const c = Math.cos(0.3), sn = Math.sin(0.3);
    const geometry = { origin: [10, -5, 40] as Vec3, rowDirection: [c, sn, 0] as Vec3, columnDirection: [0, 0, -1] as Vec3, spacing: [3, 1.25, 0.8] as Vec3 };
    const hu = Float32Array.from({ length: 4 * 3 * 5 }, (_, i) => i);
    const files = writeCtSeries(hu, [4, 3, 5], geometry, { seed: 9 });
    const s = readCtSeries(shuffle(files, 3));
    expect([...s.data]).toEqual([...hu]);
    files.forEach((f, k) => {
      const ipp = readDicom(f).dataset.getNumbers(TAGS.ImagePositionPatient);
      voxelToPatient(s.geometry, 0, 0, k).forEach((v, i) => expect(v).toBeCloseTo(ipp[i]!, 4));
    });
    const p = voxelToPatient(s.geometry, 1.5, 2, 3);
    patientToVoxel(s.geometry, p).forEach((v, i) => expect(v).toBeCloseTo([1.5, 2, 3][i]!, 9));
    expect(s.geometry.sliceDirection.map((v) => +v.toFixed(12))).toEqual([-sn, c, 0].map((v) => +v.toFixed(12)));
  });

  it("converts geometry to a NIfTI (RAS) affine and back: x and y change sign, the grid stays", () => {
    const c = Math.cos(0.2), sn = Math.sin(0.2);
    const files = writeCtSeries(new Float32Array(3 * 4 * 5), [3, 4, 5], { origin: [10, -5, 40], rowDirection: [c, sn, 0], columnDirection: [-sn, c, 0], spacing: [2, 0.9, 0.8] }, { seed: 2 });
    const g = readCtSeries(files).geometry;
    const ras = niftiAffineOf(g);
    const p = voxelToPatient(g, 1, 2, 3);
    const q = [0, 1, 2].map((i) => ras[i]![0]! * 1 + ras[i]![1]! * 2 + ras[i]![2]! * 3 + ras[i]![3]!);
    [-p[0], -p[1], p[2]].forEach((v, i) => expect(q[i]).toBeCloseTo(v, 9));
    const back = geometryFromNiftiAffine(ras, g.shape);
    back.affine.flat().forEach((v, i) => expect(v).toBeCloseTo(g.affine.flat()[i]!, 9));
    back.spacing.forEach((v, i) => expect(v).toBeCloseTo(g.spacing[i]!, 12));
    expect(() => geometryFromNiftiAffine([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]], [1, 1, 1])).toThrow(/zero-length axis/);
  });

  it("writes dciodvfy-relevant CT attributes and round-trips HU through int16 with a rescale intercept", () => {
    const { files } = syntheticSeries([2, 3, 4], [1, 1, 1], { seed: 1 });
    const ds = readDicom(files[0]!).dataset;
    expect(ds.getNumber(TAGS.RescaleIntercept)).toBe(-1024);
    expect(ds.getNumber(TAGS.RescaleSlope)).toBe(1);
    expect(ds.getString(TAGS.Modality)).toBe("CT");
    expect(() => writeCtSeries(new Float32Array(24).fill(40000), [2, 3, 4], { origin: [0, 0, 0], ...AXIAL, spacing: [1, 1, 1] })).toThrow(/does not fit int16/);
    expect(() => writeCtSeries(new Float32Array(24).fill(NaN), [2, 3, 4], { origin: [0, 0, 0], ...AXIAL, spacing: [1, 1, 1] })).toThrow(/voxel 0 is NaN/);
  });

  it("is deterministic given a seed", () => {
    const a = syntheticSeries([2, 2, 2], [1, 1, 1], { seed: "x" }).files;
    const b = syntheticSeries([2, 2, 2], [1, 1, 1], { seed: "x" }).files;
    expect(a).toEqual(b);
    expect(readDicom(a[0]!).dataset.getString(TAGS.SOPInstanceUID)).toMatch(/^2\.25\.\d{30,39}$/);
  });
});

describe("CT series assembly: bad series throw DicomError naming the problem", () => {
  const shape: [number, number, number] = [5, 4, 4];
  const base = syntheticSeries(shape, [2, 1, 1], { seed: "base" });
  const uid = base.series.reference.seriesInstanceUid;

  it("missing slices (a gap of a multiple of the spacing)", () => {
    const files = base.files.filter((_, k) => k !== 2);
    expectError(() => readCtSeries(files), /missing slice\(s\): a gap of 4\.000 mm between 14\.50 mm \(file 1\) and 18\.50 mm \(file 2\), where the slice spacing is 2\.000 mm \(1 slice\(s\) missing\)/);
  });

  it("non-uniform slice spacing", () => {
    const odd = writeCtSeries(new Float32Array(16), [1, 4, 4], { origin: [-30, -20, 12.5 + 5 * 2 + 0.7], ...AXIAL, spacing: [2, 1, 1] }, { seriesInstanceUid: uid, seed: "odd" });
    expectError(() => readCtSeries([...base.files, ...odd]), /non-uniform slice spacing: a gap of 2\.700 mm/);
  });

  it("duplicated slices (same SOPInstanceUID, or same position)", () => {
    expectError(() => readCtSeries([...base.files, base.files[3]!]), /duplicated slice: files 3 and 5 have the same SOPInstanceUID/);
    const again = syntheticSeries(shape, [2, 1, 1], { seed: "again", seriesInstanceUid: uid }).files;
    expectError(() => readCtSeries([...base.files, again[1]!]), /duplicated slice position: files \d and \d are both at 14\.500 mm along the slice normal/);
  });

  it("mixed series: series UID, orientation, size, pixel spacing", () => {
    const other = syntheticSeries(shape, [2, 1, 1], { seed: "other" });
    expectError(() => readCtSeries([...base.files, other.files[0]!]), new RegExp(`mixed series: file 5 belongs to series ${other.series.reference.seriesInstanceUid.replace(/\./g, "\\.")}`));
    const tilted = writeCtSeries(new Float32Array(16), [1, 4, 4], { origin: [0, 0, 100], rowDirection: [0, 1, 0], columnDirection: [1, 0, 0], spacing: [2, 1, 1] }, { seriesInstanceUid: uid });
    expectError(() => readCtSeries([...base.files, ...tilted]), /mixed series: file 5 has ImageOrientationPatient \[0,1,0,1,0,0\], file 0 \[1,0,0,0,1,0\]/);
    const bigger = writeCtSeries(new Float32Array(20), [1, 4, 5], { origin: [0, 0, 100], ...AXIAL, spacing: [2, 1, 1] }, { seriesInstanceUid: uid });
    expectError(() => readCtSeries([...base.files, ...bigger]), /mixed series: file 5 is 4×5 pixels, file 0 4×4/);
    const finer = writeCtSeries(new Float32Array(16), [1, 4, 4], { origin: [0, 0, 100], ...AXIAL, spacing: [2, 0.5, 1] }, { seriesInstanceUid: uid });
    expectError(() => readCtSeries([...base.files, ...finer]), /mixed series: file 5 has PixelSpacing \[0\.5,1\], file 0 \[1,1\]/);
    const shifted = writeCtSeries(new Float32Array(16), [1, 4, 4], { origin: [-25, -20, 12.5 + 10], ...AXIAL, spacing: [2, 1, 1] }, { seriesInstanceUid: uid });
    expectError(() => readCtSeries([...base.files, ...shifted]), /slices are not aligned: file 5 is shifted by \[5\.000,0\.000\] pixels/);
  });

  it("no files, a non-DICOM file in the series (named by index), missing geometry", () => {
    expectError(() => readCtSeries([]), /no files given/);
    expectError(() => readCtSeries([base.files[0]!, new Uint8Array(500)]), /not a DICOM file.*\(file 1\)/);
    expectError(() => readCtSeries([readDicomWithout(base.files[0]!)]), /series file 0: \(0020,0032\) ImagePositionPatient needs 3 value\(s\), has 0/);
  });
});

/** The file with ImagePositionPatient's value blanked (same length, so offsets stay valid). */
function readDicomWithout(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const e = readDicom(out).dataset.element(TAGS.ImagePositionPatient)!;
  e.bytes.fill(0x20);
  return out;
}

import { describe, expect, it } from "vitest";
import { gzipSync } from "fflate";
import { readNifti, writeNifti, writeMaskLike, NiftiError, type NiftiDtype } from "../../src/io/nifti.ts";

const shape: [number, number, number] = [3, 4, 5];
const n = 60;
const ramp = Float32Array.from({ length: n }, (_, i) => i - 20);

describe("NIfTI-1", () => {
  it("round-trips every datatype, plain and gzip, with spacing and shape", () => {
    const types: NiftiDtype[] = ["int8", "int16", "int32", "float32", "float64"];
    for (const datatype of types)
      for (const gzip of [false, true]) {
        const bytes = writeNifti({ data: ramp, shape, spacing: [2.5, 0.9, 0.8] }, { datatype, gzip });
        const v = readNifti(bytes);
        expect(v.datatype).toBe(datatype);
        expect(v.shape).toEqual(shape);
        expect(v.spacing.map((s) => +s.toFixed(5))).toEqual([2.5, 0.9, 0.8]);
        expect([...v.data]).toEqual([...ramp]);
      }
    const pos = Float32Array.from({ length: n }, (_, i) => i);
    for (const datatype of ["uint8", "uint16"] as const) expect([...readNifti(writeNifti({ data: pos, shape, spacing: [1, 1, 1] }, { datatype })).data]).toEqual([...pos]);
  });

  it("applies and writes scl_slope / scl_inter (HU stored as int16)", () => {
    const hu = Float32Array.from({ length: n }, (_, i) => -1024 + 2 * i);
    const bytes = writeNifti({ data: hu, shape, spacing: [1, 1, 1] }, { datatype: "int16", slope: 2, inter: -1024 });
    const dv = new DataView(bytes.buffer);
    expect(dv.getInt16(352, true)).toBe(0);
    expect([...readNifti(bytes).data]).toEqual([...hu]);
  });

  it("keeps the header (sform affine) when writing a mask like a CT", () => {
    const ct = readNifti(writeNifti({ data: ramp, shape, spacing: [2, 1, 1] }));
    const h = new DataView(ct.header.buffer, ct.header.byteOffset);
    h.setFloat32(280 + 12, -100, true); // sform translation x
    const mask = readNifti(writeMaskLike(ct, ramp.map((v) => (v > 0 ? 1 : 0)), { gzip: true }));
    expect(mask.datatype).toBe("uint8");
    expect(mask.affine[0]![3]).toBe(-100);
    expect(mask.affine).toEqual(readNifti(writeNifti(ct)).affine.map((r, i) => (i === 0 ? [r[0], r[1], r[2], -100] : r)));
    expect([...mask.data]).toEqual([...ramp].map((v) => (v > 0 ? 1 : 0)));
  });

  it("reads big-endian files and qform-only affines", () => {
    const le = writeNifti({ data: ramp, shape, spacing: [3, 2, 1] }, { datatype: "int16" });
    const be = new Uint8Array(le.length);
    be.set(le);
    const src = new DataView(le.buffer), dst = new DataView(be.buffer);
    const fields: [number, number, number][] = [[0, 4, 1], [40, 2, 8], [70, 2, 2], [76, 4, 8], [108, 4, 3], [252, 2, 2], [256, 4, 6], [280, 4, 12]];
    for (const [o, size, count] of fields)
      for (let k = 0; k < count; k++) {
        const at = o + k * size;
        if (size === 2) dst.setInt16(at, src.getInt16(at, true), false);
        else dst.setFloat32(at, src.getFloat32(at, true), false);
      }
    dst.setInt32(0, 348, false);
    for (let i = 0; i < n; i++) dst.setInt16(352 + 2 * i, src.getInt16(352 + 2 * i, true), false);
    // qform: identity rotation, translation (10, 20, 30), sform off
    dst.setInt16(254, 0, false);
    dst.setInt16(252, 1, false);
    [0, 0, 0, 10, 20, 30].forEach((x, i) => dst.setFloat32(256 + 4 * i, x, false));
    const v = readNifti(be);
    expect([...v.data]).toEqual([...ramp]);
    expect(v.affine).toEqual([[1, 0, 0, 10], [0, 2, 0, 20], [0, 0, 3, 30], [0, 0, 0, 1]]);
  });

  it("refuses bad files with a message naming the problem, before allocating", () => {
    const good = writeNifti({ data: ramp, shape, spacing: [1, 1, 1] });
    const bad = (edit: (dv: DataView, b: Uint8Array) => void) => {
      const b = Uint8Array.from(good);
      edit(new DataView(b.buffer), b);
      return b;
    };
    expect(() => readNifti(good.subarray(0, 100))).toThrow(/truncated file: 100 bytes/);
    expect(() => readNifti(good.subarray(0, 400))).toThrow(/truncated data/);
    expect(() => readNifti(bad((dv) => dv.setInt32(0, 540, true)))).toThrow(/sizeof_hdr is 540/);
    expect(() => readNifti(bad((_, b) => b.set([0x6e, 0x2b, 0x32], 344)))).toThrow(/bad magic/);
    expect(() => readNifti(bad((dv) => dv.setInt16(42, 0, true)))).toThrow(/must all be ≥ 1/);
    expect(() => readNifti(bad((dv) => [42, 44, 46].forEach((o) => dv.setInt16(o, 32767, true))))).toThrow(/truncated data/);
    expect(() => readNifti(bad((dv) => dv.setInt16(70, 128, true)))).toThrow(/unsupported datatype code 128/);
    expect(() => readNifti(gzipSync(good).subarray(0, 30))).toThrow(NiftiError);
    expect(() => readNifti(bad((dv) => dv.setFloat32(352, NaN, true)))).toThrow(/voxel 0 is NaN/);
    expect(() => writeNifti({ data: ramp, shape, spacing: [1, 1, 1] }, { datatype: "uint8" })).toThrow(/does not fit uint8/);
    expect(() => writeNifti({ data: ramp.subarray(1), shape, spacing: [1, 1, 1] })).toThrow(/59 values/);
  });
});

import { describe, expect, it } from "vitest";
import { DicomDataset, DicomError, MAX_SEQUENCE_DEPTH, TAGS, decodeFrames, readCtSeries, readDicom, writeDicom } from "../../src/io/dicom/index.ts";
import { PulmoError } from "../../src/runtime/errors.ts";
import { el, expected, fixture, item, itemEnd, part10, seqEnd } from "./dicom_helpers.ts";

const throwsDicom = (f: () => unknown, message: RegExp) => {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(DicomError);
  expect(caught).toBeInstanceOf(PulmoError);
  expect((caught as Error).message).toMatch(message);
};

describe("DICOM Part 10 reader on real files (values from pydicom / dcmtk, scripts/dicom_expected.py)", () => {
  for (const [name, want] of Object.entries(expected)) {
    it(`decodes ${name} (${want.transferSyntaxUid}) like the reference decoder`, () => {
      const file = readDicom(fixture(name));
      expect(file.transferSyntaxUid).toBe(want.transferSyntaxUid);
      const frames = decodeFrames(file.dataset, file.transferSyntaxUid);
      expect(frames.length).toBe(want.frames);
      let sum = 0, min = Infinity, max = -Infinity;
      for (const f of frames) for (const v of f) {
        sum += v;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      expect([sum, min, max]).toEqual([want.storedSum, want.storedMin, want.storedMax]);
      for (const s of want.samples) expect(frames[0]![s.row * want.columns + s.column]).toBe(s.stored);
    });
  }

  it("gives HU of the real CT slices (RLE, JPEG Lossless, native) through readCtSeries", () => {
    for (const name of ["CT_small.dcm", "rle.dcm", "jpeg_lossless_sel1.dcm"]) {
      const want = expected[name]!;
      const s = readCtSeries([fixture(name)]);
      expect(s.shape).toEqual([1, want.rows, want.columns]);
      let min = Infinity, max = -Infinity, sum = 0;
      for (const v of s.data) {
        min = Math.min(min, v);
        max = Math.max(max, v);
        sum += v;
      }
      expect([min, max]).toEqual([want.huMin, want.huMax]);
      expect(sum / s.data.length).toBeCloseTo(want.huMean!, 6);
    }
  });

  it("reads the dataset API: strings, numbers, sequences, a file without preamble or meta (pydicom's rtstruct.dcm)", () => {
    const ct = readDicom(fixture("CT_small.dcm")).dataset;
    expect(ct.getString(TAGS.Modality)).toBe("CT");
    expect(ct.getNumbers(TAGS.PixelSpacing)).toEqual([0.661468, 0.661468]);
    expect(ct.getNumber(TAGS.Rows)).toBe(128);
    expect(ct.getNumbers(TAGS.ImagePositionPatient)).toEqual([-158.135803, -179.035797, -75.699997]);
    const rt = readDicom(fixture("rtstruct.dcm"));
    expect(rt.transferSyntaxUid).toBe("1.2.840.10008.1.2");
    expect(rt.meta.elements.size).toBe(0);
    const rois = rt.dataset.getSequence(TAGS.StructureSetROISequence);
    expect(rois.map((r) => r.getString(TAGS.ROIName))).toEqual(["patient", "Isocenter 1", "Isocenter 2"]);
    const contour = rt.dataset.getSequence(TAGS.ROIContourSequence)[0]!.getSequence(TAGS.ContourSequence)[0]!;
    expect(contour.getNumbers(TAGS.ContourData).slice(0, 3)).toEqual([-200, 150, -200]);
    throwsDicom(() => ct.getSequence(TAGS.Modality), /\(0008,0060\) Modality has VR CS, not a sequence/);
  });

  it("names the transfer syntax when no decoder exists", () => {
    const f = readDicom(fixture("jpeg_2000.dcm"));
    throwsDicom(() => decodeFrames(f.dataset, f.transferSyntaxUid), /JPEG 2000 Image Compression \(1\.2\.840\.10008\.1\.2\.4\.91\): no decoder in Pulmo/);
    throwsDicom(() => readCtSeries([fixture("jpeg_2000.dcm")]), /JPEG 2000 Image Compression \(1\.2\.840\.10008\.1\.2\.4\.91\): no decoder in Pulmo \(file 0\)/);
  });

  it("parses sequences and items of defined and undefined length, and encapsulated fragments", () => {
    const name = el(0x30060026, "LO", "AB");
    const bytes = part10([
      ...el(0x00080060, "CS", "CT"),
      ...el(0x30060020, "SQ", [...item([...name, ...itemEnd()], 0xffffffff), ...item(name), ...seqEnd()], 0xffffffff),
      ...el(0x30060039, "SQ", item(name)),
      ...el(0x7fe00010, "OB", [...item([]), ...item([1, 2, 3, 4]), ...item([5, 6]), ...seqEnd()], 0xffffffff),
    ]);
    const ds = readDicom(bytes).dataset;
    expect(ds.getSequence(0x30060020).map((i) => i.getString(0x30060026))).toEqual(["AB", "AB"]);
    expect(ds.getSequence(0x30060039).length).toBe(1);
    expect(ds.element(TAGS.PixelData)!.encapsulated!.fragments.map((f) => [...f])).toEqual([[1, 2, 3, 4], [5, 6]]);
  });
});

/** A 2-frame 16-bit image as a dataset; pixel data set by the caller. */
function image(bitsStored: number, highBit: number, signed: boolean, frames = 1): DicomDataset {
  return new DicomDataset()
    .set(TAGS.SOPClassUID, "UI", "1.2.840.10008.5.1.4.1.1.7")
    .set(TAGS.SOPInstanceUID, "UI", "2.25.1")
    .set(TAGS.Rows, "US", 2)
    .set(TAGS.Columns, "US", 2)
    .set(TAGS.NumberOfFrames, "IS", frames)
    .set(TAGS.BitsAllocated, "US", 16)
    .set(TAGS.BitsStored, "US", bitsStored)
    .set(TAGS.HighBit, "US", highBit)
    .set(TAGS.PixelRepresentation, "US", signed ? 1 : 0);
}

/** RLE Lossless frame of 16-bit samples: two segments (high bytes, low bytes), literal runs only. */
function rleFrame(samples: number[]): number[] {
  const hi = samples.map((v) => (v >> 8) & 0xff), lo = samples.map((v) => v & 0xff);
  const seg = (b: number[]) => [b.length - 1, ...b];
  const header = new Array(64).fill(0);
  const put = (at: number, v: number) => [0, 1, 2, 3].forEach((i) => (header[at + i] = (v >>> (8 * i)) & 0xff));
  put(0, 2);
  put(4, 64);
  put(8, 64 + seg(hi).length);
  return [...header, ...seg(hi), ...seg(lo)];
}

describe("pixel formats (files made with our writer, decoded by our reader)", () => {
  it("BitsStored/HighBit masking and sign extension", () => {
    const decode = (ds: DicomDataset) => {
      const f = readDicom(writeDicom(ds));
      return [...decodeFrames(f.dataset, f.transferSyntaxUid)[0]!];
    };
    const raw = Uint16Array.from([0x0fff, 0x0800, 0xf123, 0x07ff]);
    // 12 stored bits at the bottom, signed: 0xfff → −1, 0x800 → −2048, high nibble ignored
    expect(decode(image(12, 11, true).set(TAGS.PixelData, "OW", raw))).toEqual([-1, -2048, 0x123, 2047]);
    expect(decode(image(12, 11, false).set(TAGS.PixelData, "OW", raw))).toEqual([4095, 2048, 0x123, 2047]);
    // 12 stored bits at the top (HighBit 15): shifted down by 4
    expect(decode(image(12, 15, false).set(TAGS.PixelData, "OW", raw))).toEqual([0x0ff, 0x080, 0xf12, 0x07f]);
    expect(decode(image(16, 15, true).set(TAGS.PixelData, "OW", raw))).toEqual([4095, 2048, 0xf123 - 65536, 2047]);
  });

  it("multi-frame RLE, split by the basic offset table or one fragment per frame", () => {
    const f1 = rleFrame([1, 2, 300, -5 & 0xffff]), f2 = rleFrame([7, 0x8000, 9, 10]);
    const bot = [0, 0, 0, 0, ...[8 + f1.length, 0, 0, 0].map((v, i) => (i === 0 ? v & 0xff : i === 1 ? (v >> 8) & 0xff : 0))];
    for (const table of [bot, []]) {
      const body = [...el(0x00280010, "US", [2, 0]), ...el(0x00280011, "US", [2, 0]), ...el(0x00280008, "IS", "2 "), ...el(0x00280100, "US", [16, 0]), ...el(0x00280103, "US", [1, 0]),
        ...el(0x7fe00010, "OB", [...item(table), ...item(f1), ...item(f2), ...seqEnd()], 0xffffffff)];
      const f = readDicom(part10(body, "1.2.840.10008.1.2.5"));
      expect(decodeFrames(f.dataset, f.transferSyntaxUid).map((a) => [...a])).toEqual([[1, 2, 300, -5], [7, -32768, 9, 10]]);
    }
  });
});

describe("DICOM reader: bad input throws DicomError naming the problem", () => {
  it("not DICOM, empty, truncated", () => {
    throwsDicom(() => readDicom(new TextEncoder().encode("hello world, this is not a medical image at all")), /not a DICOM file/);
    throwsDicom(() => readDicom(new Uint8Array(0)), /not a DICOM file: 0 bytes/);
    throwsDicom(() => readDicom(new Uint8Array(300)), /not a DICOM file: no 'DICM' magic/);
    const ct = fixture("CT_small.dcm");
    throwsDicom(() => readCtSeries([ct.subarray(0, ct.length - 1000)]), /PixelData .* past the end of the data|PixelData has \d+ bytes/);
    throwsDicom(() => readDicom(ct.subarray(0, 300)), /truncated|past the end/);
    throwsDicom(() => readDicom(ct.subarray(0, 132)), /file meta group \(0002,xxxx\) missing/);
  });

  it("lengths past the end, bad VRs, undefined lengths where not allowed", () => {
    throwsDicom(() => readDicom(part10(el(0x00100010, "PN", "AB", 500))), /\(0010,0010\) PatientName at byte \d+ has length 500, past the end of the data \(2 bytes left\)/);
    throwsDicom(() => readDicom(part10([0x10, 0, 0x10, 0, 0x5a, 0x5a, 2, 0, 65, 66])), /invalid VR 'ZZ' for \(0010,0010\)/);
    throwsDicom(() => readDicom(part10(el(0x00100010, "UT", "AB", 0xffffffff))), /undefined length, allowed only for sequences and pixel data/);
    throwsDicom(() => readDicom(part10(el(0x30060020, "SQ", item(el(0x30060026, "LO", "AB"), 100)))), /item in \(3006,0020\) StructureSetROISequence .* has length 100, past the end of its sequence/);
    throwsDicom(() => readDicom(part10(el(0x7fe00010, "OB", [...item([]), ...item([1, 2], 64)], 0xffffffff))), /pixel data fragment .* has length 64, past the end/);
  });

  it("sequences and items without delimiters, misplaced delimiters, nesting too deep", () => {
    const name = el(0x30060026, "LO", "AB");
    throwsDicom(() => readDicom(part10(el(0x30060020, "SQ", item(name), 0xffffffff))), /sequence \(3006,0020\) StructureSetROISequence has no sequence delimiter/);
    throwsDicom(() => readDicom(part10(el(0x30060020, "SQ", [...item(name, 0xffffffff), ...seqEnd()]))), /item of undefined length has no item delimiter/);
    throwsDicom(() => readDicom(part10(el(0x30060020, "SQ", [...el(0x00100010, "PN", "AB")]))), /expected an item \(FFFE,E000\) at byte \d+, found \(0010,0010\) PatientName/);
    throwsDicom(() => readDicom(part10(itemEnd())), /unexpected item delimiter/);
    throwsDicom(() => readDicom(part10(el(0x7fe00010, "OB", [...item([]), ...item([1, 2])], 0xffffffff))), /truncated: pixel data fragment header/);
    let nested = name;
    for (let i = 0; i <= MAX_SEQUENCE_DEPTH; i++) nested = el(0x30060020, "SQ", [...item(nested, 0xffffffff), ...itemEnd(), ...seqEnd()], 0xffffffff);
    throwsDicom(() => readDicom(part10(nested)), new RegExp(`nested deeper than ${MAX_SEQUENCE_DEPTH} levels`));
  });

  it("corrupt deflate stream, missing transfer syntax", () => {
    throwsDicom(() => readDicom(part10([1, 2, 3, 4, 5, 6, 7, 8, 9], "1.2.840.10008.1.2.1.99")), /corrupt deflated dataset/);
    const noTs = Uint8Array.from([...new Array(128).fill(0), 0x44, 0x49, 0x43, 0x4d, ...el(0x00020002, "UI", "1.2")]);
    throwsDicom(() => readDicom(noTs), /file meta group has no TransferSyntaxUID \(0002,0010\)/);
  });

  it("pixel data that does not match the image attributes, corrupt RLE and JPEG streams", () => {
    const image = (ts: string, pixel: number[], rows = 2) =>
      part10([...el(0x00280010, "US", [rows & 0xff, rows >> 8]), ...el(0x00280011, "US", [2, 0]), ...el(0x00280100, "US", [16, 0]), ...el(0x7fe00010, "OB", pixel, ts.endsWith(".1") ? undefined : 0xffffffff)], ts);
    const decode = (b: Uint8Array) => {
      const f = readDicom(b);
      return decodeFrames(f.dataset, f.transferSyntaxUid);
    };
    throwsDicom(() => decode(image("1.2.840.10008.1.2.1", [1, 2, 3, 4])), /PixelData has 4 bytes, but 1 frame\(s\) of 2×2 16-bit pixels need 8/);
    throwsDicom(() => decode(image("1.2.840.10008.1.2.5", [...item([]), ...item([1, 0, 0, 0]), ...seqEnd()])), /RLE frame of 4 bytes is shorter than its 64-byte header/);
    const rleHeader = [2, 0, 0, 0, 64, 0, 0, 0, 200, 0, 0, 0, ...new Array(52).fill(0)];
    throwsDicom(() => decode(image("1.2.840.10008.1.2.5", [...item([]), ...item([...rleHeader, 3, 1, 2]), ...seqEnd()])), /RLE segment 1 spans bytes 64\.\.200, outside the 67-byte frame/);
    throwsDicom(() => decode(image("1.2.840.10008.1.2.5", [...item([]), ...item([...rleHeader.slice(0, 8), 66, 0, 0, 0, ...rleHeader.slice(12), 0x05, 1, 0xfe, 7]), ...seqEnd()])), /RLE literal run of 6 bytes .* passes the end of its segment/);
    throwsDicom(() => decode(image("1.2.840.10008.1.2.5", [...item([]), ...item([...rleHeader, 0xff, 7, 0xff, 7]), ...seqEnd()], 4000)), /RLE frame of 68 bytes cannot hold 4000×2 pixels/);
    throwsDicom(() => decode(image("1.2.840.10008.1.2.4.70", [...item([]), ...item([0xff, 0xd8, 0xff, 0xc3, 0, 11, 16, 0, 2, 0, 2, 1, 1, 0x11, 0, 0xff, 0xd9, 0, 0]), ...seqEnd()])), /JPEG Lossless decoding failed|JPEG Lossless decoder returned/);
    throwsDicom(() => decode(image("1.2.840.10008.1.2.4.70", [...item([]), ...item([0xff, 0xd8, 0xff, 0xc3, 0, 11, 16, 0, 9, 0, 2, 1, 1, 0x11, 0]), ...seqEnd()])), /JPEG Lossless frame is 2×9, but the dataset says Columns 2 × Rows 2/);
    throwsDicom(() => decode(image("1.2.840.10008.1.2.4.70", [...item([]), ...item([1, 2, 3, 4]), ...seqEnd()])), /does not start with an SOI marker/);
    // damaged entropy-coded data may decode to wrong values, but must never escape as another error
    const jl = fixture("jpeg_lossless_sel1.dcm");
    for (const [from, to] of [[20000, 40000], [jl.length - 5000, jl.length - 4000], [1700, 1800]] as const) {
      const damaged = jl.slice();
      damaged.fill(0xff, from, to);
      const f = readDicom(damaged);
      try {
        expect(decodeFrames(f.dataset, f.transferSyntaxUid)[0]!.length).toBe(400 * 512);
      } catch (e) {
        expect(e).toBeInstanceOf(DicomError);
      }
    }
  });
});

// DICOM fuzz targets: Part 10 reading with pixel decoding, CT series assembly, RTSTRUCT reading
// (ROI list and rasterisation). Seeds are the reader's real fixtures (pydicom/dcmtk files: implicit,
// explicit big-endian, deflated, RLE, JPEG Lossless, JPEG 2000, RTSTRUCT) and small files written
// by the project's own writers. Field mutations find elements by their tag bytes and rewrite
// lengths and values (extreme numbers, undefined lengths, lengths past the end, stripped
// delimiters, deep nesting).
import fs from "node:fs";
import { join } from "node:path";
import {
  TAGS, decodeFrames, listRois, rasterizeRoi, readCtSeries, readDicom, writeCtSeries, writeRtstructRois, type CtSeries,
} from "../../src/io/dicom/index.ts";
import type { FieldMutation } from "./mutate.ts";
import type { FuzzTarget } from "./targets.ts";

const pickOf = <T>(values: readonly T[], pick: number): T => values[pick % values.length]!;
const FIXTURES = join(import.meta.dirname, "..", "fixtures", "dicom");
const fixture = (name: string) => new Uint8Array(fs.readFileSync(join(FIXTURES, name)));

const LONG = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]);
const ascii = (b: Uint8Array, at: number, n: number) => String.fromCharCode(...b.subarray(at, at + n));

interface ElementAt {
  /** offset of the tag */
  at: number;
  /** offset and width of the length field */
  lengthAt: number;
  lengthBytes: 2 | 4;
  valueAt: number;
  length: number;
  le: boolean;
}

/** Every occurrence of `tag` that looks like an element header (explicit VR: a VR follows; else
 * implicit little endian). Byte-pattern search, so it also finds elements inside sequences. */
export function findElements(b: Uint8Array, tag: number): ElementAt[] {
  const g = tag >>> 16, e = tag & 0xffff;
  const out: ElementAt[] = [];
  for (const le of [true, false]) {
    const pat = le ? [g & 0xff, g >> 8, e & 0xff, e >> 8] : [g >> 8, g & 0xff, e >> 8, e & 0xff];
    for (let i = 0; i + 8 <= b.length; i++) {
      if (b[i] !== pat[0] || b[i + 1] !== pat[1] || b[i + 2] !== pat[2] || b[i + 3] !== pat[3]) continue;
      const dv = new DataView(b.buffer, b.byteOffset);
      const vr = ascii(b, i + 4, 2);
      if (/^[A-Z]{2}$/.test(vr)) {
        if (LONG.has(vr)) {
          if (i + 12 > b.length) continue;
          out.push({ at: i, lengthAt: i + 8, lengthBytes: 4, valueAt: i + 12, length: dv.getUint32(i + 8, le), le });
        } else out.push({ at: i, lengthAt: i + 6, lengthBytes: 2, valueAt: i + 8, length: dv.getUint16(i + 6, le), le });
      } else if (le) out.push({ at: i, lengthAt: i + 4, lengthBytes: 4, valueAt: i + 8, length: dv.getUint32(i + 4, true), le });
    }
  }
  return out;
}

function setLength(b: Uint8Array, el: ElementAt, value: number): Uint8Array {
  const out = b.slice();
  const dv = new DataView(out.buffer);
  if (el.lengthBytes === 2) dv.setUint16(el.lengthAt, value & 0xffff, el.le);
  else dv.setUint32(el.lengthAt, value >>> 0, el.le);
  return out;
}

/** Replaces an element's value (length field rewritten; padded to even length). */
export function setValue(b: Uint8Array, el: ElementAt, value: Uint8Array): Uint8Array {
  const v = value.length % 2 ? Uint8Array.from([...value, 0x20]) : value;
  if (el.lengthBytes === 2 && v.length > 0xffff) return b;
  const end = Math.min(b.length, el.valueAt + el.length);
  const out = new Uint8Array(el.valueAt + v.length + (b.length - end));
  out.set(b.subarray(0, el.valueAt));
  out.set(v, el.valueAt);
  out.set(b.subarray(end), el.valueAt + v.length);
  return setLength(out, el, v.length);
}

const text = (s: string) => new TextEncoder().encode(s);
const u16 = (v: number, le: boolean) => {
  const o = new Uint8Array(2);
  new DataView(o.buffer).setUint16(0, v & 0xffff, le);
  return o;
};

/** Mutation of the element `tag` (the `pick`-th occurrence) with `edit`. */
const onTag = (tag: number, edit: (b: Uint8Array, el: ElementAt, pick: number) => Uint8Array): FieldMutation => (b, pick) => {
  const els = findElements(b, tag);
  if (!els.length) return b;
  return edit(b, pickOf(els, pick), Math.floor(pick / els.length));
};

const EXTREME_LENGTHS = [0xffffffff, 0xfffffffe, 0x7fffffff, 0x80000000, 0xffff, 0, 1, 3];
const US_VALUES = [0, 1, 65535, 32768, 4096, 7, 12, 32, 64];
const NUMBER_STRINGS = ["2147483647", "-1", "0", "1e9", "NaN", "Infinity", "1e308", "-0", "3.5", "", "\\\\", "9".repeat(60)];

const usField = (tag: number) => onTag(tag, (b, el, pick) => (el.length === 2 ? setValue(b, el, u16(pickOf(US_VALUES, pick), el.le)) : b));
const stringField = (tag: number, values: readonly string[]) => onTag(tag, (b, el, pick) => setValue(b, el, text(pickOf(values, pick))));

/** Item/sequence delimiters (FFFE,E00D / FFFE,E0DD) removed: undefined lengths without an end. */
function stripDelimiters(b: Uint8Array, pick: number): Uint8Array {
  const keep: number[] = [];
  let removed = 0;
  for (let i = 0; i < b.length; i++) {
    const isDelim = i + 8 <= b.length && b[i] === 0xfe && b[i + 1] === 0xff && (b[i + 2] === 0x0d || b[i + 2] === 0xdd) && b[i + 3] === 0xe0;
    if (isDelim && (pick === 0 || removed % (pick % 3 + 1) === 0)) {
      removed++;
      i += 7;
      continue;
    }
    keep.push(b[i]!);
  }
  return Uint8Array.from(keep);
}

/** Every SQ/item length set to undefined (0xFFFFFFFF), so the parser must find delimiters. */
function undefinedLengths(b: Uint8Array, pick: number): Uint8Array {
  const out = b.slice();
  const dv = new DataView(out.buffer);
  let n = 0;
  for (let i = 0; i + 12 <= out.length; i++) {
    if (ascii(out, i + 4, 2) === "SQ" && out[i + 6] === 0 && out[i + 7] === 0 && n++ % (pick % 2 + 1) === 0) dv.setUint32(i + 8, 0xffffffff, true);
    if (out[i] === 0xfe && out[i + 1] === 0xff && out[i + 2] === 0x00 && out[i + 3] === 0xe0 && pick % 3 === 0) dv.setUint32(i + 4, 0xffffffff, true);
  }
  return out;
}

/** A file of `depth` nested undefined-length sequences, with or without its delimiters. */
function nestedSequences(depth: number, delimited: boolean): Uint8Array {
  const ts = text("1.2.840.10008.1.2.1\0");
  const metaEl = [0x02, 0x00, 0x10, 0x00, 0x55, 0x49, ts.length, 0, ...ts];
  const head = [...new Array(128).fill(0), 0x44, 0x49, 0x43, 0x4d, 0x02, 0x00, 0x00, 0x00, 0x55, 0x4c, 4, 0, metaEl.length, 0, 0, 0, ...metaEl];
  const open = [0x08, 0x00, 0x15, 0x11, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff];
  const close = [0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0, 0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0];
  const out = new Uint8Array(head.length + depth * (open.length + (delimited ? close.length : 0)));
  out.set(head);
  for (let k = 0; k < depth; k++) out.set(open, head.length + k * open.length);
  if (delimited) for (let k = 0; k < depth; k++) out.set(close, head.length + depth * open.length + k * close.length);
  return out;
}

const TRANSFER_SYNTAXES = [
  "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5",
  "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.90", "1.2.3", "",
];

const DICOM_FIELDS: FieldMutation[] = [
  // any element's length: undefined, huge, past the end, odd (found by a VR at a random spot)
  (b, pick) => {
    const start = pick % Math.max(1, b.length - 12);
    for (let i = start; i + 12 <= b.length; i++) {
      const vr = ascii(b, i + 4, 2);
      if (!/^[A-Z]{2}$/.test(vr)) continue;
      const el = findElements(b.subarray(i, i + 12), ((b[i + 1]! << 24) | (b[i]! << 16) | (b[i + 3]! << 8) | b[i + 2]!) >>> 0)[0];
      if (!el) continue;
      return setLength(b, { ...el, at: el.at + i, lengthAt: el.lengthAt + i, valueAt: el.valueAt + i }, pickOf(EXTREME_LENGTHS, Math.floor(pick / 7)));
    }
    return b;
  },
  onTag(TAGS.PixelData, (b, el, pick) => setLength(b, el, pickOf([...EXTREME_LENGTHS, el.length + 2, el.length - 2, b.length], pick))),
  ...[TAGS.Rows, TAGS.Columns, TAGS.BitsAllocated, TAGS.BitsStored, TAGS.HighBit, TAGS.PixelRepresentation, TAGS.SamplesPerPixel].map(usField),
  // Rows and Columns both 65535: 4.3e9 pixels claimed
  (b) => [TAGS.Rows, TAGS.Columns].reduce((x, t) => onTag(t, (y, el) => (el.length === 2 ? setValue(y, el, u16(65535, el.le)) : y))(x, 0), b),
  stringField(TAGS.NumberOfFrames, NUMBER_STRINGS),
  stringField(TAGS.TransferSyntaxUID, TRANSFER_SYNTAXES),
  stringField(TAGS.RescaleSlope, NUMBER_STRINGS),
  stringField(TAGS.RescaleIntercept, NUMBER_STRINGS),
  (b, pick) => stripDelimiters(b, pick),
  (b, pick) => undefinedLengths(b, pick),
  (_b, pick) => nestedSequences(pickOf([10, 33, 1000, 20_000], pick), pick % 2 === 0),
  // encapsulated pixel data: the basic offset table and fragment lengths
  onTag(TAGS.PixelData, (b, el, pick) => {
    if (el.length !== 0xffffffff) return b;
    const out = b.slice();
    const dv = new DataView(out.buffer);
    const at = el.valueAt + 4 + 8 * (pick % 3);
    if (at + 4 <= out.length) dv.setUint32(at, pickOf(EXTREME_LENGTHS, Math.floor(pick / 3)), true);
    return out;
  }),
  // the JPEG frame header (SOF3: height, width, components) and RLE segment table
  (b, pick) => {
    const out = b.slice();
    for (let i = 0; i + 9 < out.length; i++)
      if (out[i] === 0xff && out[i + 1] === 0xc3) {
        const dv = new DataView(out.buffer);
        const v = pickOf([65535, 0, 1, 40000], pick);
        dv.setUint16(i + 5 + (pick % 2) * 2, v, false);
        if (pick % 5 === 0) out[i + 9] = pickOf([0, 4, 255], pick);
        return out;
      }
    return b;
  },
  onTag(TAGS.PixelData, (b, el, pick) => {
    if (el.length !== 0xffffffff) return b;
    // first fragment after the offset table item: RLE header = segment count + 15 offsets
    const bot = new DataView(b.buffer, b.byteOffset).getUint32(el.valueAt + 4, true);
    const frag = el.valueAt + 8 + bot + 8;
    if (frag + 64 > b.length) return b;
    const out = b.slice();
    new DataView(out.buffer).setUint32(frag + 4 * (pick % 16), pickOf([0, 15, 16, 0xffffffff, 64, 0x7fffffff, b.length], Math.floor(pick / 16)), true);
    return out;
  }),
];

function dicomSeeds(): Uint8Array[] {
  const names = ["CT_small.dcm", "deflated.dcm", "explicit_big.dcm", "implicit_little.dcm", "jpeg_2000.dcm", "jpeg_lossless_sel1.dcm", "rle.dcm", "rtstruct.dcm"];
  const seeds: Uint8Array[] = names.filter((n) => fs.existsSync(join(FIXTURES, n))).map(fixture);
  seeds.push(...series().files.slice(0, 1), rtstructOf(series().series));
  return seeds;
}

let cached: { files: Uint8Array[]; series: CtSeries } | undefined;
/** A small CT series (3 slices of 8×8) written by the project's writer. */
function series(): { files: Uint8Array[]; series: CtSeries } {
  if (cached) return cached;
  const shape: [number, number, number] = [3, 8, 8];
  const hu = Float32Array.from({ length: 3 * 64 }, (_, i) => ((i * 37) % 2000) - 1000);
  const files = writeCtSeries(hu, shape, { origin: [-30, -20, 12.5], rowDirection: [1, 0, 0], columnDirection: [0, 1, 0], spacing: [2.5, 0.8, 0.8] }, { seed: "fuzz" });
  cached = { files, series: readCtSeries(files) };
  return cached;
}

function rtstructOf(s: CtSeries): Uint8Array {
  const [d, h, w] = s.shape;
  const ring = new Uint8Array(d * h * w);
  const box = new Uint8Array(d * h * w);
  for (let z = 0; z < d; z++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const r = Math.hypot(y - 3.5, x - 3.5);
        if (r < 3.5 && r > 1.5) ring[(z * h + y) * w + x] = 1;
        if (z === 1 && y >= 2 && y < 5 && x >= 1 && x < 6) box[(z * h + y) * w + x] = 1;
      }
  return writeRtstructRois([{ name: "GTV", mask: ring, colour: [255, 0, 0] }, { name: "box", mask: box }], s, { seed: "fuzz", date: new Date(0) });
}

/** Pixel decoding expands data: deflate up to ~1032:1 is bounded by the reader's inflate growth,
 * RLE PackBits up to 64:1, stored values are Int32 (4 bytes per 8-bit sample). */
const DICOM_ALLOC_FACTOR = 256;

export function dicomTarget(): FuzzTarget {
  return {
    name: "dicom",
    seeds: dicomSeeds(),
    fields: DICOM_FIELDS,
    run(bytes) {
      const f = readDicom(bytes);
      if (f.dataset.element(TAGS.PixelData)) decodeFrames(f.dataset, f.transferSyntaxUid);
    },
    allocFactor: DICOM_ALLOC_FACTOR,
  };
}

const GEOMETRY_FIELDS: FieldMutation[] = [
  stringField(TAGS.ImagePositionPatient, ["NaN\\NaN\\NaN", "1e308\\0\\0", "-30\\-20\\12.5", "-30\\-20\\15", "-30\\-20\\22.5", "0\\0", "-29\\-20\\15", "Infinity\\0\\0"]),
  stringField(TAGS.ImageOrientationPatient, ["0\\0\\0\\0\\0\\0", "1\\0\\0\\1\\0\\0", "NaN\\0\\0\\0\\1\\0", "1\\0\\0\\0\\1", "0\\1\\0\\1\\0\\0"]),
  stringField(TAGS.PixelSpacing, ["0\\0", "-1\\1", "NaN\\NaN", "1e308\\1e308", "0.8"]),
  stringField(TAGS.SeriesInstanceUID, ["1.2.3", "", "x".repeat(64)]),
  stringField(TAGS.SOPInstanceUID, ["", "1.2.3"]),
];

/** Slice `k` of a series made from one (mutated) slice: the same file moved `k` slice spacings
 * along z with its own SOPInstanceUID, so every mutation reaches all slices consistently (a
 * header claiming 65535×65535 pixels must then be caught by the series reader itself). */
function sliceCopy(b: Uint8Array, k: number): Uint8Array {
  let out = b;
  const pos = findElements(out, TAGS.ImagePositionPatient)[0];
  if (pos) {
    const v = ascii(out, pos.valueAt, Math.min(pos.length, 200)).split("\\").map(Number);
    if (v.length === 3) out = setValue(out, pos, text(`${v[0]}\\${v[1]}\\${v[2]! + 2.5 * k}`));
  }
  const uid = findElements(out, TAGS.SOPInstanceUID)[0];
  if (uid) out = setValue(out, uid, text(`${ascii(out, uid.valueAt, Math.min(uid.length, 60)).replace(/[\0 ]+$/, "")}.${k}`));
  return out;
}

export function dicomSeriesTarget(): FuzzTarget {
  const s = series();
  return {
    name: "dicom_series",
    seeds: [s.files[0]!, s.files[1]!],
    fields: [...DICOM_FIELDS, ...GEOMETRY_FIELDS, ...GEOMETRY_FIELDS],
    // half the inputs: the mutated slice among two valid ones; half: a series of three copies of it
    run: (bytes) =>
      void readCtSeries(bytes.length % 2 ? [s.files[0]!, bytes, s.files[2]!] : [bytes, sliceCopy(bytes, 1), sliceCopy(bytes, 2)]),
    // three slices from one input
    allocFactor: 3 * DICOM_ALLOC_FACTOR,
  };
}

const CONTOUR_FIELDS: FieldMutation[] = [
  stringField(TAGS.ContourData, ["NaN\\NaN\\NaN\\0\\0\\0\\1\\1\\1", "1e308\\1e308\\15\\0\\0\\15\\1\\1\\15", "0\\0\\15", "", "-30\\-20\\15\\-26\\-20\\15\\-26\\-16\\15", "a\\b\\c"]),
  stringField(TAGS.NumberOfContourPoints, NUMBER_STRINGS),
  stringField(0x30060042 /* ContourGeometricType */, ["POINT", "OPEN_PLANAR", "", "CLOSED_PLANAR"]),
  stringField(0x30060022 /* ROINumber */, NUMBER_STRINGS),
  stringField(0x30060084 /* ReferencedROINumber */, NUMBER_STRINGS),
  stringField(0x00081155 /* ReferencedSOPInstanceUID */, ["1.2.3", ""]),
  stringField(TAGS.FrameOfReferenceUID, ["1.2.3", ""]),
];

export function rtstructTarget(): FuzzTarget {
  const s = series();
  return {
    name: "rtstruct",
    seeds: [rtstructOf(s.series), fixture("rtstruct.dcm")],
    fields: [...DICOM_FIELDS, ...CONTOUR_FIELDS, ...CONTOUR_FIELDS],
    run(bytes) {
      for (const roi of listRois(bytes)) rasterizeRoi(bytes, roi.number, s.series);
    },
    // the mask is the series' grid (fixed), contours are parsed from the file
    allocFactor: DICOM_ALLOC_FACTOR,
  };
}

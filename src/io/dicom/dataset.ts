// A parsed (or to-be-written) DICOM dataset: elements by tag, values kept as the file's bytes and
// decoded on request, so reading never copies pixel data and never decodes what nobody asks for.
import { fail } from "./errors.ts";
import { tagName } from "./tags.ts";

export interface DicomElement {
  tag: number;
  vr: string;
  /** the value bytes (for SQ and encapsulated pixel data: empty) */
  bytes: Uint8Array;
  /** sequence items (VR SQ) */
  items?: DicomDataset[];
  /** encapsulated pixel data: the basic offset table item, then the fragments */
  encapsulated?: { offsetTable: Uint8Array; fragments: Uint8Array[] };
}

const STRING_VRS = new Set(["AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"]);
const BINARY_SIZE: Record<string, number> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, SV: 8, UV: 8, AT: 4 };
/** VRs whose values must not be split at backslashes */
const SINGLE_VALUED = new Set(["LT", "ST", "UT", "UR"]);

export type WriteValue = string | number | readonly (string | number)[] | Uint8Array | Int16Array | Uint16Array | DicomDataset[];

export class DicomDataset {
  readonly elements = new Map<number, DicomElement>();
  constructor(
    /** byte order of the binary values in `bytes` */
    readonly littleEndian = true,
    /** decode strings as UTF-8 (SpecificCharacterSet ISO_IR 192) instead of Latin-1 */
    public utf8 = false,
  ) {}

  has(tag: number): boolean {
    const e = this.elements.get(tag);
    return e !== undefined && (e.bytes.length > 0 || (e.items?.length ?? 0) > 0 || e.encapsulated !== undefined);
  }

  element(tag: number): DicomElement | undefined {
    return this.elements.get(tag);
  }

  /** Value of a string VR, trailing spaces/NULs removed; `undefined` when absent or empty. */
  getString(tag: number): string | undefined {
    const e = this.elements.get(tag);
    if (!e || e.bytes.length === 0) return undefined;
    const text = decodeText(e.bytes, this.utf8).replace(/[\0 ]+$/, "").replace(/^ +/, "");
    return text === "" ? undefined : text;
  }

  /** Values of a multi-valued string VR (split at backslashes). */
  getStrings(tag: number): string[] {
    const e = this.elements.get(tag);
    if (!e || e.bytes.length === 0) return [];
    const text = decodeText(e.bytes, this.utf8);
    return (SINGLE_VALUED.has(e.vr) ? [text] : text.split("\\")).map((s) => s.replace(/[\0 ]+$/, "").replace(/^ +/, ""));
  }

  /** All numeric values: DS/IS parsed from text, binary VRs decoded in the dataset's byte order. */
  getNumbers(tag: number): number[] {
    const e = this.elements.get(tag);
    if (!e || e.bytes.length === 0) return [];
    if (STRING_VRS.has(e.vr)) {
      if (this.getString(tag) === undefined) return []; // only padding: an empty value
      return this.getStrings(tag).map((s) => {
        const v = s === "" ? NaN : Number(s);
        if (!Number.isFinite(v)) fail(`${tagName(tag)} value '${s.slice(0, 40)}' is not a number`);
        return v;
      });
    }
    const size = BINARY_SIZE[e.vr] ?? fail(`${tagName(tag)} has VR ${e.vr}, not a numeric VR`);
    if (e.bytes.length % size !== 0) fail(`${tagName(tag)} (${e.vr}) has ${e.bytes.length} bytes, not a multiple of ${size}`);
    const view = new DataView(e.bytes.buffer, e.bytes.byteOffset, e.bytes.byteLength);
    const le = this.littleEndian;
    const out: number[] = [];
    for (let o = 0; o < e.bytes.length; o += size) {
      switch (e.vr) {
        case "US": out.push(view.getUint16(o, le)); break;
        case "SS": out.push(view.getInt16(o, le)); break;
        case "UL": out.push(view.getUint32(o, le)); break;
        case "SL": out.push(view.getInt32(o, le)); break;
        case "FL": out.push(view.getFloat32(o, le)); break;
        case "FD": out.push(view.getFloat64(o, le)); break;
        case "SV": out.push(Number(view.getBigInt64(o, le))); break;
        case "UV": out.push(Number(view.getBigUint64(o, le))); break;
        case "AT": out.push(((view.getUint16(o, le) << 16) | view.getUint16(o + 2, le)) >>> 0); break;
      }
    }
    return out;
  }

  /** The first numeric value, or `undefined` when absent. */
  getNumber(tag: number): number | undefined {
    return this.getNumbers(tag)[0];
  }

  /** Sequence items ([] when absent); throws when the element is not a sequence. */
  getSequence(tag: number): DicomDataset[] {
    const e = this.elements.get(tag);
    if (!e) return [];
    if (e.items) return e.items;
    if (e.bytes.length === 0) return [];
    return fail(`${tagName(tag)} has VR ${e.vr}, not a sequence`);
  }

  /** A value that must be present. */
  requireString(tag: number, what = "file"): string {
    return this.getString(tag) ?? fail(`${what}: required attribute ${tagName(tag)} is missing or empty`);
  }
  requireNumbers(tag: number, count: number, what = "file"): number[] {
    const v = this.getNumbers(tag);
    if (v.length < count) fail(`${what}: ${tagName(tag)} needs ${count} value(s), has ${v.length}`);
    return v.slice(0, count);
  }
  requireNumber(tag: number, what = "file"): number {
    return this.requireNumbers(tag, 1, what)[0]!;
  }

  /** Sets an element (little-endian encoding; for writing). `undefined` or "" makes an empty (Type 2) element. */
  set(tag: number, vr: string, value?: WriteValue): this {
    if (!this.littleEndian) fail("cannot set values on a big-endian dataset");
    const e: DicomElement = { tag, vr, bytes: new Uint8Array(0) };
    if (vr === "SQ") {
      if (value !== undefined && !(Array.isArray(value) && value.every((v) => v instanceof DicomDataset)))
        fail(`${tagName(tag)}: a sequence takes an array of datasets`);
      e.items = (value as DicomDataset[] | undefined) ?? [];
    } else if (value !== undefined) e.bytes = encodeValue(tag, vr, value);
    this.elements.set(tag, e);
    return this;
  }
}

function decodeText(bytes: Uint8Array, utf8: boolean): string {
  if (utf8) return new TextDecoder("utf-8").decode(bytes);
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return s;
}

/** DS: at most 16 characters, so the value is rounded until its text fits. */
export function formatDS(v: number): string {
  if (!Number.isFinite(v)) fail(`cannot write ${v} as a decimal string (DS)`);
  if (Object.is(v, -0)) v = 0;
  let s = String(v);
  for (let p = 15; s.length > 16 && p > 0; p--) s = String(Number(v.toPrecision(p)));
  if (s.length > 16) fail(`cannot write ${v} in 16 characters (DS)`);
  return s;
}

function encodeValue(tag: number, vr: string, value: WriteValue): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof Int16Array || value instanceof Uint16Array) {
    const out = new Uint8Array(value.length * 2);
    const view = new DataView(out.buffer);
    for (let i = 0; i < value.length; i++) view.setUint16(2 * i, value[i]! & 0xffff, true);
    return out;
  }
  if (value instanceof DicomDataset || (Array.isArray(value) && value.some((v) => v instanceof DicomDataset)))
    fail(`${tagName(tag)}: datasets are only valid for VR SQ`);
  const values = (Array.isArray(value) ? value : [value]) as (string | number)[];
  if (STRING_VRS.has(vr)) {
    const text = values.map((v) => (typeof v === "number" ? (vr === "DS" ? formatDS(v) : vr === "IS" ? formatIS(tag, v) : String(v)) : v)).join("\\");
    const bytes = vr === "UC" || vr === "UT" || vr === "LO" || vr === "PN" || vr === "SH" || vr === "LT" || vr === "ST" ? new TextEncoder().encode(text) : asciiBytes(tag, text);
    return bytes;
  }
  const size = BINARY_SIZE[vr] ?? fail(`${tagName(tag)}: cannot encode numbers as VR ${vr}`);
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  values.forEach((raw, i) => {
    const v = Number(raw);
    const o = i * size;
    switch (vr) {
      case "US": view.setUint16(o, v, true); break;
      case "SS": view.setInt16(o, v, true); break;
      case "UL": view.setUint32(o, v, true); break;
      case "SL": view.setInt32(o, v, true); break;
      case "FL": view.setFloat32(o, v, true); break;
      case "FD": view.setFloat64(o, v, true); break;
      case "AT": view.setUint16(o, v >>> 16, true); view.setUint16(o + 2, v & 0xffff, true); break;
      default: fail(`${tagName(tag)}: cannot encode VR ${vr}`);
    }
  });
  return out;
}

function formatIS(tag: number, v: number): string {
  if (!Number.isInteger(v) || Math.abs(v) > 2 ** 31 - 1) fail(`${tagName(tag)}: ${v} is not a valid integer string (IS)`);
  return String(v);
}

function asciiBytes(tag: number, text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 127) fail(`${tagName(tag)}: non-ASCII character in '${text.slice(0, 40)}'`);
    out[i] = c;
  }
  return out;
}

// Hand-built DICOM bytes for the reader's error tests, and small synthetic series/masks.
import { readFileSync } from "node:fs";
import { writeCtSeries, readCtSeries, type CtSeries, type CtSeriesMeta } from "../../src/io/dicom/index.ts";

export const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../fixtures/dicom/${name}`, import.meta.url)));
export const expected = JSON.parse(readFileSync(new URL("../fixtures/dicom/expected.json", import.meta.url), "utf8")) as Record<
  string,
  { rows: number; columns: number; frames: number; transferSyntaxUid: string; storedSum: number; storedMin: number; storedMax: number; samples: { row: number; column: number; stored: number }[]; huMin?: number; huMax?: number; huMean?: number }
>;

const u16 = (v: number) => [v & 0xff, v >>> 8];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const LONG = new Set(["OB", "OW", "SQ", "UN", "UT"]);

/** One explicit VR little-endian element; `length` overrides the value's length (e.g. 0xffffffff). */
export function el(tag: number, vr: string, value: number[] | string = [], length?: number): number[] {
  const bytes = typeof value === "string" ? [...value].map((c) => c.charCodeAt(0)) : value;
  const n = length ?? bytes.length;
  const head = [...u16(tag >>> 16), ...u16(tag & 0xffff), vr.charCodeAt(0), vr.charCodeAt(1)];
  return LONG.has(vr) ? [...head, 0, 0, ...u32(n), ...bytes] : [...head, ...u16(n), ...bytes];
}
export const item = (content: number[], length = content.length) => [...u16(0xfffe), ...u16(0xe000), ...u32(length), ...content];
export const itemEnd = () => [...u16(0xfffe), ...u16(0xe00d), 0, 0, 0, 0];
export const seqEnd = () => [...u16(0xfffe), ...u16(0xe0dd), 0, 0, 0, 0];

/** Preamble, DICM and a file meta group with the given transfer syntax, then `body`. */
export function part10(body: number[], transferSyntax = "1.2.840.10008.1.2.1"): Uint8Array {
  const ts = transferSyntax.length % 2 ? transferSyntax + "\0" : transferSyntax;
  const meta = el(0x00020010, "UI", ts);
  return Uint8Array.from([...new Array(128).fill(0), 0x44, 0x49, 0x43, 0x4d, ...el(0x00020000, "UL", u32(meta.length)), ...meta, ...body]);
}

export const AXIAL = { rowDirection: [1, 0, 0] as [number, number, number], columnDirection: [0, 1, 0] as [number, number, number] };

/** A small CT series written by writeCtSeries and read back. */
export function syntheticSeries(shape: [number, number, number], spacing: [number, number, number], meta: CtSeriesMeta = {}): { files: Uint8Array[]; series: CtSeries; hu: Float32Array } {
  const hu = Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, (_, i) => ((i * 37) % 2000) - 1000);
  const files = writeCtSeries(hu, shape, { origin: [-30, -20, 12.5], ...AXIAL, spacing }, meta);
  return { files, series: readCtSeries(files), hu };
}

/** Dice of two 0/1 masks. */
export function dice(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let tp = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ? 1 : 0, y = b[i] ? 1 : 0;
    tp += x & y;
    na += x;
    nb += y;
  }
  return na + nb === 0 ? 1 : (2 * tp) / (na + nb);
}

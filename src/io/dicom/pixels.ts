// Pixel data → stored values per frame (grayscale): uncompressed 8/16-bit, RLE Lossless, JPEG
// Lossless Process 14. BitsStored/HighBit select the stored bits; PixelRepresentation 1 sign-extends.
import type { DicomDataset } from "./dataset.ts";
import { fail } from "./errors.ts";
import { decodeJpegLosslessFrame } from "./jpeg_lossless.ts";
import { decodeRleFrame } from "./rle.ts";
import { TAGS } from "./tags.ts";
import { TRANSFER_SYNTAX, transferSyntaxName } from "./uids.ts";

export interface PixelFormat {
  rows: number;
  columns: number;
  frames: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  signed: boolean;
}

const UNCOMPRESSED: readonly string[] = [
  TRANSFER_SYNTAX.ImplicitVRLittleEndian,
  TRANSFER_SYNTAX.ExplicitVRLittleEndian,
  TRANSFER_SYNTAX.ExplicitVRBigEndian,
  TRANSFER_SYNTAX.DeflatedExplicitVRLittleEndian,
];
const JPEG_LOSSLESS = ["1.2.840.10008.1.2.4.57", TRANSFER_SYNTAX.JPEGLosslessSV1];

/** Image Pixel module attributes, validated. */
export function pixelFormat(ds: DicomDataset): PixelFormat {
  const rows = ds.requireNumber(TAGS.Rows, "pixel data");
  const columns = ds.requireNumber(TAGS.Columns, "pixel data");
  const frames = ds.getNumber(TAGS.NumberOfFrames) ?? 1;
  const samples = ds.getNumber(TAGS.SamplesPerPixel) ?? 1;
  const bitsAllocated = ds.requireNumber(TAGS.BitsAllocated, "pixel data");
  const bitsStored = ds.getNumber(TAGS.BitsStored) ?? bitsAllocated;
  const highBit = ds.getNumber(TAGS.HighBit) ?? bitsStored - 1;
  const representation = ds.getNumber(TAGS.PixelRepresentation) ?? 0;
  if (rows < 1 || columns < 1) fail(`image is ${rows}×${columns} pixels`);
  if (!Number.isInteger(frames) || frames < 1) fail(`NumberOfFrames is ${frames}`);
  if (samples !== 1) fail(`SamplesPerPixel is ${samples}: only grayscale images (1 sample) are supported`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) fail(`BitsAllocated ${bitsAllocated} is not supported (8 or 16)`);
  if (!(bitsStored >= 1 && bitsStored <= bitsAllocated)) fail(`BitsStored ${bitsStored} must be in 1..BitsAllocated (${bitsAllocated})`);
  if (!(highBit >= bitsStored - 1 && highBit < bitsAllocated)) fail(`HighBit ${highBit} is inconsistent with BitsStored ${bitsStored} and BitsAllocated ${bitsAllocated}`);
  if (representation !== 0 && representation !== 1) fail(`PixelRepresentation ${representation} must be 0 or 1`);
  return { rows, columns, frames, bitsAllocated, bitsStored, highBit, signed: representation === 1 };
}

/** Stored pixel values, one Int32Array per frame (row-major, Rows × Columns). */
export function decodeFrames(ds: DicomDataset, transferSyntaxUid: string): Int32Array[] {
  const pixel = ds.element(TAGS.PixelData) ?? fail("no PixelData (7FE0,0010) in the dataset");
  const f = pixelFormat(ds);
  const pixels = f.rows * f.columns;
  const bytesPerSample = f.bitsAllocated / 8;
  const frames: Int32Array[] = [];
  if (UNCOMPRESSED.includes(transferSyntaxUid)) {
    if (pixel.encapsulated) fail(`pixel data is encapsulated, but the transfer syntax ${transferSyntaxUid} is uncompressed`);
    const need = pixels * bytesPerSample * f.frames;
    if (pixel.bytes.length < need)
      fail(`PixelData has ${pixel.bytes.length} bytes, but ${f.frames} frame(s) of ${f.rows}×${f.columns} ${f.bitsAllocated}-bit pixels need ${need}`);
    const le = ds.littleEndian || pixel.vr === "OB";
    for (let k = 0; k < f.frames; k++) frames.push(toStored(pixel.bytes.subarray(k * pixels * bytesPerSample), pixels, f, le));
    return frames;
  }
  const isRle = transferSyntaxUid === TRANSFER_SYNTAX.RLELossless;
  const isJpeg = JPEG_LOSSLESS.includes(transferSyntaxUid);
  if (!isRle && !isJpeg) fail(`${transferSyntaxName(transferSyntaxUid)} (${transferSyntaxUid}): no decoder in Pulmo`);
  const enc = pixel.encapsulated ?? fail(`transfer syntax ${transferSyntaxName(transferSyntaxUid)} needs encapsulated pixel data, found native`);
  for (const frame of frameFragments(enc.offsetTable, enc.fragments, f.frames)) {
    if (isRle) {
      // PackBits expands at most 128 bytes per 2 input bytes: bounds what a frame can claim
      if (pixels * bytesPerSample > 64 * frame.length + 64) fail(`RLE frame of ${frame.length} bytes cannot hold ${f.rows}×${f.columns} pixels`);
      frames.push(toStored(decodeRleFrame(frame, pixels, bytesPerSample), pixels, f, true));
    } else {
      const raw = decodeJpegLosslessFrame(frame, f.rows, f.columns, f.bitsAllocated);
      frames.push(maskStored(Int32Array.from(raw.subarray(0, pixels)), f));
    }
  }
  return frames;
}

/** Splits fragments into frames: all of them for one frame; else by the offset table or one per frame. */
function frameFragments(offsetTable: Uint8Array, fragments: Uint8Array[], frames: number): Uint8Array[] {
  if (fragments.length === 0) fail("encapsulated pixel data has no fragments");
  if (frames === 1) return [concat(fragments)];
  if (offsetTable.length >= 4 * frames) {
    const view = new DataView(offsetTable.buffer, offsetTable.byteOffset, offsetTable.byteLength);
    const starts: number[] = [];
    let at = 0;
    const fragmentAt = new Map<number, number>();
    fragments.forEach((fr, i) => {
      fragmentAt.set(at, i);
      at += 8 + fr.length;
    });
    for (let k = 0; k < frames; k++) {
      const i = fragmentAt.get(view.getUint32(4 * k, true));
      if (i === undefined) fail(`basic offset table entry ${k} (${view.getUint32(4 * k, true)}) does not point at a fragment`);
      starts.push(i!);
    }
    starts.push(fragments.length);
    return starts.slice(0, frames).map((s, k) => {
      if (starts[k + 1]! <= s) fail("basic offset table is not increasing");
      return concat(fragments.slice(s, starts[k + 1]));
    });
  }
  if (fragments.length === frames) return fragments;
  return fail(`${frames} frames in ${fragments.length} fragments without a basic offset table: cannot tell where frames start`);
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function toStored(bytes: Uint8Array, pixels: number, f: PixelFormat, le: boolean): Int32Array {
  const out = new Int32Array(pixels);
  if (f.bitsAllocated === 8) for (let i = 0; i < pixels; i++) out[i] = bytes[i]!;
  else if (le) for (let i = 0; i < pixels; i++) out[i] = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
  else for (let i = 0; i < pixels; i++) out[i] = (bytes[2 * i]! << 8) | bytes[2 * i + 1]!;
  return maskStored(out, f);
}

/** Keeps bits [HighBit−BitsStored+1, HighBit], sign-extending when PixelRepresentation is 1. */
function maskStored(v: Int32Array, f: PixelFormat): Int32Array {
  const shift = f.highBit - f.bitsStored + 1;
  const mask = 2 ** f.bitsStored - 1;
  const signBit = 2 ** (f.bitsStored - 1);
  for (let i = 0; i < v.length; i++) {
    let s = (v[i]! >>> shift) & mask;
    if (f.signed && s >= signBit) s -= 2 * signBit;
    v[i] = s;
  }
  return v;
}

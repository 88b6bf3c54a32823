/// <reference path="./vendor.d.ts" />
// JPEG Lossless Process 14 (SV1 and other predictors) through jpeg-lossless-decoder-js. Its header
// is checked here first so a corrupt stream cannot make the decoder allocate more than it justifies,
// and anything the decoder throws becomes a DicomError.
import { Decoder } from "jpeg-lossless-decoder-js";
import { fail } from "./errors.ts";

export function decodeJpegLosslessFrame(frame: Uint8Array, rows: number, columns: number, bitsAllocated: number): Uint16Array | Uint8Array {
  const sof = readSof(frame);
  if (sof.height !== rows || sof.width !== columns)
    fail(`JPEG Lossless frame is ${sof.width}×${sof.height}, but the dataset says Columns ${columns} × Rows ${rows}`);
  if (sof.components !== 1) fail(`JPEG Lossless frame has ${sof.components} components; only grayscale (1) is supported`);
  if (sof.precision > bitsAllocated) fail(`JPEG Lossless precision ${sof.precision} exceeds BitsAllocated ${bitsAllocated}`);
  // a Huffman code is at least one bit, so a stream cannot hold more than 8 samples per byte
  if (rows * columns > 8 * frame.length) fail(`JPEG Lossless frame of ${frame.length} bytes cannot hold ${rows}×${columns} samples`);
  let out: ArrayBufferLike | Uint8Array | Uint16Array;
  try {
    const copy = new Uint8Array(frame); // a plain copy (Buffer.slice would share memory)
    out = new Decoder().decode(copy.buffer, 0, copy.byteLength, bitsAllocated > 8 ? 2 : 1);
  } catch (e) {
    return fail(`JPEG Lossless decoding failed: ${(e as Error)?.message ?? String(e)}`);
  }
  const samples = out instanceof Uint16Array || out instanceof Uint8Array ? out : null;
  if (!samples || samples.length < rows * columns) fail(`JPEG Lossless decoder returned ${samples?.length ?? 0} samples, expected ${rows * columns}`);
  return samples!;
}

interface Sof {
  precision: number;
  height: number;
  width: number;
  components: number;
}

/** Walks the JPEG markers up to the start-of-frame header. */
function readSof(b: Uint8Array): Sof {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) fail("JPEG Lossless frame does not start with an SOI marker (FFD8)");
  let at = 2;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) fail(`JPEG Lossless: expected a marker at byte ${at}, found 0x${b[at]!.toString(16)}`);
    const marker = b[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    const length = (b[at + 2]! << 8) | b[at + 3]!;
    if (length < 2 || at + 2 + length > b.length) fail(`JPEG Lossless: marker FF${marker.toString(16).toUpperCase()} at byte ${at} has length ${length}, past the end of the frame`);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (marker !== 0xc3 && marker !== 0xc7) fail(`JPEG frame type FF${marker.toString(16).toUpperCase()} is not lossless (Process 14 needs SOF3)`);
      if (length < 8) fail("JPEG Lossless: start-of-frame header too short");
      return { precision: b[at + 4]!, height: (b[at + 5]! << 8) | b[at + 6]!, width: (b[at + 7]! << 8) | b[at + 8]!, components: b[at + 9]! };
    }
    if (marker === 0xda || marker === 0xd9) break;
    at += 2 + length;
  }
  return fail("JPEG Lossless: no start-of-frame header before the scan");
}

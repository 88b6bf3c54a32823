// Minimal PNG encoder: 8-bit RGB or RGBA, one zlib-compressed IDAT, filter 0 on every row.
// Browser-safe (fflate's zlibSync, no Node built-ins).
import { zlibSync } from "fflate";
import { PulmoError } from "../runtime/errors.ts";

export interface RgbImage {
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA) bytes per pixel, rows top to bottom */
  channels: 3 | 4;
  data: Uint8Array;
}

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

let crcTable: Uint32Array | undefined;

/** CRC-32 (ISO 3309 / ITU-T V.42, as PNG chunks use). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(payload, 8);
  view.setUint32(8 + payload.length, crc32(out.subarray(4, 8 + payload.length)));
  return out;
}

/** The image as a PNG file. */
export function encodePng(image: RgbImage): Uint8Array {
  const { width, height, channels, data } = image;
  if (!(Number.isSafeInteger(width) && width >= 1 && Number.isSafeInteger(height) && height >= 1))
    throw new PulmoError(`encodePng: width and height must be positive integers, got ${width}×${height}`);
  if (channels !== 3 && channels !== 4) throw new PulmoError(`encodePng: channels must be 3 (RGB) or 4 (RGBA), got ${channels}`);
  if (data.length !== width * height * channels)
    throw new PulmoError(`encodePng: ${data.length} bytes for a ${width}×${height}×${channels} image (needs ${width * height * channels})`);
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 4 ? 6 : 2; // colour type: RGBA or RGB
  // compression 0, filter 0, interlace 0
  const rowBytes = width * channels;
  const raw = new Uint8Array((rowBytes + 1) * height);
  for (let y = 0; y < height; y++) raw.set(data.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1);
  const parts = [PNG_SIGNATURE, chunk("IHDR", ihdr), chunk("IDAT", zlibSync(raw, { level: 6 })), chunk("IEND", new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

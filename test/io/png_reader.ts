// An independent PNG reader for the tests: chunk CRCs checked and IDAT inflated with Node's zlib
// (not the fflate the encoder uses). Handles only what encodePng writes (8-bit RGB/RGBA, filter 0).
import { crc32 as nodeCrc32, inflateSync } from "node:zlib";

export interface Chunk { type: string; data: Uint8Array; crc: number; crcOk: boolean }

export function chunks(png: Uint8Array): Chunk[] {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: Chunk[] = [];
  for (let o = 8; o < png.length; ) {
    const len = v.getUint32(o);
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
    const data = png.subarray(o + 8, o + 8 + len);
    const crc = v.getUint32(o + 8 + len);
    out.push({ type, data, crc, crcOk: nodeCrc32(png.subarray(o + 4, o + 8 + len)) === crc });
    o += 12 + len;
  }
  return out;
}

export function decodePng(png: Uint8Array): { width: number; height: number; colourType: number; depth: number; pixels: Uint8Array } {
  const cs = chunks(png);
  const ihdr = new DataView(cs[0]!.data.buffer, cs[0]!.data.byteOffset, 13);
  const width = ihdr.getUint32(0), height = ihdr.getUint32(4), depth = ihdr.getUint8(8), colourType = ihdr.getUint8(9);
  const bpp = colourType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(cs.filter((c) => c.type === "IDAT").map((c) => c.data)));
  if (raw.length !== (width * bpp + 1) * height) throw new Error(`IDAT inflates to ${raw.length} bytes, expected ${(width * bpp + 1) * height}`);
  const pixels = new Uint8Array(width * height * bpp);
  for (let y = 0; y < height; y++) {
    if (raw[y * (width * bpp + 1)] !== 0) throw new Error(`row ${y}: filter type ${raw[y * (width * bpp + 1)]}, expected 0`);
    pixels.set(raw.subarray(y * (width * bpp + 1) + 1, (y + 1) * (width * bpp + 1)), y * width * bpp);
  }
  return { width, height, colourType, depth, pixels };
}


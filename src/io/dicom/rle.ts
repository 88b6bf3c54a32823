// DICOM RLE Lossless (PS3.5 Annex G): a 64-byte header of up to 15 segment offsets, each segment
// one byte plane (most significant first) PackBits-encoded.
import { fail } from "./errors.ts";

/** Decodes one frame into `bytesPerSample` byte planes interleaved as little-endian samples. */
export function decodeRleFrame(frame: Uint8Array, pixels: number, bytesPerSample: number): Uint8Array {
  if (frame.length < 64) fail(`RLE frame of ${frame.length} bytes is shorter than its 64-byte header`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== bytesPerSample)
    fail(`RLE frame has ${segments} segments, expected ${bytesPerSample} (one per byte of a ${8 * bytesPerSample}-bit sample)`);
  const out = new Uint8Array(pixels * bytesPerSample);
  for (let s = 0; s < segments; s++) {
    const start = view.getUint32(4 + 4 * s, true);
    const stop = s + 1 < segments ? view.getUint32(8 + 4 * s, true) : frame.length;
    if (start < 64 || stop > frame.length || start >= stop)
      fail(`RLE segment ${s + 1} spans bytes ${start}..${stop}, outside the ${frame.length}-byte frame`);
    // segment s holds byte (segments - 1 - s) of each little-endian sample
    const written = unpackBits(frame, start, stop, out, bytesPerSample - 1 - s, bytesPerSample, pixels);
    if (written < pixels) fail(`RLE segment ${s + 1} decodes to ${written} bytes, expected ${pixels}`);
  }
  return out;
}

function unpackBits(src: Uint8Array, at: number, stop: number, out: Uint8Array, offset: number, stride: number, count: number): number {
  let n = 0;
  while (at < stop && n < count) {
    const h = src[at++]!;
    if (h < 128) {
      const len = h + 1;
      if (at + len > stop) fail(`RLE literal run of ${len} bytes at byte ${at - 1} passes the end of its segment`);
      for (let i = 0; i < len && n < count; i++) out[offset + stride * n++] = src[at + i]!;
      at += len;
    } else if (h > 128) {
      if (at >= stop) fail(`RLE replicate run at byte ${at - 1} has no byte to repeat`);
      const v = src[at++]!;
      const len = 257 - h;
      for (let i = 0; i < len && n < count; i++) out[offset + stride * n++] = v;
    }
    // h === 128 is a no-op
  }
  return n;
}

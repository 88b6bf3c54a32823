import { describe, expect, it } from "vitest";
import { chunks, decodePng } from "./png_reader.ts";
import { crc32, encodePng, PNG_SIGNATURE } from "../../src/io/png.ts";
import { PulmoError } from "../../src/runtime/errors.ts";

describe("encodePng", () => {
  it("computes the standard CRC-32 (check value and the IEND constant)", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new TextEncoder().encode("IEND"))).toBe(0xae426082);
  });

  for (const channels of [3, 4] as const) {
    it(`writes a valid ${channels === 3 ? "RGB" : "RGBA"} PNG whose pixels decode back exactly`, () => {
      const width = 37, height = 11;
      const data = Uint8Array.from({ length: width * height * channels }, (_, i) => (i * 7 + (i >> 5)) & 255);
      const png = encodePng({ width, height, channels, data });
      expect([...png.subarray(0, 8)]).toEqual([...PNG_SIGNATURE]);
      const cs = chunks(png);
      expect(cs.map((c) => c.type)).toEqual(["IHDR", "IDAT", "IEND"]);
      for (const c of cs) expect(c.crcOk, `${c.type} CRC`).toBe(true);
      expect(cs[0]!.data.length).toBe(13);
      expect([...cs[0]!.data.subarray(10)]).toEqual([0, 0, 0]); // deflate, filter 0, no interlace
      const d = decodePng(png);
      expect([d.width, d.height, d.depth, d.colourType]).toEqual([width, height, 8, channels === 4 ? 6 : 2]);
      expect(Buffer.from(d.pixels).equals(Buffer.from(data))).toBe(true);
    });
  }

  it("rejects wrong sizes and channel counts", () => {
    expect(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) })).toThrow(/11 bytes for a 2×2×3 image/);
    expect(() => encodePng({ width: 0, height: 2, channels: 3, data: new Uint8Array(0) })).toThrow(PulmoError);
    expect(() => encodePng({ width: 1, height: 1, channels: 2 as 3, data: new Uint8Array(2) })).toThrow(/channels must be 3/);
  });
});

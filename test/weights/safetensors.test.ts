import fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { MAX_HEADER_BYTES, SafetensorsError, readSafetensors, writeSafetensors } from "../../weights/safetensors.ts";
import { openSafetensors, type SafetensorsFileHandle } from "../../weights/safetensors_file.ts";

const dir = fs.mkdtempSync(join(tmpdir(), "pulmo-safetensors-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

let fileNo = 0;
function toFile(bytes: Uint8Array): string {
  const p = join(dir, `f${fileNo++}.safetensors`);
  fs.writeFileSync(p, bytes);
  return p;
}

/** A file by hand: the header (object, or raw text), data bytes, and optionally a forged length. */
function build(header: unknown, data: Uint8Array | number = 0, headerLen?: bigint): Uint8Array {
  const text = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.byteLength + body.byteLength);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(text.byteLength), true);
  out.set(text, 8);
  out.set(body, 8 + text.byteLength);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: "F32", shape, data_offsets: [begin, end] });

/** Both readers, so every check holds for the in-memory and the lazy file reader alike. */
const readers: [string, (b: Uint8Array) => { float32(n: string): Float32Array; close?(): void }][] = [
  ["readSafetensors", (b) => readSafetensors(b)],
  ["openSafetensors", (b) => openSafetensors(toFile(b))],
];

function expectError(bytes: Uint8Array, message: RegExp): void {
  for (const [name, read] of readers) {
    let err: unknown;
    try {
      read(bytes).close?.();
    } catch (e) {
      err = e;
    }
    expect(err, name).toBeInstanceOf(SafetensorsError);
    expect((err as Error).message, name).toMatch(message);
  }
}

describe("round trip", () => {
  const tensors = {
    weight: { shape: [2, 3], data: Float32Array.of(1, -2.5, 3.25, 1e-30, -0, 65504.125) },
    counts: { dtype: "I32" as const, shape: [4], data: Int32Array.of(0, -1, 2 ** 31 - 1, -(2 ** 31)) },
    steps: { dtype: "I64" as const, shape: [3], data: [Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 42] },
    empty: { shape: [0, 5], data: new Float32Array(0) },
    scalar: { shape: [], data: [7] },
  };
  const metadata = { format: "pt", note: 'quotes " and ünïcödé' };
  const bytes = writeSafetensors(tensors, metadata);

  it("pads the header to 8 bytes", () => {
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
  });

  for (const [name, read] of readers)
    it(`reads back F32, I32, I64, empty and scalar tensors and metadata (${name})`, () => {
      const f = read(bytes) as ReturnType<typeof readSafetensors>;
      expect(f.names).toEqual(["weight", "counts", "steps", "empty", "scalar"]);
      expect(f.metadata).toEqual(metadata);
      expect(f.tensors.get("weight")).toMatchObject({ dtype: "F32", shape: [2, 3] });
      expect(Array.from(f.float32("weight"))).toEqual(Array.from(tensors.weight.data));
      expect(Object.is(f.float32("weight")[4], -0)).toBe(true);
      expect(Array.from(f.int("counts"))).toEqual(Array.from(tensors.counts.data));
      expect(f.tensors.get("steps")!.dtype).toBe("I64");
      expect(Array.from(f.int("steps"))).toEqual(tensors.steps.data);
      expect(Array.from(f.float32("counts"))).toEqual([0, -1, 2 ** 31, -(2 ** 31)]);
      expect(f.float32("empty").length).toBe(0);
      expect(f.tensors.get("scalar")!.shape).toEqual([]);
      expect(Array.from(f.float32("scalar"))).toEqual([7]);
      expect(f.has("weight")).toBe(true);
      expect(f.has("nope")).toBe(false);
      expect(() => f.float32("nope")).toThrow(/missing tensor 'nope'/);
      (f as unknown as { close?(): void }).close?.();
    });

  it("writes nothing but what it can represent", () => {
    expect(() => writeSafetensors({ a: { dtype: "I64", shape: [1], data: [1.5] } })).toThrow(/value 1.5 at index 0 is not a valid I64/);
    expect(() => writeSafetensors({ a: { dtype: "I32", shape: [1], data: [2 ** 31] } })).toThrow(/not a valid I32/);
    expect(() => writeSafetensors({ a: { dtype: "I64", shape: [1], data: [2 ** 60] } })).toThrow(SafetensorsError);
    expect(() => writeSafetensors({ a: { shape: [2], data: [1] } })).toThrow(/1 values for shape \[2\]/);
    expect(() => writeSafetensors({ a: { shape: [-1], data: [] } })).toThrow(/non-negative integers/);
    expect(() => writeSafetensors({ __metadata__: { shape: [1], data: [1] } })).toThrow(/reserved/);
    expect(() => writeSafetensors({}, { n: 1 as unknown as string })).toThrow(/__metadata__.n must be a string/);
    expect(readSafetensors(writeSafetensors({})).names).toEqual([]);
  });
});

describe("dtype decoding", () => {
  function oneTensor(dtype: string, words: number[], bytesPer: number): Uint8Array {
    const data = new Uint8Array(words.length * bytesPer);
    const dv = new DataView(data.buffer);
    words.forEach((w, i) => {
      if (bytesPer === 1) dv.setUint8(i, w);
      else if (bytesPer === 2) dv.setUint16(i * 2, w, true);
      else if (bytesPer === 4) dv.setUint32(i * 4, w, true);
      else dv.setFloat64(i * 8, w, true);
    });
    return build({ t: { dtype, shape: [words.length], data_offsets: [0, data.byteLength] } }, data);
  }

  for (const [name, read] of readers) {
    it(`F16 to f32 (${name})`, () => {
      // 1, -2, max, min subnormal, min normal, 1/3 rounded, -0, +inf, -inf, NaN
      const words = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x3555, 0x8000, 0x7c00, 0xfc00, 0x7e00];
      const out = Array.from(read(oneTensor("F16", words, 2)).float32("t"));
      expect(out.slice(0, 9)).toEqual([1, -2, 65504, 2 ** -24, 2 ** -14, 0.333251953125, -0, Infinity, -Infinity]);
      expect(Object.is(out[6], -0)).toBe(true);
      expect(out[9]).toBeNaN();
    });

    it(`BF16 to f32 (${name})`, () => {
      // 1, -3, pi rounded, smallest subnormal, -0, +inf, NaN, -max
      const words = [0x3f80, 0xc040, 0x4049, 0x0001, 0x8000, 0x7f80, 0x7fc0, 0xff7f];
      const out = Array.from(read(oneTensor("BF16", words, 2)).float32("t"));
      expect(out.slice(0, 6)).toEqual([1, -3, 3.140625, 2 ** -133, -0, Infinity]);
      expect(Object.is(out[4], -0)).toBe(true);
      expect(out[6]).toBeNaN();
      expect(out[7]).toBe(-(2 - 2 ** -7) * 2 ** 127);
    });
  }

  it("F64 rounds to f32; U8, I8, I16, U16 and BOOL decode as integers", () => {
    expect(Array.from(readSafetensors(oneTensor("F64", [0.1, -1e300, 3], 8)).float32("t"))).toEqual([Math.fround(0.1), -Infinity, 3]);
    expect(Array.from(readSafetensors(oneTensor("U8", [0, 255], 1)).int("t"))).toEqual([0, 255]);
    expect(Array.from(readSafetensors(oneTensor("I8", [0x7f, 0x80], 1)).int("t"))).toEqual([127, -128]);
    expect(Array.from(readSafetensors(oneTensor("I16", [0x7fff, 0x8000], 2)).int("t"))).toEqual([32767, -32768]);
    expect(Array.from(readSafetensors(oneTensor("U16", [0xffff], 2)).float32("t"))).toEqual([65535]);
    expect(Array.from(readSafetensors(oneTensor("BOOL", [1, 0], 1)).int("t"))).toEqual([1, 0]);
    expect(() => readSafetensors(oneTensor("F16", [0], 2)).int("t")).toThrow(/not an integer type/);
  });

  it("F32 at an unaligned address is copied correctly", () => {
    const good = writeSafetensors({ a: { shape: [3], data: [1.5, -2, 3] } });
    const shifted = new Uint8Array(good.byteLength + 1);
    shifted.set(good, 1);
    expect(Array.from(readSafetensors(shifted.subarray(1)).float32("a"))).toEqual([1.5, -2, 3]);
  });

  it("rejects I64 values beyond ±2^53 when decoding", () => {
    const data = new Uint8Array(8);
    new DataView(data.buffer).setBigInt64(0, 2n ** 60n, true);
    const f = readSafetensors(build({ t: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, data));
    expect(() => f.int("t")).toThrow(/I64 value 1152921504606846976 at index 0 is beyond ±2\^53/);
  });
});

describe("malformed files", () => {
  const valid = writeSafetensors({ a: { shape: [2], data: [1, 2] }, b: { shape: [3], data: [3, 4, 5] } });

  it("truncated: fewer than 8 bytes", () => {
    expectError(new Uint8Array(0), /truncated file: 0 bytes, need at least 8/);
    expectError(new Uint8Array(5), /truncated file: 5 bytes, need at least 8/);
  });

  it("truncated: data cut short, or trailing bytes", () => {
    expectError(valid.subarray(0, valid.byteLength - 3), /tensor 'b': data_offsets \[8, 20\] out of range \(data section is 17 bytes; truncated\?\)/);
    const longer = new Uint8Array(valid.byteLength + 4);
    longer.set(valid);
    expectError(longer, /data section is 24 bytes but tensors cover 20 \(trailing bytes\)/);
  });

  it("header length past the end of the file", () => {
    expectError(build({}, 0, 1000n), /header length 1000 runs past the end of the 10-byte file/);
    expectError(valid.subarray(0, 12), /runs past the end of the 12-byte file/);
  });

  it("oversized header length is refused before any allocation", () => {
    expectError(build({}, 0, 2n ** 63n), /header length 9223372036854775808 exceeds the 104857600-byte limit/);
    expectError(build({}, 0, 2n ** 64n - 1n), /header length 18446744073709551615 exceeds/);
    expectError(build({}, 0, BigInt(MAX_HEADER_BYTES + 1)), /exceeds the 104857600-byte limit/);
    // The lazy reader reads the 8-byte length and nothing else.
    const spy = vi.spyOn(fs, "readSync");
    expect(() => openSafetensors(toFile(build({}, 0, 2n ** 63n)))).toThrow(/exceeds/);
    expect(spy.mock.calls.map((c) => (c as unknown[])[3])).toEqual([8]);
  });

  it("bad JSON and invalid UTF-8", () => {
    expectError(build('{"a": '), /header is not valid JSON/);
    expectError(build(""), /header is not valid JSON/);
    const bad = build("{}");
    bad[9] = 0xff;
    expectError(bad, /header is not valid JSON/);
  });

  it("header that is not a JSON object", () => {
    expectError(build("[1, 2]"), /header must be a JSON object, got an array/);
    expectError(build("null"), /header must be a JSON object, got null/);
    expectError(build('"text"'), /header must be a JSON object, got string/);
    expectError(build("42"), /header must be a JSON object, got number/);
  });

  it("entries and metadata of the wrong kind", () => {
    expectError(build({ a: [1] }), /tensor 'a': entry must be an object, got an array/);
    expectError(build({ a: null }), /tensor 'a': entry must be an object, got null/);
    expectError(build({ __metadata__: { k: 1 } }), /__metadata__.k must be a string, got number/);
    expectError(build({ __metadata__: ["x"] }), /__metadata__ must be an object of strings, got an array/);
  });

  it("offsets out of range or reversed", () => {
    expectError(build({ a: f32([4], 0, 16) }, 8), /tensor 'a': data_offsets \[0, 16\] out of range \(data section is 8 bytes/);
    expectError(build({ a: f32([0], 8, 4) }, 8), /tensor 'a': data_offsets \[8, 4\] end before they begin/);
    expectError(build({ a: { dtype: "F32", shape: [1], data_offsets: [0] } }, 4), /data_offsets must be two non-negative integers/);
    expectError(build({ a: { dtype: "F32", shape: [1], data_offsets: [-4, 0] } }, 4), /data_offsets must be two non-negative integers/);
    expectError(build({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4.5] } }, 4), /data_offsets must be two non-negative integers/);
  });

  it("overlapping offsets", () => {
    expectError(build({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12), /tensor 'b' overlaps tensor 'a' \(begins at 4, 'a' ends at 8\)/);
    expectError(build({ a: f32([2], 0, 8), b: f32([2], 0, 8) }, 8), /overlaps/);
  });

  it("gap between tensors", () => {
    expectError(build({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12), /gap in data section before tensor 'b' \(bytes 4..8/);
    expectError(build({ a: f32([1], 4, 8) }, 8), /gap in data section before tensor 'a' \(bytes 0..4/);
  });

  it("size not equal to shape × dtype", () => {
    expectError(build({ a: f32([3], 0, 8) }, 8), /tensor 'a': 8 bytes but shape \[3\] of F32 needs 12/);
    expectError(build({ a: { dtype: "F16", shape: [2, 2], data_offsets: [0, 4] } }, 4), /4 bytes but shape \[2, 2\] of F16 needs 8/);
    // A product beyond 2^53 can never match a real byte count.
    expectError(build({ a: f32([2 ** 52, 2 ** 52], 0, 0) }), /needs/);
  });

  it("unknown dtype", () => {
    expectError(build({ a: { dtype: "F8", shape: [1], data_offsets: [0, 1] } }, 1), /tensor 'a': unknown dtype "F8"/);
    expectError(build({ a: { shape: [1], data_offsets: [0, 1] } }, 1), /unknown dtype undefined/);
    expectError(build({ a: { dtype: "f32", shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype "f32"/);
    // inherited Object properties are not dtypes
    expectError(build({ a: { dtype: "toString", shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype "toString"/);
    expectError(build({ a: { dtype: "__proto__", shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype "__proto__"/);
  });

  it("duplicate names (and duplicate keys anywhere)", () => {
    const e = JSON.stringify(f32([1], 0, 4));
    expectError(build(`{"a": ${e}, "a" : ${e}}`, 4), /duplicate tensor name 'a'/);
    expectError(build(`{"\\u0061": ${e}, "a": ${e}}`, 4), /duplicate tensor name 'a'/);
    expectError(build(`{"a": {"dtype": "F32", "dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}`, 4), /duplicate key 'dtype'/);
    // the same key in different objects, and keys spelled inside strings, are fine
    const ok = build(`{"__metadata__": {"a": "{\\"a\\": 1, \\"a\\": 2}", "b": "[\\"a\\"]"}, "a": ${e}}`, 4);
    expect(readSafetensors(ok).metadata.a).toBe('{"a": 1, "a": 2}');
  });

  it("negative, non-integer or non-numeric shape", () => {
    for (const shape of [[-1], [1.5], ["2"], [null], 3, null, [2 ** 53]])
      expectError(build({ a: { dtype: "F32", shape, data_offsets: [0, 4] } }, 4), /tensor 'a': shape must be a list of non-negative integers/);
  });
});

describe("openSafetensors (lazy file reader)", () => {
  it("reads only the preamble and header on open, then exactly each tensor's bytes", () => {
    const bytes = writeSafetensors({ a: { shape: [4], data: [1, 2, 3, 4] }, b: { dtype: "I32", shape: [2], data: [5, 6] } }, { k: "v" });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const f = openSafetensors(toFile(bytes));
    expect(f.size).toBe(bytes.byteLength);
    expect(f.dataOffset).toBe(8 + n);
    expect(f.bytesRead).toBe(8 + n);
    expect(f.metadata).toEqual({ k: "v" });
    expect(Array.from(f.float32("b"))).toEqual([5, 6]);
    expect(f.bytesRead).toBe(8 + n + 8);
    expect(Array.from(f.int("b"))).toEqual([5, 6]);
    expect(Array.from(f.bytes("a"))).toEqual(Array.from(bytes.subarray(8 + n, 8 + n + 16)));
    f.close();
    f.close();
    expect(() => f.float32("a")).toThrow(/file is closed/);
  });

  it("never reads the whole of a big (sparse) file", () => {
    // 1 GiB of 'big' after a small tensor; the file is sparse, so this costs no disk.
    const big = 2 ** 28;
    const header = new TextEncoder().encode(JSON.stringify({ small: f32([2], 0, 8), big: f32([big], 8, 8 + 4 * big) }));
    const path = join(dir, "big.safetensors");
    const fd = fs.openSync(path, "w");
    const pre = new Uint8Array(8);
    new DataView(pre.buffer).setBigUint64(0, BigInt(header.byteLength), true);
    fs.writeSync(fd, pre);
    fs.writeSync(fd, header);
    fs.writeSync(fd, new Uint8Array(Float32Array.of(0.5, -7).buffer));
    fs.ftruncateSync(fd, 8 + header.byteLength + 8 + 4 * big);
    fs.closeSync(fd);

    const spy = vi.spyOn(fs, "readSync");
    let f: SafetensorsFileHandle | undefined;
    try {
      f = openSafetensors(path);
      expect(f.size).toBe(8 + header.byteLength + 8 + 4 * big);
      expect(f.tensors.get("big")!.shape).toEqual([big]);
      expect(Array.from(f.float32("small"))).toEqual([0.5, -7]);
    } finally {
      f?.close();
    }
    const requested = spy.mock.calls.reduce((s, c) => s + ((c as unknown[])[3] as number), 0);
    expect(requested).toBe(8 + header.byteLength + 8);
    expect(f!.bytesRead).toBe(requested);
    fs.rmSync(path);
  });

  it("validates like readSafetensors and does not leak descriptors on failure", () => {
    const fds = () => (fs.existsSync("/proc/self/fd") ? fs.readdirSync("/proc/self/fd").length : 0);
    const before = fds();
    const bad = toFile(build({ a: f32([3], 0, 8) }, 8));
    for (let i = 0; i < 20; i++) expect(() => openSafetensors(bad)).toThrow(/8 bytes but shape \[3\] of F32 needs 12/);
    expect(fds()).toBe(before);
  });

  it("reports a missing file or a directory as a SafetensorsError", () => {
    expect(() => openSafetensors(join(dir, "does-not-exist"))).toThrow(SafetensorsError);
    expect(() => openSafetensors(join(dir, "does-not-exist"))).toThrow(/cannot open/);
    expect(() => openSafetensors(dir)).toThrow(SafetensorsError);
  });
});

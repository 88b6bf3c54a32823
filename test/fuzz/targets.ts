// The parsers under fuzz: for each, valid seed files, format-aware field mutations, what "parse"
// means (read every tensor / voxel the file claims), and how much a single allocation may be per
// input byte. Imported by the fuzz worker after the allocation watch is installed.
import fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "fflate";
import { readSafetensors, writeSafetensors, type SafetensorsTensors } from "../../weights/safetensors.ts";
import { openSafetensors } from "../../weights/safetensors_file.ts";
import { readNifti, writeNifti } from "../../src/io/nifti.ts";
import { PulmoError } from "../../src/runtime/errors.ts";
import { withFloat32, withInt, type FieldMutation } from "./mutate.ts";
import { dicomSeriesTarget, dicomTarget, rtstructTarget } from "./dicom_targets.ts";

export interface FuzzTarget {
  name: string;
  seeds: Uint8Array[];
  fields: FieldMutation[];
  /** parses the input completely; throws what the parser throws */
  run(bytes: Uint8Array): void;
  /** a single allocation may be at most allocFactor × input bytes + ALLOC_SLACK */
  allocFactor: number;
  /** called once when the worker is done (temp files) */
  cleanup?(): void;
}

/** fixed-size buffers (inflate windows, headers, small tables) */
export const ALLOC_SLACK = 1 << 20;

const pickOf = <T>(values: readonly T[], pick: number): T => values[pick % values.length]!;

/** Sizes of the "enormous" inputs: the quick run (test suite) keeps them small enough for seconds. */
let SIZES = { entries: [1000, 5000, 20_000], metadata: 2_000_000, depth: [1000, 100_000, 1_000_000] };
const QUICK_SIZES = { entries: [200, 1000, 3000], metadata: 200_000, depth: [100, 1000, 50_000] };

// ---------------------------------------------------------------------------------------------
// safetensors

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

/** A raw file from a header object/text and data bytes (no validation: seeds of odd dtypes). */
function rawSafetensors(header: unknown, data: Uint8Array, len?: bigint): Uint8Array {
  const text = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + text.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, len ?? BigInt(text.byteLength), true);
  out.set(text, 8);
  out.set(data, 8 + text.byteLength);
  return out;
}

function safetensorsSeeds(): Uint8Array[] {
  const r = lcg(7);
  const f = (n: number) => Float32Array.from({ length: n }, r);
  const seeds = [
    writeSafetensors({ "conv.weight": { shape: [4, 2, 3, 3], data: f(72) }, "conv.bias": { shape: [4], data: f(4) } }, { format: "pt" }),
    writeSafetensors({ a: { shape: [2, 3], data: f(6) }, idx: { dtype: "I64", shape: [3], data: [0, -5, 2 ** 40] }, n: { dtype: "I32", shape: [1], data: [7] } }),
    writeSafetensors({ scalar: { shape: [], data: [1.5] }, empty: { shape: [0, 4], data: [] } }, { note: "zero-size and scalar" }),
  ];
  // dtypes the writer does not produce, laid out by hand
  const half = new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 0x01, 0x00]);
  seeds.push(
    rawSafetensors(
      {
        h: { dtype: "F16", shape: [4], data_offsets: [0, 8] },
        b: { dtype: "BF16", shape: [2, 2], data_offsets: [8, 16] },
        u: { dtype: "U8", shape: [3], data_offsets: [16, 19] },
        i8: { dtype: "I8", shape: [1], data_offsets: [19, 20] },
        bool: { dtype: "BOOL", shape: [2], data_offsets: [20, 22] },
        i16: { dtype: "I16", shape: [1], data_offsets: [22, 24] },
        d: { dtype: "F64", shape: [1], data_offsets: [24, 32] },
      },
      Uint8Array.from([...half, ...half, 1, 2, 255, 0x80, 1, 0, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]),
    ),
  );
  // two small files the project really uses (golden cases)
  const golden = join(import.meta.dirname, "..", "golden", "ops");
  for (const name of ["matmul_0.safetensors", "prelu_0.safetensors"]) {
    const p = join(golden, name);
    if (fs.existsSync(p)) seeds.push(new Uint8Array(fs.readFileSync(p)));
  }
  return seeds;
}

/** Splits a file into its header object and data bytes, or null if the header is not JSON. */
function splitSafetensors(b: Uint8Array): { header: Record<string, any>; data: Uint8Array } | null {
  if (b.byteLength < 8) return null;
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  if (n > b.byteLength - 8) return null;
  try {
    const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n)));
    return header && typeof header === "object" && !Array.isArray(header) ? { header, data: b.slice(8 + n) } : null;
  } catch {
    return null;
  }
}

/** Applies `edit` to one tensor entry (chosen by `pick`) of the header and re-serialises. */
function editEntry(b: Uint8Array, pick: number, edit: (e: Record<string, unknown>, pick: number) => void): Uint8Array {
  const s = splitSafetensors(b);
  if (!s) return b;
  const names = Object.keys(s.header).filter((k) => k !== "__metadata__");
  if (!names.length) return b;
  const e = s.header[pickOf(names, pick)];
  if (!e || typeof e !== "object") return b;
  edit(e, Math.floor(pick / names.length));
  try {
    return rawSafetensors(s.header, s.data);
  } catch {
    return b; // a header nested too deeply for JSON.stringify: leave it as it is
  }
}

const EXTREME_SHAPES: unknown[] = [
  [2 ** 31, 2 ** 31], [1e12], [2 ** 31], [-1], [1.5], ["4"], [2 ** 53], [2 ** 53, 2 ** 53, 2 ** 53], null, 2 ** 31, [0], [], [1e308], {},
];
const EXTREME_OFFSETS: unknown[] = [
  [-1, 4], [0, 2 ** 63], [0, 1e20], [5, 3], [0], [0, 0, 0], "0,4", [0.5, 4], [2 ** 53, 2 ** 53 + 8], null, [0, -8], [1e308, 1e308],
];
const ODD_DTYPES: unknown[] = ["F8", "toString", "__proto__", "constructor", 5, null, "f32", "", "F32 ", "I128", "hasOwnProperty"];

function nested(depth: number, open: string, close: string): string {
  return open.repeat(depth) + close.repeat(depth);
}

const safetensorsFields: FieldMutation[] = [
  // the 8-byte header length: 2^63, 2^64 − 1, 100 MB + 1, and off by a little
  (b, pick) => {
    if (b.byteLength < 8) return b;
    const out = b.slice();
    const dv = new DataView(out.buffer);
    const real = dv.getBigUint64(0, true);
    const v = pickOf([2n ** 63n, 2n ** 64n - 1n, 100n * 1024n * 1024n + 1n, 2n ** 53n, real + 1n, real - 1n, real + 8n, 0n, 2n ** 32n], pick);
    dv.setBigUint64(0, BigInt.asUintN(64, v), true);
    return out;
  },
  (b, pick) => editEntry(b, pick, (e, p) => void (e.shape = pickOf(EXTREME_SHAPES, p))),
  (b, pick) => editEntry(b, pick, (e, p) => void (e.data_offsets = pickOf(EXTREME_OFFSETS, p))),
  (b, pick) => editEntry(b, pick, (e, p) => void (e.dtype = pickOf(ODD_DTYPES, p))),
  (b, pick) =>
    editEntry(b, pick, (e, p) => {
      // a shape that claims more elements with offsets to match: must be caught by the size check
      const off = e.data_offsets as number[] | undefined;
      if (Array.isArray(off) && off.length === 2) e.data_offsets = [off[0], (off[0] as number) + 4 * pickOf([2 ** 30, 2 ** 40, 1e12], p)];
      e.shape = [pickOf([2 ** 30, 2 ** 40, 1e12], p)];
    }),
  (b, pick) => editEntry(b, pick, (e, p) => void delete e[pickOf(["dtype", "shape", "data_offsets"], p)]),
  // deeply nested JSON (arrays or objects), as a tensor entry and in the metadata
  (b, pick) => {
    const s = splitSafetensors(b);
    const depth = pickOf(SIZES.depth, pick);
    const deep = pick % 2 ? nested(depth, "[", "]") : nested(depth, '{"a":', "}").replace(/:}/, ":1}");
    const head = pick % 3 === 0 ? `{"__metadata__":{"x":${deep}}}` : `{"t":${deep}}`;
    return rawSafetensors(head, s?.data ?? new Uint8Array(0));
  },
  // enormous headers: many entries, one huge metadata string
  (b, pick) => {
    const count = pickOf(SIZES.entries, pick);
    const header: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) header[`t${i}`] = { dtype: "F32", shape: [0], data_offsets: [0, 0] };
    return rawSafetensors(header, new Uint8Array(0));
  },
  (b, pick) => {
    const s = splitSafetensors(b);
    if (!s) return b;
    s.header.__metadata__ = pickOf([{ big: "x".repeat(SIZES.metadata) }, { n: 5 }, [], "meta", null, { a: { b: "c" } }], pick);
    try {
      return rawSafetensors(s.header, s.data);
    } catch {
      return b;
    }
  },
  // duplicate keys, non-object headers, broken UTF-8, trailing garbage
  (b, pick) => {
    const s = splitSafetensors(b);
    const data = s?.data ?? new Uint8Array(0);
    const text = new TextDecoder().decode(b.subarray(8, Math.min(b.byteLength, 8 + (s ? b.byteLength - 8 - data.byteLength : 0))));
    const variants = [
      text.replace(/^\{/, `{"dup":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"dup":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},`),
      "[]", "null", "42", '"text"', "{", text + "garbage", text.slice(0, -1), "{\"a\":\"\\ud800\"}",
    ];
    const v = pickOf(variants, pick);
    if (pick % 11 === 3) {
      const bad = rawSafetensors(v, data);
      if (bad.byteLength > 9) bad[9] = 0xff; // invalid UTF-8
      return bad;
    }
    return rawSafetensors(v, data);
  },
];

/** Reads every tensor the file claims, as the engine's loaders do. */
function readAll(f: SafetensorsTensors): void {
  for (const name of f.names) {
    const t = f.tensors.get(name)!;
    f.float32(name);
    if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "F64") f.int(name);
  }
}

function safetensorsTarget(): FuzzTarget {
  return {
    name: "safetensors",
    seeds: safetensorsSeeds(),
    fields: safetensorsFields,
    run: (bytes) => readAll(readSafetensors(bytes)),
    // U8 → Int32 and Float32 copies: 4 bytes per input byte
    allocFactor: 4,
  };
}

function safetensorsFileTarget(): FuzzTarget {
  const dir = fs.mkdtempSync(join(tmpdir(), "pulmo-fuzz-"));
  const path = join(dir, "input.safetensors");
  return {
    name: "safetensors_file",
    seeds: safetensorsSeeds(),
    fields: safetensorsFields,
    run(bytes) {
      fs.writeFileSync(path, bytes);
      const f = openSafetensors(path);
      try {
        readAll(f);
        for (const name of f.names) f.bytes(name);
      } finally {
        f.close();
      }
    },
    allocFactor: 4,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------
// NIfTI

function niftiSeeds(): Uint8Array[] {
  const r = lcg(11);
  const vol = (shape: [number, number, number]) => ({ data: Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, () => Math.round(r() * 1000)), shape, spacing: [2.5, 0.8, 0.8] as [number, number, number] });
  const seeds = [
    writeNifti(vol([4, 5, 6]), { datatype: "int16" }),
    writeNifti(vol([3, 4, 4]), { datatype: "float32" }),
    writeNifti(vol([2, 3, 3]), { datatype: "float64", slope: 2, inter: -1024 }),
    writeNifti({ ...vol([2, 2, 8]), data: new Float32Array(32).fill(1) }, { datatype: "uint8" }),
    writeNifti(vol([1, 3, 5]), { datatype: "int32" }),
    writeNifti({ ...vol([2, 2, 2]), data: Float32Array.from({ length: 8 }, (_, i) => i) }, { datatype: "uint16" }),
  ];
  // a qform-only file and a big-endian one (every header field and voxel byte-swapped)
  const q = withInt(withInt(seeds[0]!, 254, 2, 0), 252, 2, 1);
  seeds.push(withFloat32(withFloat32(q, 256, 0.1), 260, -0.2));
  seeds.push(bigEndian(seeds[0]!, 2));
  return seeds;
}

const SWAP: [number, number, number][] = [
  [0, 4, 1], [32, 4, 1], [36, 2, 1], [40, 2, 8], [56, 4, 3], [68, 2, 3], [74, 2, 1], [76, 4, 8],
  [108, 4, 3], [120, 2, 1], [124, 4, 4], [140, 4, 2], [252, 2, 2], [256, 4, 6], [280, 4, 12],
];
function bigEndian(le: Uint8Array, voxelBytes: number): Uint8Array {
  const out = le.slice();
  for (const [o, size, count] of SWAP) for (let k = 0; k < count; k++) out.subarray(o + k * size, o + (k + 1) * size).reverse();
  for (let o = 352; o + voxelBytes <= out.byteLength; o += voxelBytes) out.subarray(o, o + voxelBytes).reverse();
  return out;
}

const isBigEndian = (b: Uint8Array) => b.byteLength >= 4 && new DataView(b.buffer, b.byteOffset).getInt32(0, false) === 348;
const i16Field = (offset: number, values: number[]): FieldMutation => (b, pick) => withInt(b, offset, 2, pickOf(values, pick), !isBigEndian(b));
const f32Field = (offset: number, values: number[]): FieldMutation => (b, pick) => withFloat32(b, offset, pickOf(values, pick), !isBigEndian(b));
const DIMS = [0, -1, 1, 2, 32767, -32768, 255, 256];
const FLOATS = [NaN, Infinity, -Infinity, -1, 0, 1e38, -1e-38, 2 ** 31];

const niftiFields: FieldMutation[] = [
  i16Field(40, [0, -1, 1, 2, 3, 4, 5, 7, 8, 32767, -32768]),
  ...[42, 44, 46].map((o) => i16Field(o, DIMS)),
  // all three spatial dimensions at the int16 maximum: 32767³ voxels claimed
  (b, pick) => [42, 44, 46].reduce((x, o) => withInt(x, o, 2, pickOf([32767, 32767, -1, 0], pick), !isBigEndian(b)), b),
  ...[48, 50, 52, 54].map((o) => i16Field(o, [0, 2, 32767, -1])),
  i16Field(70, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304, -1, 32767]),
  i16Field(72, [0, -1, 1, 8, 16, 32, 64, 128, 32767]),
  f32Field(108, [NaN, Infinity, -Infinity, -1, 0, 347, 348, 352.7, 353, 1e30, 2 ** 31, 2 ** 32, 4096, 65536]),
  f32Field(112, FLOATS),
  f32Field(116, FLOATS),
  (b, pick) => withInt(b, 0, 4, pickOf([0, 540, -1, 347, 349, 0x5c010000], pick)),
  (b, pick) => {
    if (b.byteLength < 348) return b;
    const out = b.slice();
    out.set(pickOf([[0x6e, 0x69, 0x31, 0], [0x6e, 0x2b, 0x32, 0], [0, 0, 0, 0], [0x6e, 0x2b, 0x31, 0x31]], pick), 344);
    return out;
  },
  i16Field(252, [-1, 0, 1, 2, 32767]),
  i16Field(254, [-1, 0, 1, 4, 32767]),
  ...[256, 260, 264, 268].map((o) => f32Field(o, [NaN, 2, -2, Infinity, 1e38])),
  ...[76, 80, 84, 88].map((o) => f32Field(o, [NaN, -1, 0, Infinity, 1e-38])),
  ...[280, 296, 312].map((o) => f32Field(o, [NaN, Infinity, 0, 1e38])),
  // a non-finite voxel in a float file
  (b, pick) => (b.byteLength >= 356 && !isBigEndian(b) && new DataView(b.buffer, b.byteOffset).getInt16(70, true) === 16 ? withFloat32(b, 352 + 4 * (pick % Math.max(1, (b.byteLength - 352) >> 2)), pickOf([NaN, Infinity, -Infinity], pick)) : b),
];

function niftiTarget(): FuzzTarget {
  return {
    name: "nifti",
    seeds: niftiSeeds(),
    fields: niftiFields,
    run: (bytes) => void readNifti(bytes),
    // uint8 voxels become float32: 4 bytes per input byte
    allocFactor: 4,
  };
}

/** gunzipSync for the harness's own use, refusing streams whose trailer claims over 16 MiB
 * (fflate allocates whatever the trailer claims). */
function smallGunzip(b: Uint8Array): Uint8Array {
  if (b.byteLength < 18) throw new Error("too short");
  const isize = new DataView(b.buffer, b.byteOffset + b.byteLength - 4, 4).getUint32(0, true);
  if (isize > 1 << 24) throw new Error("too large");
  return gunzipSync(b);
}

const GZ_FIELDS: FieldMutation[] = [
  // a NIfTI field mutation under the compression, so the header checks are reached through gzip
  ...niftiFields.map((m): FieldMutation => (b, pick) => {
    try {
      return gzipSync(m(smallGunzip(b), pick));
    } catch {
      return b;
    }
  }),
  // the trailer's ISIZE (uncompressed size mod 2^32): 4 GiB − 1, 0, 2^31
  (b, pick) => (b.byteLength < 8 ? b : withInt(b, b.byteLength - 4, 4, pickOf([-1, 0, 2 ** 31 - 1, -(2 ** 31), 1], pick))),
  // gzip header flags: FEXTRA with a huge XLEN, FNAME/FCOMMENT without terminator, FHCRC
  (b, pick) => {
    if (b.byteLength < 12) return b;
    const out = b.slice();
    out[3] = pickOf([4, 8, 16, 2, 0xff, 0xe0], pick);
    if (out[3] === 4) (out[10] = 0xff), (out[11] = 0xff);
    return out;
  },
  // a header claiming 32767³ uint8 voxels with almost no data (a bomb that cannot be)
  (b, pick) => {
    try {
      const raw = smallGunzip(b);
      return gzipSync([42, 44, 46].reduce((x, o) => withInt(x, o, 2, 32767), withInt(raw, 70, 2, pickOf([2, 64], pick))));
    } catch {
      return b;
    }
  },
  // a real high-ratio stream: a large uniform uint8 volume compresses over 500:1 and must parse
  (_b, pick) => {
    const s = pickOf([32, 64, 96], pick);
    return writeNifti({ data: new Float32Array(s * s * s), shape: [s, s, s], spacing: [1, 1, 1] }, { datatype: "uint8", gzip: true });
  },
];

function niftiGzTarget(): FuzzTarget {
  return {
    name: "nifti_gz",
    seeds: niftiSeeds().map((s) => gzipSync(s)),
    fields: GZ_FIELDS,
    run: (bytes) => void readNifti(bytes),
    // deflate expands at most ~1032:1, and uint8 voxels become float32
    allocFactor: 4 * 1032,
  };
}

// ---------------------------------------------------------------------------------------------

/** A target with planted bugs, for the harness's own test: it must count each kind. By input
 * length mod 40: 0 loops forever, 1 asks for a 10^12-element array, 2–5 throw a TypeError,
 * 6–25 throw our error, the rest parse. */
function selfcheckTarget(): FuzzTarget {
  return {
    name: "selfcheck",
    seeds: [new Uint8Array(400).fill(7)],
    fields: [],
    run(bytes) {
      const v = bytes.length % 40;
      if (v === 0) for (;;);
      if (v === 1) void new Float32Array(1e12);
      if (v < 6) throw new TypeError("planted crash");
      if (v < 26) throw new PulmoError("planted rejection");
    },
    allocFactor: 4,
  };
}

const TARGETS: Record<string, () => FuzzTarget> = {
  selfcheck: selfcheckTarget,
  safetensors: safetensorsTarget,
  safetensors_file: safetensorsFileTarget,
  nifti: niftiTarget,
  nifti_gz: niftiGzTarget,
  dicom: dicomTarget,
  dicom_series: dicomSeriesTarget,
  rtstruct: rtstructTarget,
};

/** A target by name; `quick` shrinks the enormous inputs (large headers) for the test suite. */
export function makeTarget(name: string, quick = false): FuzzTarget {
  const make = TARGETS[name];
  if (!make) throw new Error(`no fuzz target '${name}' (have ${Object.keys(TARGETS).join(", ")})`);
  if (quick) SIZES = QUICK_SIZES;
  return make();
}

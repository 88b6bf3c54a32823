// safetensors read/write: 8-byte little-endian header length, JSON header, raw little-endian
// data. Reading validates the whole header before touching data, so a malformed file fails
// with a message naming the problem instead of allocating or reading garbage.
//
// The validation (`headerLength`, `parseHeader`) and the dtype decoding (`decodeFloat32`,
// `decodeInt`) are shared with the lazy Node file reader in ./safetensors_file.ts.
// Format, conversions and errors: docs/weights.md.
import { PulmoError } from "../src/runtime/errors.ts";

export type SafeDType = "F32" | "F16" | "BF16" | "F64" | "I32" | "I64" | "U8" | "I8" | "I16" | "U16" | "BOOL";
/** Bytes per element of every dtype this reader understands. */
export const DTYPE_BYTES: Readonly<Record<SafeDType, number>> = Object.freeze({
  F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8, U8: 1, I8: 1, I16: 2, U16: 2, BOOL: 1,
});

/** Headers above this are refused (the reference implementation uses 100 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export class SafetensorsError extends PulmoError {
  constructor(message: string) {
    super(`safetensors: ${message}`);
    this.name = "SafetensorsError";
  }
}

export interface TensorEntry {
  name: string;
  dtype: SafeDType;
  shape: number[];
  /** byte range within the data section */
  begin: number;
  end: number;
}

/** A validated header: what both readers know before reading any tensor data. */
export interface SafetensorsHeader {
  metadata: Record<string, string>;
  tensors: Map<string, TensorEntry>;
  /** names in header order */
  names: string[];
}

/** What both readers offer: the header plus tensors decoded on demand. */
export interface SafetensorsTensors extends SafetensorsHeader {
  /** a tensor as float32 (F16/BF16/F64/ints converted; see docs/weights.md) */
  float32(name: string): Float32Array;
  /** an integer tensor (I32, I64 within ±2^53, U8, ...) as numbers */
  int(name: string): Int32Array | number[];
  has(name: string): boolean;
}

/** A safetensors file held in memory (`readSafetensors`). */
export interface SafetensorsFile extends SafetensorsTensors {
  /** raw bytes of the data section (a view, never a copy) */
  data: Uint8Array;
  /** as on SafetensorsTensors; an F32 tensor at a 4-byte-aligned address is returned as a view
   * into the file's buffer (no copy: writing to it writes to the buffer) */
  float32(name: string): Float32Array;
}

function fail(m: string): never {
  throw new SafetensorsError(m);
}

/**
 * Validates the 8-byte preamble of a file of `fileBytes` bytes and returns the header length.
 * `prefix` holds the file's first bytes (at least 8 when the file has them). The length is checked
 * as a 64-bit integer against the limit and the file size before any allocation, so a forged
 * length such as 2^63 is refused without trying to allocate it.
 */
export function headerLength(prefix: Uint8Array, fileBytes: number): number {
  if (fileBytes < 8 || prefix.byteLength < 8)
    fail(`truncated file: ${fileBytes} bytes, need at least 8 for the header length`);
  const len = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (len > BigInt(MAX_HEADER_BYTES)) fail(`header length ${len} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(len);
  if (8 + n > fileBytes) fail(`header length ${n} runs past the end of the ${fileBytes}-byte file (truncated?)`);
  return n;
}

/**
 * Parses and validates a header (the `n` bytes after the length) for a data section of
 * `dataBytes` bytes: UTF-8 JSON object, no duplicate keys, `__metadata__` an object of strings,
 * every tensor a known dtype with a non-negative integer shape and in-range offsets whose size is
 * exactly shape × dtype, and the tensors tiling the data section with no overlap and no gap.
 */
export function parseHeader(headerBytes: Uint8Array, dataBytes: number): SafetensorsHeader {
  let text: string;
  let header: unknown;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch (e) {
    fail(`header is not valid JSON (not UTF-8: ${(e as Error).message})`);
  }
  // A real header nests 3 deep; refusing deep nesting first keeps a hostile header from costing
  // seconds of parsing (and one Set per level in checkDuplicateKeys).
  checkNesting(text);
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== "object" || Array.isArray(header)) fail(`header must be a JSON object, got ${describe(header)}`);
  // JSON.parse keeps the last of duplicate keys; detect duplicates from the raw text.
  checkDuplicateKeys(text);
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (!v || typeof v !== "object" || Array.isArray(v)) fail(`__metadata__ must be an object of strings, got ${describe(v)}`);
      for (const [k, s] of Object.entries(v as object)) if (typeof s !== "string") fail(`__metadata__.${k} must be a string, got ${describe(s)}`);
      metadata = v as Record<string, string>;
      continue;
    }
    if (!v || typeof v !== "object" || Array.isArray(v)) fail(`tensor '${name}': entry must be an object, got ${describe(v)}`);
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    // hasOwn, not `in`: "toString" or "__proto__" must not pass as a dtype.
    if (typeof e.dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, e.dtype)) fail(`tensor '${name}': unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      fail(`tensor '${name}': shape must be a list of non-negative integers, got ${JSON.stringify(e.shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || off.some((d) => !Number.isSafeInteger(d) || d < 0))
      fail(`tensor '${name}': data_offsets must be two non-negative integers, got ${JSON.stringify(off)}`);
    const [begin, end] = off as [number, number];
    if (end < begin) fail(`tensor '${name}': data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataBytes) fail(`tensor '${name}': data_offsets [${begin}, ${end}] out of range (data section is ${dataBytes} bytes; truncated?)`);
    const dtype = e.dtype as SafeDType;
    const shape = e.shape as number[];
    // Each dimension is a safe integer but the product may not be; it is only compared with a
    // byte count that is, so an overflowing product can never pass.
    const need = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (need !== end - begin) fail(`tensor '${name}': ${end - begin} bytes but shape [${shape.join(", ")}] of ${dtype} needs ${need}`);
    tensors.set(name, { name, dtype, shape, begin, end });
  }
  // Offsets must tile the data section exactly: no overlap, no gap.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev = "";
  for (const t of sorted) {
    if (t.begin < at) fail(`tensor '${t.name}' overlaps tensor '${prev}' (begins at ${t.begin}, '${prev}' ends at ${at})`);
    if (t.begin > at) fail(`gap in data section before tensor '${t.name}' (bytes ${at}..${t.begin} belong to no tensor)`);
    at = t.end;
    prev = t.name;
  }
  if (at !== dataBytes) fail(`data section is ${dataBytes} bytes but tensors cover ${at} (${dataBytes > at ? "trailing bytes" : "truncated"})`);
  return { metadata, tensors, names: [...tensors.keys()] };
}

function describe(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
}

/** Parses a safetensors buffer. Only the header is decoded eagerly; tensors are decoded on demand
 * from views into `bytes`. */
export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  const n = headerLength(bytes.subarray(0, 8), bytes.byteLength);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.byteLength - 8 - n);
  const data = bytes.subarray(8 + n);
  const entry = (name: string) => header.tensors.get(name) ?? fail(`missing tensor '${name}'`);
  return {
    ...header,
    data,
    has: (name) => header.tensors.has(name),
    float32(name) {
      const t = entry(name);
      return decodeFloat32(t, data.subarray(t.begin, t.end));
    },
    int(name) {
      const t = entry(name);
      return decodeInt(t, data.subarray(t.begin, t.end));
    },
  };
}

/** Deepest bracket nesting accepted in a header (real ones: object → entry → shape list). */
export const MAX_HEADER_NESTING = 32;

/** Rejects JSON text whose brackets (outside strings) nest deeper than MAX_HEADER_NESTING. */
function checkNesting(text: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // skip a string literal (escapes included); an unterminated one is left to JSON.parse
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_HEADER_NESTING) fail(`header JSON nests deeper than ${MAX_HEADER_NESTING} levels (a real header nests 3)`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

/** Rejects a duplicate key in any object of the (already valid) JSON text. */
function checkDuplicateKeys(text: string): void {
  // One Set per open object (null for arrays); a string followed by ':' is a key of the innermost.
  const stack: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{") stack.push(new Set());
    else if (c === "[") stack.push(null);
    else if (c === "}" || c === "]") stack.pop();
    else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const literal = text.slice(i, j + 1);
      i = j;
      const keys = stack[stack.length - 1];
      if (!keys) continue;
      let k = j + 1;
      while (k < text.length && (text[k] === " " || text[k] === "\t" || text[k] === "\n" || text[k] === "\r")) k++;
      if (text[k] !== ":") continue;
      const key = literal.includes("\\") ? (JSON.parse(literal) as string) : literal.slice(1, -1);
      if (keys.has(key))
        fail(stack.length === 1 ? `duplicate tensor name '${key}'` : `duplicate key '${key}' in a header object (ambiguous)`);
      keys.add(key);
    }
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** `raw` (exactly the tensor's bytes) as float32: F32 viewed in place when 4-byte aligned, else
 * copied; F16 and BF16 widened exactly; F64 rounded to nearest; integers converted (I64 must be
 * within ±2^53). */
export function decodeFloat32(t: TensorEntry, raw: Uint8Array): Float32Array {
  const n = (t.end - t.begin) / DTYPE_BYTES[t.dtype];
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(n);
  switch (t.dtype) {
    case "F32":
      if (raw.byteOffset % 4 === 0 && LITTLE_ENDIAN) return new Float32Array(raw.buffer, raw.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    case "F16":
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      return out;
    case "BF16": {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(i * 2, true) << 16;
      return out;
    }
    case "F64":
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    default: {
      const ints = decodeInt(t, raw);
      for (let i = 0; i < n; i++) out[i] = ints[i]!;
      return out;
    }
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `raw` (exactly the tensor's bytes) of an integer or BOOL tensor as numbers. */
export function decodeInt(t: TensorEntry, raw: Uint8Array): Int32Array | number[] {
  const n = (t.end - t.begin) / DTYPE_BYTES[t.dtype];
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (t.dtype) {
    case "I32": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      return out;
    }
    case "I64": {
      const out: number[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(i * 8, true);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
          fail(`tensor '${t.name}': I64 value ${v} at index ${i} is beyond ±2^53`);
        out[i] = Number(v);
      }
      return out;
    }
    case "U8":
    case "BOOL":
      return Int32Array.from(raw);
    case "I8":
      return Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, n));
    case "I16":
      return Int32Array.from({ length: n }, (_, i) => dv.getInt16(i * 2, true));
    case "U16":
      return Int32Array.from({ length: n }, (_, i) => dv.getUint16(i * 2, true));
    default:
      fail(`tensor '${t.name}': dtype ${t.dtype} is not an integer type`);
  }
}

export interface TensorToWrite {
  dtype?: "F32" | "I32" | "I64";
  shape: readonly number[];
  data: Float32Array | Int32Array | ArrayLike<number>;
}

/** Serialises tensors in the given order (header padded with spaces to 8 bytes, as PyTorch does).
 * I32 and I64 values must be integers within the dtype's range (I64: within ±2^53). */
export function writeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== "string") fail(`__metadata__.${k} must be a string, got ${describe(v)}`);
    header.__metadata__ = metadata;
  }
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (name === "__metadata__") fail("'__metadata__' is reserved and cannot name a tensor");
    const dtype = t.dtype ?? "F32";
    if (!(dtype === "F32" || dtype === "I32" || dtype === "I64")) fail(`tensor '${name}': cannot write dtype ${JSON.stringify(dtype)} (F32, I32, I64)`);
    if (!Array.isArray(t.shape as unknown) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      fail(`tensor '${name}': shape must be a list of non-negative integers, got ${JSON.stringify(t.shape)}`);
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== elements) fail(`tensor '${name}': ${t.data.length} values for shape [${t.shape.join(", ")}]`);
    let bytes: Uint8Array;
    if (dtype === "F32") bytes = new Uint8Array(Float32Array.from(t.data as ArrayLike<number>).buffer);
    else {
      const [lo, hi] = dtype === "I32" ? [-(2 ** 31), 2 ** 31 - 1] : [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
      for (let i = 0; i < elements; i++) {
        const v = t.data[i]!;
        if (!Number.isInteger(v) || v < lo || v > hi) fail(`tensor '${name}': value ${v} at index ${i} is not a valid ${dtype}`);
      }
      bytes =
        dtype === "I32"
          ? new Uint8Array(Int32Array.from(t.data as ArrayLike<number>).buffer)
          : new Uint8Array(BigInt64Array.from(Array.from(t.data as ArrayLike<number>, (v) => BigInt(v))).buffer);
    }
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    parts.push(bytes);
  }
  const json = JSON.stringify(header);
  const enc = new TextEncoder();
  let headerBytes = enc.encode(json);
  const pad = (8 - (headerBytes.byteLength % 8)) % 8;
  if (pad) headerBytes = enc.encode(json + " ".repeat(pad));
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

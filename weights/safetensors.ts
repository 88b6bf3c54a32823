// safetensors read/write: 8-byte little-endian header length, JSON header, raw little-endian
// data. Reading validates the whole header before touching data, so a malformed file fails
// with a message naming the problem instead of allocating or reading garbage.
import { PulmoError } from "../src/runtime/errors.ts";

export type SafeDType = "F32" | "F16" | "BF16" | "F64" | "I32" | "I64" | "U8" | "I8" | "I16" | "U16" | "BOOL";
const DTYPE_BYTES: Record<SafeDType, number> = {
  F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8, U8: 1, I8: 1, I16: 2, U16: 2, BOOL: 1,
};

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

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, TensorEntry>;
  /** names in file order */
  names: string[];
  /** raw bytes of the data section (a view, never a copy) */
  data: Uint8Array;
  /** a tensor as float32 (F32 viewed where aligned, F16/BF16/F64/ints converted) */
  float32(name: string): Float32Array;
  /** an integer tensor (I32, I64 within ±2^53, U8, ...) as numbers */
  int(name: string): Int32Array | number[];
  has(name: string): boolean;
}

function fail(m: string): never {
  throw new SafetensorsError(m);
}

/** Parses a safetensors buffer. Only the header is decoded eagerly; tensors are decoded on demand
 * from views into `bytes`. */
export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.byteLength < 8) fail(`truncated file: ${bytes.byteLength} bytes, need at least 8 for the header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = dv.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(headerLen);
  if (8 + n > bytes.byteLength) fail(`header length ${n} runs past the end of the ${bytes.byteLength}-byte file (truncated?)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== "object" || Array.isArray(header)) fail("header must be a JSON object");
  const data = bytes.subarray(8 + n);
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  const raw = header as Record<string, unknown>;
  // JSON.parse keeps the last of duplicate keys; detect duplicates from the raw text.
  checkDuplicateKeys(bytes.subarray(8, 8 + n));
  for (const [name, v] of Object.entries(raw)) {
    if (name === "__metadata__") {
      if (!v || typeof v !== "object" || Array.isArray(v)) fail("__metadata__ must be an object of strings");
      for (const [k, s] of Object.entries(v as object))
        if (typeof s !== "string") fail(`__metadata__.${k} must be a string`);
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== "object") fail(`tensor '${name}': entry must be an object`);
    if (typeof e.dtype !== "string" || !(e.dtype in DTYPE_BYTES)) fail(`tensor '${name}': unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      fail(`tensor '${name}': shape must be a list of non-negative integers, got ${JSON.stringify(e.shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || off.some((d) => !Number.isSafeInteger(d) || d < 0))
      fail(`tensor '${name}': data_offsets must be two non-negative integers, got ${JSON.stringify(off)}`);
    const [begin, end] = off as [number, number];
    if (end < begin) fail(`tensor '${name}': data_offsets [${begin}, ${end}] end before they begin`);
    if (end > data.byteLength) fail(`tensor '${name}': data_offsets [${begin}, ${end}] out of range (data section is ${data.byteLength} bytes; truncated?)`);
    const dtype = e.dtype as SafeDType;
    const shape = e.shape as number[];
    const elements = shape.reduce((a, b) => a * b, 1);
    if (elements * DTYPE_BYTES[dtype] !== end - begin)
      fail(`tensor '${name}': ${end - begin} bytes but shape [${shape.join(", ")}] of ${dtype} needs ${elements * DTYPE_BYTES[dtype]}`);
    tensors.set(name, { name, dtype, shape, begin, end });
  }
  // Offsets must tile the data section exactly: no overlap, no gap.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const t of sorted) {
    if (t.begin < at) fail(`tensor '${t.name}' overlaps the previous tensor (begins at ${t.begin}, previous ends at ${at})`);
    if (t.begin > at) fail(`gap in data section before tensor '${t.name}' (bytes ${at}..${t.begin})`);
    at = t.end;
  }
  if (at !== data.byteLength) fail(`data section is ${data.byteLength} bytes but tensors cover ${at}`);

  const entry = (name: string) => tensors.get(name) ?? fail(`missing tensor '${name}'`);
  return {
    metadata,
    tensors,
    names: [...tensors.keys()],
    data,
    has: (name) => tensors.has(name),
    float32(name) {
      const t = entry(name);
      return toFloat32(t, data.subarray(t.begin, t.end));
    },
    int(name) {
      const t = entry(name);
      return toInt(t, data.subarray(t.begin, t.end));
    },
  };
}

function checkDuplicateKeys(headerBytes: Uint8Array): void {
  // Top-level keys only: walk the JSON with a depth counter, collecting strings followed by ':' at depth 1.
  const text = new TextDecoder().decode(headerBytes);
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const key = text.slice(i, j + 1);
      i = j;
      if (depth === 1) {
        let k = j + 1;
        while (k < text.length && /\s/.test(text[k]!)) k++;
        if (text[k] === ":") {
          const name = JSON.parse(key) as string;
          if (seen.has(name)) fail(`duplicate tensor name '${name}'`);
          seen.add(name);
        }
      }
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

function toFloat32(t: TensorEntry, raw: Uint8Array): Float32Array {
  const n = (t.end - t.begin) / DTYPE_BYTES[t.dtype];
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(n);
  switch (t.dtype) {
    case "F32":
      if (raw.byteOffset % 4 === 0) return new Float32Array(raw.buffer, raw.byteOffset, n);
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
      const ints = toInt(t, raw);
      for (let i = 0; i < n; i++) out[i] = ints[i]!;
      return out;
    }
  }
}

function toInt(t: TensorEntry, raw: Uint8Array): Int32Array | number[] {
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

/** Serialises tensors in the given order (header padded with spaces to 8 bytes, as PyTorch does). */
export function writeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (name === "__metadata__") fail("'__metadata__' is reserved and cannot name a tensor");
    const dtype = t.dtype ?? "F32";
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== elements) fail(`tensor '${name}': ${t.data.length} values for shape [${t.shape.join(", ")}]`);
    let bytes: Uint8Array;
    if (dtype === "F32") bytes = new Uint8Array(Float32Array.from(t.data as ArrayLike<number>).buffer);
    else if (dtype === "I32") bytes = new Uint8Array(Int32Array.from(t.data as ArrayLike<number>).buffer);
    else bytes = new Uint8Array(BigInt64Array.from(Array.from(t.data as ArrayLike<number>, (v) => BigInt(v))).buffer);
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    parts.push(bytes);
  }
  let json = JSON.stringify(header);
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

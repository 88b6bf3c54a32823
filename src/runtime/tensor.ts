import type { Binding, Device } from "./device.ts";
import { PulmoError, shapeStr } from "./errors.ts";

/** Element types. "f16" is half-precision storage (2 bytes an element, buffers padded to 4 bytes);
 * its kernels need the device feature 'shader-f16' (kernels.ts, the "f16" variant), and host data
 * crosses as f32 numbers, converted in JS (round to nearest even) since Node 20 has no Float16Array. */
export type DType = "f32" | "i32" | "u32" | "f16";
export type TypedArray = Float32Array | Int32Array | Uint32Array;

/** Bytes per element of a dtype. */
export function bytesPerElement(dtype: DType): number {
  return dtype === "f16" ? 2 : 4;
}

/** Bytes a buffer (or binding) of `n` elements of `dtype` takes: at least 4 and a multiple of 4. */
function paddedBytes(n: number, dtype: DType): number {
  return Math.max(4, Math.ceil((n * bytesPerElement(dtype)) / 4) * 4);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits of the f32 nearest to `v`, rounded to nearest even (overflow to ±Inf,
 * subnormals kept, NaN stays NaN). */
export function f32ToF16Bits(v: number): number {
  f32Scratch[0] = v;
  const b = u32Scratch[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // subnormal half (or zero): shift the implicit-1 mantissa into place, round to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // carries into the exponent correctly
  return h;
}

/** The number an IEEE binary16 bit pattern holds. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** f16 bit patterns of `data` (padded to an even count, so the upload is whole 4-byte words). */
export function encodeF16(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length + (data.length & 1));
  for (let i = 0; i < data.length; i++) out[i] = f32ToF16Bits(data[i]!);
  return out;
}

/** The numbers in `count` f16 bit patterns. */
export function decodeF16(bits: Uint16Array, count = bits.length): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = f16BitsToF32(bits[i]!);
  return out;
}

/** A pooled GPU buffer shared by a tensor and its reshape views; returned to the pool when
 * the last of them is disposed. */
class Storage {
  refs = 1;
  constructor(
    readonly device: Device,
    readonly buffer: GPUBuffer,
  ) {}
  release(): void {
    if (--this.refs === 0) this.device.pool.release(this.buffer);
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(shape: readonly number[]): void {
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0) throw new PulmoError(`invalid shape ${shapeStr(shape)}: dimensions must be non-negative integers`);
}

/** Contiguous row-major data in a GPU buffer: 4-byte elements, or 2-byte ones for "f16" (whose
 * buffers and bindings are padded to whole 4-byte words). Ops never mutate their inputs. */
export class Tensor {
  readonly size: number;
  private disposed = false;
  /** autograd: set by src/graph */
  requiresGrad = false;
  grad: Tensor | null = null;
  gradNode: unknown = null;

  private constructor(
    readonly device: Device,
    readonly shape: readonly number[],
    private readonly storage: Storage,
    readonly dtype: DType,
    /** element offset into the storage (for chunked views) */
    readonly offset: number,
    track: boolean,
  ) {
    this.size = numel(shape);
    if (track) device.scopes.at(-1)?.add(this);
  }

  /** An uninitialised tensor: every kernel that writes one writes all of it. */
  static empty(device: Device, shape: readonly number[], dtype: DType = "f32", label = "tensor"): Tensor {
    checkShape(shape);
    const buffer = device.pool.acquire(paddedBytes(numel(shape), dtype), `${label} ${shapeStr(shape)}`);
    return new Tensor(device, [...shape], new Storage(device, buffer), dtype, 0, true);
  }

  static zeros(device: Device, shape: readonly number[], dtype: DType = "f32"): Tensor {
    const t = Tensor.empty(device, shape, dtype);
    device.clear(t.storage.buffer, 0, t.size * bytesPerElement(dtype));
    return t;
  }

  static from(device: Device, data: ArrayLike<number> | TypedArray, shape: readonly number[], dtype: DType = "f32"): Tensor {
    checkShape(shape);
    if (data.length !== numel(shape))
      throw new PulmoError(`data has ${data.length} elements, shape ${shapeStr(shape)} needs ${numel(shape)}`);
    const t = Tensor.empty(device, shape, dtype);
    const typed =
      dtype === "f16" ? encodeF16(data as ArrayLike<number>) : dtype === "f32" ? Float32Array.from(data as ArrayLike<number>) : dtype === "i32" ? Int32Array.from(data as ArrayLike<number>) : Uint32Array.from(data as ArrayLike<number>);
    device.upload(t.storage.buffer, 0, typed);
    return t;
  }

  get rank(): number {
    return this.shape.length;
  }
  get bytes(): number {
    return this.size * bytesPerElement(this.dtype);
  }
  get isDisposed(): boolean {
    return this.disposed;
  }
  get buffer(): GPUBuffer {
    this.assertAlive();
    return this.storage.buffer;
  }
  /** byte offset of this tensor's first element in `buffer` */
  get byteOffset(): number {
    return this.offset * bytesPerElement(this.dtype);
  }

  private assertAlive(): void {
    if (this.disposed) throw new PulmoError(`tensor ${shapeStr(this.shape)} used after dispose()`);
  }

  binding(): Binding {
    this.assertAlive();
    return { buffer: this.storage.buffer, offset: this.byteOffset, size: paddedBytes(this.size, this.dtype) };
  }

  /** A view with another shape over the same data (no copy); -1 infers one dimension. */
  reshape(shape: readonly number[]): Tensor {
    this.assertAlive();
    const s = [...shape];
    const infer = s.indexOf(-1);
    if (infer >= 0) {
      const rest = numel(s.filter((_, i) => i !== infer));
      s[infer] = rest === 0 ? 0 : this.size / rest;
    }
    if (numel(s) !== this.size || s.some((d) => !Number.isInteger(d) || d < 0))
      throw new PulmoError(`cannot reshape ${shapeStr(this.shape)} (${this.size} elements) to ${shapeStr(shape)}`);
    this.storage.refs++;
    return new Tensor(this.device, s, this.storage, this.dtype, this.offset, true);
  }

  /** A view of `count` consecutive elements starting at element `start` (offset must keep
   * the binding aligned to 256 bytes: start a multiple of 64, of 128 for f16). */
  chunk(start: number, shape: readonly number[]): Tensor {
    this.assertAlive();
    const n = numel(shape);
    if (start < 0 || start + n > this.size) throw new PulmoError(`chunk [${start}, ${start + n}) outside ${this.size} elements`);
    if (((this.offset + start) * bytesPerElement(this.dtype)) % 256 !== 0) throw new PulmoError(`chunk start ${start} is not 256-byte aligned`);
    this.storage.refs++;
    return new Tensor(this.device, [...shape], this.storage, this.dtype, this.offset + start, true);
  }

  /** Another handle on the same data with its own lifetime, not tracked by tidy() (autograd
   * saves these so a user disposing an input cannot pull data from under a backward pass). */
  retain(): Tensor {
    this.assertAlive();
    this.storage.refs++;
    return new Tensor(this.device, this.shape, this.storage, this.dtype, this.offset, false);
  }

  /** The data on the host; f16 comes back decoded as a Float32Array of the same values. */
  async read(): Promise<TypedArray> {
    this.assertAlive();
    if (this.dtype === "f16") {
      const raw = await this.device.read(this.storage.buffer, this.byteOffset, paddedBytes(this.size, "f16"));
      return decodeF16(new Uint16Array(raw), this.size);
    }
    const data = await this.device.read(this.storage.buffer, this.offset * 4, this.size * 4);
    return this.dtype === "f32" ? new Float32Array(data) : this.dtype === "i32" ? new Int32Array(data) : new Uint32Array(data);
  }

  async readFloat(): Promise<Float32Array> {
    const d = await this.read();
    return d instanceof Float32Array ? d : Float32Array.from(d);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.storage.release();
    this.device.scopes.at(-1)?.delete(this);
  }

  toString(): string {
    return `Tensor(${shapeStr(this.shape)}, ${this.dtype})`;
  }
}

/** Keeps a tensor alive past every open tidy() scope (parameters, optimizer state, gradients). */
export function keep(t: Tensor): Tensor {
  for (const s of t.device.scopes) s.delete(t);
  return t;
}

/** Every tensor reachable from a returned value through arrays and plain objects. */
function keptTensors(result: unknown, out: Tensor[] = [], depth = 0): Tensor[] {
  if (result instanceof Tensor) out.push(result);
  else if (depth < 4 && Array.isArray(result)) for (const r of result) keptTensors(r, out, depth + 1);
  else if (depth < 4 && result && typeof result === "object" && Object.getPrototypeOf(result) === Object.prototype)
    for (const r of Object.values(result)) keptTensors(r, out, depth + 1);
  return out;
}

/** Runs fn and disposes every tensor created inside it except those it returns (like tf.tidy).
 * If fn throws, every tensor it created is disposed before the error propagates (a failed or
 * interrupted forward must not strand its buffers). */
export function tidy<T>(device: Device, fn: () => T): T {
  const scope = new Set<{ dispose(): void }>();
  device.scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    device.scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  device.scopes.pop();
  const keep = new Set(keptTensors(result));
  for (const t of scope) if (!keep.has(t as Tensor)) t.dispose();
  const parent = device.scopes.at(-1);
  if (parent) for (const t of keep) parent.add(t);
  return result;
}

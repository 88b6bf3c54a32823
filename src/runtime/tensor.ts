import type { Binding, Device } from "./device.ts";
import { PulmoError, shapeStr } from "./errors.ts";

export type DType = "f32" | "i32" | "u32";
export type TypedArray = Float32Array | Int32Array | Uint32Array;

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

/** Contiguous row-major 4-byte data in a GPU buffer. Ops never mutate their inputs. */
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
    const buffer = device.pool.acquire(Math.max(4, numel(shape) * 4), `${label} ${shapeStr(shape)}`);
    return new Tensor(device, [...shape], new Storage(device, buffer), dtype, 0, true);
  }

  static zeros(device: Device, shape: readonly number[], dtype: DType = "f32"): Tensor {
    const t = Tensor.empty(device, shape, dtype);
    device.clear(t.storage.buffer, 0, t.size * 4);
    return t;
  }

  static from(device: Device, data: ArrayLike<number> | TypedArray, shape: readonly number[], dtype: DType = "f32"): Tensor {
    checkShape(shape);
    if (data.length !== numel(shape))
      throw new PulmoError(`data has ${data.length} elements, shape ${shapeStr(shape)} needs ${numel(shape)}`);
    const t = Tensor.empty(device, shape, dtype);
    const typed =
      dtype === "f32" ? Float32Array.from(data as ArrayLike<number>) : dtype === "i32" ? Int32Array.from(data as ArrayLike<number>) : Uint32Array.from(data as ArrayLike<number>);
    device.upload(t.storage.buffer, 0, typed);
    return t;
  }

  get rank(): number {
    return this.shape.length;
  }
  get bytes(): number {
    return this.size * 4;
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
    return this.offset * 4;
  }

  private assertAlive(): void {
    if (this.disposed) throw new PulmoError(`tensor ${shapeStr(this.shape)} used after dispose()`);
  }

  binding(): Binding {
    this.assertAlive();
    return { buffer: this.storage.buffer, offset: this.offset * 4, size: Math.max(4, this.size * 4) };
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
   * the binding aligned to 256 bytes: start a multiple of 64). */
  chunk(start: number, shape: readonly number[]): Tensor {
    this.assertAlive();
    const n = numel(shape);
    if (start < 0 || start + n > this.size) throw new PulmoError(`chunk [${start}, ${start + n}) outside ${this.size} elements`);
    if (((this.offset + start) * 4) % 256 !== 0) throw new PulmoError(`chunk start ${start} is not 256-byte aligned`);
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

  async read(): Promise<TypedArray> {
    this.assertAlive();
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

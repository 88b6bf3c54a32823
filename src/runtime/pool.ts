import { PulmoError } from "./errors.ts";

/** Size classes: powers of two split in quarters (256, 320, 384, 448, 512, ...), so a
 * reused buffer wastes at most 25 % and shapes that differ a little share a class. */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes));
  const p = 2 ** Math.floor(Math.log2(b));
  const quarter = p / 4;
  return Math.ceil(b / quarter) * quarter;
}

// A function, not a constant: in Node the GPU* globals exist only once the platform installed them.
const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Reuses released storage buffers by size class. Buffers are only ever handed out for work
 * recorded after their release, and the queue runs in order, so reuse needs no fence. */
export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  allocatedBytes = 0;
  inUseBytes = 0;
  buffersCreated = 0;

  constructor(
    private device: GPUDevice,
    private maxBufferSize: number,
    /** wraps buffer creation so an out-of-memory error is attributed to the tensor's op */
    private guard: (label: string, create: () => GPUBuffer) => GPUBuffer = (_l, c) => c(),
  ) {}

  acquire(bytes: number, label: string): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBufferSize)
      throw new PulmoError(
        `${label}: needs a buffer of ${bytes} bytes, over the device's maxBufferSize ${this.maxBufferSize}`,
      );
    const list = this.free.get(size);
    const reused = list?.pop();
    this.inUseBytes += size;
    if (reused) return reused;
    const buffer = this.guard(label, () => this.device.createBuffer({ size, usage: storageUsage(), label }));
    this.allocatedBytes += size;
    this.buffersCreated++;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = buffer.size;
    this.inUseBytes -= size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buffer);
  }

  /** Destroys every idle buffer. Call only when no recorded work is pending (Device.trim flushes first). */
  trim(): void {
    for (const list of this.free.values())
      for (const b of list) {
        this.allocatedBytes -= b.size;
        b.destroy();
      }
    this.free.clear();
  }
}

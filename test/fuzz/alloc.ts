// Allocation tracking for the fuzz worker: every typed array or ArrayBuffer constructed while an
// input is parsed is measured before it is allocated, and one larger than the input justifies is
// refused (so a parser that trusts a header claiming 10^12 elements is caught without the process
// trying to allocate terabytes). Install before importing the parsers: modules that capture a
// constructor at load time (fflate's `u8 = Uint8Array`) then capture the tracked one.

export class AllocationLimitError extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number,
    readonly what: string,
  ) {
    super(`fuzz harness: ${what} of ${bytes} bytes exceeds the ${limit}-byte bound for this input`);
    this.name = "AllocationLimitError";
  }
}

export interface AllocationWatch {
  /** bound in bytes for any single allocation of the current input (Infinity: off) */
  limit: number;
  /** largest single allocation seen since the last reset */
  largest: number;
  /** the first allocation over the limit since the last reset, if any */
  violation: AllocationLimitError | null;
  reset(limit: number): void;
}

const CTORS = [
  "ArrayBuffer", "SharedArrayBuffer", "Uint8Array", "Int8Array", "Uint8ClampedArray", "Uint16Array", "Int16Array",
  "Uint32Array", "Int32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array",
] as const;

/** Bytes a `new C(...args)` would allocate (0 for a view over an existing buffer). */
function requestedBytes(name: string, bytesPer: number, args: unknown[]): number {
  const a = args[0];
  if (name.endsWith("Buffer")) return typeof a === "number" ? a : 0;
  if (typeof a === "number") return a * bytesPer;
  if (a instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && a instanceof SharedArrayBuffer)) return 0;
  if (a && typeof a === "object" && typeof (a as { length?: unknown }).length === "number")
    return (a as { length: number }).length * bytesPer;
  return 0; // iterables: sized as they are consumed, rare in the parsers
}

export function installAllocationWatch(): AllocationWatch {
  const watch: AllocationWatch = {
    limit: Infinity,
    largest: 0,
    violation: null,
    reset(limit) {
      this.limit = limit;
      this.largest = 0;
      this.violation = null;
    },
  };
  const g = globalThis as Record<string, unknown>;
  for (const name of CTORS) {
    const Target = g[name] as (new (...a: unknown[]) => object) & { BYTES_PER_ELEMENT?: number };
    if (!Target) continue;
    const bytesPer = Target.BYTES_PER_ELEMENT ?? 1;
    g[name] = new Proxy(Target, {
      construct(target, args, newTarget) {
        const bytes = requestedBytes(name, bytesPer, args);
        if (bytes > watch.largest) watch.largest = bytes;
        if (bytes > watch.limit) {
          const err = new AllocationLimitError(bytes, watch.limit, `new ${name}`);
          watch.violation ??= err;
          throw err;
        }
        return Reflect.construct(target, args, newTarget === g[name] ? target : newTarget);
      },
    });
  }
  return watch;
}

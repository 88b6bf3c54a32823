/** The engine's own error: every failure a user can cause (bad shapes, bad files, no adapter)
 * surfaces as one of these with a message naming the problem, never as a crash inside Dawn. */
export class PulmoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PulmoError";
  }
}

export function fail(message: string): never {
  throw new PulmoError(message);
}

/** Throws `<what>: non-finite value <v> at index <i>` for the first NaN or ±Infinity in `data`. */
export function checkFinite(data: ArrayLike<number>, what: string): void {
  for (let i = 0; i < data.length; i++)
    if (!Number.isFinite(data[i]!)) throw new PulmoError(`${what}: non-finite value ${data[i]} at index ${i}`);
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

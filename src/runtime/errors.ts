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

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Deterministic pseudo-random inputs for the tests: the same seed gives the same numbers on
 * every run and machine, so a failure can be reproduced. Not for anything but tests. */

/** A generator of numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32: a small, fast 32-bit generator with a full 2^32 period, seeded by any integer
 * (only its low 32 bits count). */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n f32-representable numbers, uniform in [lo, hi) (as f32 rounds), so the GPU and a float64
 * reference see the same inputs. `source` is a seed for a fresh `rng`, or a generator to draw
 * from (several arrays from one stream). */
export function uniform(n: number, source: number | Rng, lo = -1, hi = 1): number[] {
  return Array.from(uniformF32(n, source, lo, hi));
}

/** `uniform` as a Float32Array. */
export function uniformF32(n: number, source: number | Rng, lo = -1, hi = 1): Float32Array {
  const r = typeof source === "number" ? rng(source) : source;
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

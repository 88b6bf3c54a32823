// Seeded mutations of valid files, drawn with fast-check: byte flips, random and extreme bytes,
// truncations, insertions, deletions, splices from another seed, extreme integers written over
// any offset, and format-aware edits (a target's `fields`: header fields set to extreme values,
// structural rewrites such as a safetensors header length of 2^63 or a deeply nested JSON header).
import fc from "fast-check";

/** A format-aware edit: returns the mutated file (it may build a new one from scratch). */
export type FieldMutation = (bytes: Uint8Array, pick: number) => Uint8Array;

export type Mutation =
  | { kind: "flip"; pos: number; bit: number }
  | { kind: "byte"; pos: number; value: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; pos: number; bytes: Uint8Array }
  | { kind: "delete"; pos: number; len: number }
  | { kind: "splice"; pos: number; from: number; start: number; len: number }
  | { kind: "int"; pos: number; width: 2 | 4 | 8; value: bigint; le: boolean }
  | { kind: "field"; field: number; pick: number };

export interface FuzzCase {
  seed: number;
  mutations: Mutation[];
}

/** Integers at the edges: zero, ±1, sign bits, 2^31, 2^32, 2^53, 2^63, all ones. */
export const EXTREME_INTS: readonly bigint[] = [
  0n, 1n, -1n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
  2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 63n - 1n, 2n ** 64n - 1n, 1_000_000_000_000n,
];

/** Offsets: mostly within the first 512 bytes (headers), else anywhere (taken modulo the length). */
const position = fc.oneof({ weight: 3, arbitrary: fc.nat(511) }, { weight: 1, arbitrary: fc.nat() });

function mutationArb(fields: number): fc.Arbitrary<Mutation> {
  const arbs: fc.Arbitrary<Mutation>[] = [
    fc.record({ kind: fc.constant("flip" as const), pos: position, bit: fc.nat(7) }),
    fc.record({ kind: fc.constant("byte" as const), pos: position, value: fc.oneof(fc.constantFrom(0, 0xff, 0x7f, 0x80, 0x22, 0x5b, 0x7b), fc.nat(255)) }),
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("insert" as const), pos: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.record({ kind: fc.constant("delete" as const), pos: position, len: fc.integer({ min: 1, max: 256 }) }),
    fc.record({ kind: fc.constant("splice" as const), pos: position, from: fc.nat(), start: fc.nat(), len: fc.integer({ min: 1, max: 512 }) }),
    fc.record({
      kind: fc.constant("int" as const),
      pos: position,
      width: fc.constantFrom(2 as const, 4 as const, 8 as const),
      value: fc.constantFrom(...EXTREME_INTS),
      le: fc.boolean(),
    }),
  ];
  if (fields > 0) arbs.push(fc.record({ kind: fc.constant("field" as const), field: fc.nat(fields - 1), pick: fc.nat() }));
  // Format-aware edits are the most productive: weight them up.
  return fc.oneof(...arbs.map((arbitrary, i) => ({ arbitrary, weight: i === 7 ? 6 : 1 })));
}

export function caseArb(seeds: number, fields: number): fc.Arbitrary<FuzzCase> {
  return fc.record({ seed: fc.nat(seeds - 1), mutations: fc.array(mutationArb(fields), { minLength: 1, maxLength: 4 }) });
}

/** The `index`-th case of a run seeded `seed`: the same (seed, index) always gives the same case. */
export function drawCase(arb: fc.Arbitrary<FuzzCase>, seed: number, index: number): FuzzCase {
  return fc.sample(arb, { seed: (seed * 1_000_003 + index) | 0, numRuns: 1 })[0]!;
}

export function applyCase(c: FuzzCase, seeds: readonly Uint8Array[], fields: readonly FieldMutation[]): Uint8Array {
  let b = seeds[c.seed]!;
  for (const m of c.mutations) b = apply(m, b, seeds, fields);
  return b;
}

function apply(m: Mutation, b: Uint8Array, seeds: readonly Uint8Array[], fields: readonly FieldMutation[]): Uint8Array {
  const n = b.byteLength;
  const at = (p: number) => (n === 0 ? 0 : p % n);
  switch (m.kind) {
    case "flip": {
      if (!n) return b;
      const out = b.slice();
      out[at(m.pos)] ^= 1 << m.bit;
      return out;
    }
    case "byte": {
      if (!n) return b;
      const out = b.slice();
      out[at(m.pos)] = m.value;
      return out;
    }
    case "truncate":
      return b.slice(0, n === 0 ? 0 : m.at % n);
    case "insert": {
      const p = n === 0 ? 0 : m.pos % (n + 1);
      const out = new Uint8Array(n + m.bytes.byteLength);
      out.set(b.subarray(0, p));
      out.set(m.bytes, p);
      out.set(b.subarray(p), p + m.bytes.byteLength);
      return out;
    }
    case "delete": {
      const p = at(m.pos);
      const out = new Uint8Array(n - Math.min(m.len, n - p));
      out.set(b.subarray(0, p));
      out.set(b.subarray(p + m.len), p);
      return out;
    }
    case "splice": {
      const src = seeds[m.from % seeds.length]!;
      if (!src.byteLength || !n) return b;
      const s = m.start % src.byteLength;
      const piece = src.subarray(s, s + m.len);
      const p = at(m.pos);
      const out = b.slice();
      out.set(piece.subarray(0, n - p), p);
      return out;
    }
    case "int": {
      if (n < m.width) return b;
      const out = b.slice();
      const p = at(m.pos) % (n - m.width + 1);
      const dv = new DataView(out.buffer);
      const v = BigInt.asUintN(m.width * 8, m.value);
      if (m.width === 2) dv.setUint16(p, Number(v), m.le);
      else if (m.width === 4) dv.setUint32(p, Number(v), m.le);
      else dv.setBigUint64(p, v, m.le);
      return out;
    }
    case "field":
      return fields.length ? fields[m.field % fields.length]!(b, m.pick) : b;
  }
}

/** Helpers for targets' field mutations. */
export function withInt(b: Uint8Array, offset: number, width: 2 | 4, value: number, le = true): Uint8Array {
  if (b.byteLength < offset + width) return b;
  const out = b.slice();
  const dv = new DataView(out.buffer);
  if (width === 2) dv.setInt16(offset, value, le);
  else dv.setInt32(offset, value, le);
  return out;
}

export function withFloat32(b: Uint8Array, offset: number, value: number, le = true): Uint8Array {
  if (b.byteLength < offset + 4) return b;
  const out = b.slice();
  new DataView(out.buffer).setFloat32(offset, value, le);
  return out;
}

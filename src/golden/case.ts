import { readSafetensors, type SafetensorsFile } from "../../weights/safetensors.ts";
import { PulmoError } from "../runtime/errors.ts";

/** One golden case (format: test/golden/README.md). */
export interface GoldenCase {
  name: string;
  op: string;
  attrs: Record<string, any>;
  inputs: string[];
  outputs: string[];
  /** input name → name of its reference gradient */
  grads: Record<string, string>;
  tol: { rel_l2: number; max_abs_rel: number };
  file: SafetensorsFile;
}

export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

export function parseCase(name: string, bytes: Uint8Array): GoldenCase {
  const file = readSafetensors(bytes);
  const raw = file.metadata.case;
  if (!raw) throw new PulmoError(`${name}: no __metadata__.case`);
  const c = JSON.parse(raw);
  return {
    name,
    op: c.op,
    attrs: c.attrs ?? {},
    inputs: c.inputs ?? [],
    outputs: c.outputs ?? [],
    grads: c.grads ?? {},
    tol: c.tol ?? { rel_l2: 1e-5, max_abs_rel: 1e-4 },
    file,
  };
}

export function host(c: GoldenCase, name: string): HostTensor {
  const e = c.file.tensors.get(name);
  if (!e) throw new PulmoError(`${c.name}: case has no tensor '${name}'`);
  return { data: c.file.float32(name), shape: e.shape };
}

export interface Comparison {
  ok: boolean;
  relL2: number;
  maxAbsRel: number;
  message?: string;
}

/** The README's criterion: relative L2 and max-abs relative to the reference's max. */
export function compare(actual: ArrayLike<number>, ref: HostTensor, tol: GoldenCase["tol"]): Comparison {
  if (actual.length !== ref.data.length)
    return { ok: false, relL2: Infinity, maxAbsRel: Infinity, message: `${actual.length} elements, reference has ${ref.data.length}` };
  let diff2 = 0,
    ref2 = 0,
    maxDiff = 0,
    maxRef = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!,
      r = ref.data[i]!;
    const d = Math.abs(a - r);
    if (Number.isNaN(a) || Number.isNaN(d)) return { ok: false, relL2: NaN, maxAbsRel: NaN, message: `NaN at index ${i}` };
    diff2 += d * d;
    ref2 += r * r;
    maxDiff = Math.max(maxDiff, d);
    maxRef = Math.max(maxRef, Math.abs(r));
  }
  const relL2 = Math.sqrt(diff2) / Math.max(Math.sqrt(ref2), 1e-12);
  const maxAbsRel = maxDiff / Math.max(maxRef, 1e-12);
  return { ok: relL2 <= tol.rel_l2 && maxAbsRel <= tol.max_abs_rel, relL2, maxAbsRel };
}

// Config resolution shared by every network in src/models: the object and unknown-key check,
// `${name} config: …` PulmoErrors, and the common value checks (positive integers, dropout, shapes).
import { PulmoError, shapeStr } from "../runtime/index.ts";

export const isPosInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v > 0;

/** A function that throws a PulmoError `${what} config: msg`. */
export function configError(what: string): (msg: string) => never {
  return (msg: string): never => {
    throw new PulmoError(`${what} config: ${msg}`);
  };
}

/** Throws a `${what} config` PulmoError unless `user` is a plain object whose keys all belong to
 * `known` (the paper preset's keys, input_shape, …); returns the thrower for the remaining checks. */
export function checkConfigKeys(what: string, user: unknown, known: Iterable<string>): (msg: string) => never {
  const bad = configError(what);
  if (user === null || typeof user !== "object" || Array.isArray(user)) bad(`expected an object, got ${JSON.stringify(user)}`);
  const keys = new Set(known);
  for (const k of Object.keys(user as object)) if (!keys.has(k)) bad(`unknown key '${k}' (known: ${[...keys].join(", ")})`);
  return bad;
}

/** Each of `keys` of cfg must be a positive integer (`shown` gives the value the message quotes). */
export function checkPosInts(bad: (msg: string) => never, keys: readonly string[], get: (k: string) => unknown, shown = get): void {
  for (const k of keys) if (!isPosInt(get(k))) bad(`${k} must be a positive integer, got ${JSON.stringify(shown(k))}`);
}

/** dropout must be a number in [0, 1). */
export function checkDropout(bad: (msg: string) => never, p: unknown, shown: unknown = p): asserts p is number {
  if (typeof p !== "number" || !(p >= 0 && p < 1)) bad(`dropout must be a number in [0, 1), got ${JSON.stringify(shown)}`);
}

/** `v` is a list of `n` positive integers (any length when n is undefined). */
export const isPosIntList = (v: unknown, n?: number): v is number[] => Array.isArray(v) && (n === undefined || v.length === n) && v.every(isPosInt);

/** The level keys of a plain U-Net config (unet2d, unet3d, ctv_unet): enc [mid, out] pairs (at
 * least one), dec pairs (enc.length − 1), up_kernel 2 or 3, up_keep_channels and up_bias booleans.
 * `get` gives a key's value with the preset filled in. */
export function resolveUNetLevels(bad: (msg: string) => never, get: (k: string) => any): {
  enc: number[][]; dec: number[][]; up_kernel: 2 | 3; up_keep_channels: boolean; up_bias: boolean;
} {
  const pairs = (key: string, v: unknown, minLen: number): number[][] => {
    if (!Array.isArray(v) || v.length < minLen) bad(`${key} must be a list of at least ${minLen} [mid, out] pairs, got ${JSON.stringify(v)}`);
    for (const p of v as unknown[])
      if (!Array.isArray(p) || p.length !== 2 || !p.every(isPosInt)) bad(`${key} entries must be [mid, out] pairs of positive integers, got ${JSON.stringify(p)}`);
    return (v as number[][]).map((p) => [p[0]!, p[1]!]);
  };
  const enc = pairs("enc", get("enc"), 1);
  const dec = pairs("dec", get("dec"), 0);
  if (dec.length !== enc.length - 1) bad(`dec needs enc.length - 1 = ${enc.length - 1} levels, got ${dec.length}`);
  const upKernel = get("up_kernel");
  if (upKernel !== 2 && upKernel !== 3) bad(`up_kernel must be 2 (ConvT k2 s2) or 3 (ConvT k3 s2 p1 op1), got ${JSON.stringify(upKernel)}`);
  for (const k of ["up_keep_channels", "up_bias"] as const)
    if (typeof get(k) !== "boolean") bad(`${k} must be a boolean, got ${JSON.stringify(get(k))}`);
  return { enc, dec, up_kernel: upKernel, up_keep_channels: get("up_keep_channels"), up_bias: get("up_bias") };
}

/** Throws a PulmoError `${what} must be [N, C channels, H, W] with H and W multiples of f, got …`
 * unless shape is a 2D image batch [N, inChannels, H, W] of positive integers with H and W
 * multiples of `f` (the network's total down-sampling). */
export function checkImageInput(what: string, shape: unknown, inChannels: number, f: number): asserts shape is number[] {
  const s = shape as number[];
  const ok = Array.isArray(s) && s.length === 4 && s.every(isPosInt) && s[1] === inChannels && s[2]! % f === 0 && s[3]! % f === 0;
  if (!ok)
    throw new PulmoError(`${what} must be [N, ${inChannels} channels, H, W] with H and W multiples of ${f}, got ${Array.isArray(s) ? shapeStr(s) : JSON.stringify(s)}`);
}

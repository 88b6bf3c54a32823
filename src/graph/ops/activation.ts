import { Tensor } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, groups1d, label } from "../launch.ts";

/** Unary ops of kernels/activation/unary.wgsl: name → OP code. Adding one is a row here and a
 * case in the WGSL. */
const UNARY = {
  relu: 0,
  leaky_relu: 1,
  gelu: 2,
  sigmoid: 3,
  hard_sigmoid: 4,
  tanh: 5,
  exp: 6,
  log: 7,
  neg: 8,
  abs: 9,
  sqrt: 10,
  square: 11,
} as const;
export type UnaryOp = keyof typeof UNARY;

/** Elements per dispatch: a tensor over one storage binding is processed in chunks, each a
 * multiple of 64 elements so every chunk's byte offset stays 256-aligned. */
function chunkElements(t: Tensor): number {
  return Math.floor(t.device.limits.maxBindingBytes / 4 / 64) * 64;
}

/** Runs `fn` on matching chunks of the given tensors (the tensors themselves when one chunk does). */
export function forEachChunk(tensors: Tensor[], fn: (chunks: Tensor[], n: number) => void): void {
  const size = tensors[0]!.size;
  const step = chunkElements(tensors[0]!);
  if (size <= step) return fn(tensors, size);
  for (let start = 0; start < size; start += step) {
    const n = Math.min(step, size - start);
    const chunks = tensors.map((t) => t.chunk(start, [n]));
    fn(chunks, n);
    for (const c of chunks) c.dispose();
  }
}

/** Workgroups of 64 invocations for a grid-stride vec4 kernel over `n4` vectors: at most
 * `cap`, so each invocation of a large launch loops over several vectors. */
export function gridGroups(n4: number, cap = 1024): number {
  return Math.min(groups1d(n4), cap);
}

/** Runs a vec4 entry (`entry4`, bindings `<name>4`, uniform n = vectors) over the largest
 * multiple of 64 elements and the scalar entry over the rest, chunk by chunk.
 * `launch(entry, bindings, n)` records one dispatch. */
export function vec4Launch(
  tensors: Record<string, Tensor>,
  launch: (vec4: boolean, bindings: Record<string, Tensor>, n: number) => void,
): void {
  const names = Object.keys(tensors);
  forEachChunk(names.map((k) => tensors[k]!), (chunks, n) => {
    const bulk = Math.floor(n / 64) * 64;
    const views: Tensor[] = [];
    const part = (start: number, count: number, suffix: string) => {
      const b: Record<string, Tensor> = {};
      chunks.forEach((c, k) => {
        const v = start === 0 && count === c.size ? c : c.chunk(start, [count]);
        if (v !== c) views.push(v);
        b[names[k]! + suffix] = v;
      });
      return b;
    };
    if (bulk > 0) launch(true, part(0, bulk, "4"), bulk / 4);
    if (n > bulk) launch(false, part(bulk, n - bulk, ""), n - bulk);
    for (const v of views) v.dispose();
  });
}

function launchUnary(op: UnaryOp, entry: "main" | "backward", x: Tensor, dy: Tensor | null, alpha: number): Tensor {
  const out = Tensor.empty(x.device, x.shape);
  vec4Launch(dy ? { x, y: out, dy } : { x, y: out }, (v4, bindings, n) =>
    x.device.dispatch({
      kernel: "activation/unary",
      entry: v4 ? `${entry}4` : entry,
      constants: { OP: UNARY[op] },
      bindings,
      uniforms: { n, alpha },
      workgroups: v4 ? gridGroups(n) : groups1d(n),
      label: label(entry === "main" ? op : `${op}_backward`, x),
    }),
  );
  return out;
}

export function unary(op: UnaryOp, x: Tensor, alpha = 0): Tensor {
  expectFloat(op, "x", x);
  const y = launchUnary(op, "main", x, null, alpha);
  return record(op, y, [x], [x], (dy, [xs]) => [launchUnary(op, "backward", xs!, dy, alpha)]);
}

export const relu = (x: Tensor) => unary("relu", x);
export const leakyRelu = (x: Tensor, negativeSlope = 0.01) => unary("leaky_relu", x, negativeSlope);
export const gelu = (x: Tensor) => unary("gelu", x);
export const sigmoid = (x: Tensor) => unary("sigmoid", x);
export const hardSigmoid = (x: Tensor) => unary("hard_sigmoid", x);
export const tanh = (x: Tensor) => unary("tanh", x);
export const exp = (x: Tensor) => unary("exp", x);
export const log = (x: Tensor) => unary("log", x);
export const neg = (x: Tensor) => unary("neg", x);
export const abs = (x: Tensor) => unary("abs", x);
export const sqrt = (x: Tensor) => unary("sqrt", x);
export const square = (x: Tensor) => unary("square", x);

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

function launchUnary(op: UnaryOp, entry: "main" | "backward", x: Tensor, dy: Tensor | null, alpha: number): Tensor {
  const out = Tensor.empty(x.device, x.shape);
  forEachChunk(dy ? [x, out, dy] : [x, out], ([xs, ys, ds], n) =>
    x.device.dispatch({
      kernel: "activation/unary",
      entry,
      constants: { OP: UNARY[op] },
      bindings: ds ? { x: xs!, dy: ds, y: ys! } : { x: xs!, y: ys! },
      uniforms: { n, alpha },
      workgroups: groups1d(n),
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

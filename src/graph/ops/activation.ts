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

/** Largest chunk (elements) per dispatch when a tensor exceeds one storage binding; a multiple
 * of 64 so every chunk's byte offset stays 256-aligned. */
function chunkElements(t: Tensor): number {
  return Math.floor(t.device.limits.maxBindingBytes / 4 / 64) * 64;
}

function launchUnary(op: UnaryOp, entry: "main" | "backward", x: Tensor, dy: Tensor | null, alpha: number): Tensor {
  const out = Tensor.empty(x.device, x.shape);
  const step = chunkElements(x);
  for (let start = 0; start < x.size || start === 0; start += step) {
    const n = Math.min(step, x.size - start);
    const whole = n === x.size;
    const xs = whole ? x : x.chunk(start, [n]);
    const ds = dy ? (whole ? dy : dy.chunk(start, [n])) : xs;
    const ys = whole ? out : out.chunk(start, [n]);
    x.device.dispatch({
      kernel: "activation/unary",
      entry,
      constants: { OP: UNARY[op] },
      bindings: { x: xs, dy: ds, y: ys },
      uniforms: { n, alpha },
      workgroups: groups1d(n),
      label: label(entry === "main" ? op : `${op}_backward`, x),
    });
    if (!whole) [xs, ds, ys].forEach((t) => t !== x && t !== dy && t !== out && t.dispose());
    if (n <= 0) break;
  }
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

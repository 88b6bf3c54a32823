import { Tensor } from "../../runtime/index.ts";
import { record } from "../tape.ts";

/** reshape as an autograd op: a view forward, the gradient reshaped back. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const y = x.reshape(shape);
  return record("reshape", y, [x], [], (dy) => [dy.reshape(x.shape)]);
}

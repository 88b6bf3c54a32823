import { PulmoError, Tensor, numel } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, groups1d, label } from "../launch.ts";
import { reshape } from "./layout.ts";

/** A seeded source of dropout seeds: the same seed gives the same sequence of masks. */
export class Generator {
  private state: bigint;
  constructor(seed = 0) {
    this.state = BigInt.asUintN(64, BigInt(seed) ^ 0x9e3779b97f4a7c15n);
  }
  /** next 64-bit seed (splitmix64) as two u32 halves */
  next(): [number, number] {
    this.state = BigInt.asUintN(64, this.state + 0x9e3779b97f4a7c15n);
    let z = this.state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    z = z ^ (z >> 31n);
    return [Number(z & 0xffffffffn), Number(z >> 32n)];
  }
}

function applyMask(x: Tensor, p: number, inner: number, seed: [number, number], name: string): Tensor {
  const y = Tensor.empty(x.device, x.shape);
  x.device.dispatch({
    kernel: "random/dropout",
    bindings: { x, y },
    uniforms: { n: x.size, inner, seed_lo: seed[0], seed_hi: seed[1], p, scale: 1 / (1 - p) },
    workgroups: groups1d(x.size),
    label: label(name, x),
  });
  return y;
}

function dropoutWith(name: string, x: Tensor, p: number, inner: number, training: boolean, gen: Generator): Tensor {
  expectFloat(name, "x", x);
  if (!(p >= 0 && p < 1)) throw new PulmoError(`${name}: p must be in [0, 1), got ${p}`);
  // Identity, but through the tape: a plain view would cut the gradient.
  if (!training || p === 0) return reshape(x, x.shape);
  const seed = gen.next();
  const y = applyMask(x, p, inner, seed, name);
  return record(name, y, [x], [], (dy) => [applyMask(dy, p, inner, seed, `${name}_backward`)]);
}

/** Element-wise dropout (inverted: kept values scaled by 1/(1-p)); identity when not training. */
export function dropout(x: Tensor, p: number, training: boolean, gen: Generator): Tensor {
  return dropoutWith("dropout", x, p, 1, training, gen);
}

/** Channel-wise (spatial) dropout of N,C,* tensors: whole channels dropped, as Dropout3d/2d and
 * Keras' SpatialDropout. */
export function spatialDropout(x: Tensor, p: number, training: boolean, gen: Generator): Tensor {
  if (x.rank < 3) throw new PulmoError(`spatial_dropout: 'x' must be N,C,spatial..., got [${x.shape}]`);
  return dropoutWith("spatial_dropout", x, p, numel(x.shape.slice(2)), training, gen);
}

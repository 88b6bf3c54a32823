// Element-type casts f32 ↔ f16 (kernels/layout/cast.wgsl, its "f16" variant: kernels.ts).
// f16 tensors are storage for the f16 paths (conv2d/conv3d forward); they need a device created
// with the WebGPU feature 'shader-f16', and cast refuses cleanly on one without it.
// Gradients: the tape accumulates in f32 (its seeds and addition kernels are f32), so the
// gradient that flows through an f16 tensor stays f32: the backward of cast(x, "f16") hands dy
// (widened to f32 if it arrived as f16) to x, and the backward of cast(h, "f32") hands dy on to h
// unchanged, in f32. Both are the identity, as cast's derivative is (rounding aside).
import { PulmoError, Tensor, type DType } from "../../runtime/index.ts";
import { kernelName, requireFeature } from "../../runtime/kernels.ts";
import { record } from "../tape.ts";
import { expectSameDevice, groups1d, label } from "../launch.ts";

/** f16's largest finite magnitude: f32 → f16 saturates there (WGSL leaves overflow undefined). */
export const F16_MAX = 65504;

const CASTABLE = new Set<DType>(["f32", "f16"]);

/** The cast without autograd: a new tensor (a fresh view of x when the dtype already matches). */
export function castRaw(x: Tensor, dtype: DType): Tensor {
  const op = "cast";
  expectSameDevice(op, x);
  if (x.isDisposed) throw new PulmoError(`${op}: 'x' was disposed`);
  if (!CASTABLE.has(x.dtype) || !CASTABLE.has(dtype))
    throw new PulmoError(`${op}: only f32 ↔ f16 casts are supported, got ${x.dtype} → ${dtype}`);
  if (x.dtype === dtype) return x.reshape(x.shape);
  const device = x.device;
  requireFeature(device.gpu, "shader-f16", `${op} ${x.dtype} → ${dtype}`);
  const y = Tensor.empty(device, x.shape, dtype, op);
  const toHalf = dtype === "f16";
  // Over one storage binding (the f32 side is the larger): pieces of whole 256-byte runs of both.
  const limit = device.limits.maxBindingBytes;
  const step = Math.max(128, Math.floor(limit / 512) * 128);
  const aligned = x.byteOffset % 256 === 0;
  const launch = (src: Tensor, dst: Tensor) =>
    device.dispatch({
      kernel: kernelName("layout/cast", "f16"),
      entry: toHalf ? "to_elem" : "from_elem",
      bindings: toHalf ? { a: src, h: dst } : { hr: src, f: dst },
      uniforms: { n: dst.size, limit: F16_MAX },
      workgroups: groups1d(dst.size),
      label: label(`${op} ${x.dtype} → ${dtype}`, src),
    });
  if (x.size * 4 <= limit || !aligned) launch(x, y);
  else
    for (let start = 0; start < x.size; start += step) {
      const n = Math.min(step, x.size - start);
      const [xs, ys] = [x.chunk(start, [n]), y.chunk(start, [n])];
      launch(xs, ys);
      xs.dispose();
      ys.dispose();
    }
  return y;
}

/** x converted to `dtype` ("f32" or "f16"; f32 → f16 rounds to one of the two nearest f16 values
 * and saturates at ±65504). Differentiable: see the note at the top of this file. */
export function cast(x: Tensor, dtype: DType): Tensor {
  const y = castRaw(x, dtype);
  return record("cast", y, [x], [], (dy) => [dy.dtype === "f32" ? dy.reshape(dy.shape) : castRaw(dy, "f32")]);
}

import { describe, expect, it } from "vitest";
import { goldenSuite, useDevice } from "../helpers.ts";
import { Tensor, relu, sigmoid, leakyRelu, backward, PulmoError } from "../../src/node.ts";

describe("activation golden cases", () => goldenSuite(["relu", "leaky_relu", "gelu", "sigmoid", "hard_sigmoid", "tanh"]));

describe("activation edge cases", () => {
  const dev = useDevice();
  it("sigmoid saturates without NaN at ±100", async () => {
    const x = Tensor.from(dev(), [-100, -20, 0, 20, 100], [5]);
    const y = await sigmoid(x).read();
    expect([...y].every(Number.isFinite)).toBe(true);
    expect(y[2]).toBeCloseTo(0.5, 7);
  });
  it("relu and leaky_relu keep a NaN (PyTorch), scalar and vec4 paths", async () => {
    for (const n of [5, 128]) {
      const xs = Array.from({ length: n }, (_, i) => (i % 2 ? NaN : i - 2));
      for (const fn of [relu, (t: Tensor) => leakyRelu(t, 0.1)]) {
        const y = await fn(Tensor.from(dev(), xs, [n])).read();
        for (let i = 1; i < n; i += 2) expect(Number.isNaN(y[i]!)).toBe(true);
      }
    }
  });
  it("rejects a non-float tensor with a clear error", () => {
    const x = Tensor.from(dev(), [1, 2], [2], "i32");
    expect(() => relu(x)).toThrow(PulmoError);
    expect(() => relu(x)).toThrow(/'x' must be f32/);
  });
  it("accumulates gradients of a tensor used twice", async () => {
    const x = Tensor.from(dev(), [-1, 2], [2]);
    x.requiresGrad = true;
    const a = relu(x);
    const b = relu(x);
    backward([a, b], [Tensor.from(dev(), [1, 1], [2]), Tensor.from(dev(), [1, 1], [2])]);
    expect([...(await x.grad!.read())]).toEqual([0, 2]);
  });
  it("vec4 bulk and scalar tail agree with the formula at every length", async () => {
    for (const n of [1, 3, 4, 63, 64, 65, 67, 200, 4099, 70001]) {
      const xv = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * 3);
      const dv = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.3));
      const x = Tensor.from(dev(), xv, [n]);
      x.requiresGrad = true;
      const y = leakyRelu(x, 0.1);
      backward(y, [Tensor.from(dev(), dv, [n])]);
      const [yv, gv] = [await y.read(), await x.grad!.read()];
      for (let i = 0; i < n; i++) {
        expect(yv[i]).toBe(Math.fround(xv[i]! > 0 ? xv[i]! : Math.fround(0.1) * xv[i]!));
        expect(gv[i]).toBe(Math.fround(dv[i]! * (xv[i]! > 0 ? 1 : Math.fround(0.1))));
      }
    }
  });
});

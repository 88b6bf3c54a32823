import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { uniform } from "../random.ts";
import { Tensor, SGD, Adam, AdamW } from "../../src/node.ts";

/** Relative error against a float64 reference, as the issue asks (1e-6). */
function expectClose(actual: ArrayLike<number>, ref: number[], rel = 1e-6) {
  for (let i = 0; i < ref.length; i++) expect(Math.abs(actual[i]! - ref[i]!)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(ref[i]!)));
}

const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));

// 37: the scalar entry only; 128: the vec4 entry only; 4099: vec4 bulk and a scalar tail
for (const n of [37, 128, 4099])
describe(`optimizers match PyTorch's update formulas (${n} elements)`, () => {
  const dev = useDevice();
  const steps = 3;
  const p0 = f32(uniform(n, 1));
  const grads = [2, 3, 4].map((s) => f32(uniform(n, s)));

  async function run(make: (p: Tensor) => { step(): void }) {
    const p = Tensor.from(dev(), p0, [n]);
    p.requiresGrad = true;
    const opt = make(p);
    for (const g of grads.slice(0, steps)) {
      p.grad?.dispose();
      p.grad = Tensor.from(dev(), g, [n]);
      opt.step();
    }
    return p.read();
  }

  it("SGD with momentum, weight decay and Nesterov", async () => {
    for (const nesterov of [false, true]) {
      const lr = 0.05, momentum = 0.9, wd = 1e-3;
      const p = [...p0], v = new Array(n).fill(0);
      for (const g of grads)
        for (let i = 0; i < n; i++) {
          const gi = g[i]! + wd * p[i]!;
          v[i] = momentum * v[i] + gi;
          p[i] = p[i]! - lr * (nesterov ? gi + momentum * v[i] : v[i]);
        }
      expectClose(await run((t) => new SGD([t], { lr, momentum, nesterov, weightDecay: wd })), p);
    }
  });

  it("Adam and AdamW with bias correction", async () => {
    for (const decoupled of [false, true]) {
      const lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
      const p = [...p0], m = new Array(n).fill(0), v = new Array(n).fill(0);
      grads.forEach((g, k) => {
        const t = k + 1;
        for (let i = 0; i < n; i++) {
          let gi = g[i]!;
          if (decoupled) p[i] = p[i]! * (1 - lr * wd);
          else gi += wd * p[i]!;
          m[i] = b1 * m[i] + (1 - b1) * gi;
          v[i] = b2 * v[i] + (1 - b2) * gi * gi;
          const mhat = m[i] / (1 - b1 ** t), vhat = v[i] / (1 - b2 ** t);
          p[i] = p[i]! - (lr * mhat) / (Math.sqrt(vhat) + eps);
        }
      });
      const opts = { lr, betas: [b1, b2] as [number, number], eps, weightDecay: wd };
      expectClose(await run((t) => (decoupled ? new AdamW([t], opts) : new Adam([t], opts))), p);
    }
  });

  it("clips by global norm across tensors before the step", async () => {
    const a = Tensor.from(dev(), [0, 0, 0], [3]);
    const b = Tensor.from(dev(), [0, 0], [2]);
    a.requiresGrad = b.requiresGrad = true;
    a.grad = Tensor.from(dev(), [3, 0, 0], [3]);
    b.grad = Tensor.from(dev(), [0, 4], [2]); // global norm 5
    const opt = new SGD([a, b], { lr: 1 }).clipGradNorm(1);
    opt.step();
    expect(await opt.lastGradNorm()).toBeCloseTo(5, 5);
    expectClose(await a.read(), [-0.6, 0, 0], 1e-6);
    expectClose(await b.read(), [0, -0.8], 1e-6);
  });
});

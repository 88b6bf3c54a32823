import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { uniformF32 } from "../random.ts";
import { Tensor, tidy, conv3d, instanceNorm, leakyRelu, backward } from "../../src/node.ts";
import { collect } from "../reliability/soak.ts";

describe("memory", () => {
  const dev = useDevice();
  it("100 forward+backward steps of conv3d → instance norm → leaky_relu → conv3d: the pool stops growing after the first step", async () => {
    const d = dev();
    const param = (shape: number[], seed: number, scale: number) => {
      const t = Tensor.from(d, uniformF32(shape.reduce((a, b) => a * b), seed, -scale, scale), shape);
      t.requiresGrad = true;
      return t;
    };
    const w1 = param([4, 2, 3, 3, 3], 1, 0.3), b1 = param([4], 2, 0.1);
    const g = param([4], 3, 1), beta = param([4], 4, 0.1);
    const w2 = param([2, 4, 3, 3, 3], 5, 0.3), b2 = param([2], 6, 0.1);
    const params = [w1, b1, g, beta, w2, b2];
    const x = Tensor.from(d, uniformF32(2 * 6 * 6 * 6, 7), [1, 2, 6, 6, 6]);
    const seed = Tensor.from(d, uniformF32(2 * 6 * 6 * 6, 8), [1, 2, 6, 6, 6]);
    const allocated: number[] = [];
    for (let step = 0; step < 100; step++) {
      tidy(d, () => {
        const h = leakyRelu(instanceNorm(conv3d(x, w1, b1, { padding: 1 }), g, beta), 0.01);
        const y = conv3d(h, w2, b2, { padding: 1 });
        backward(y, [seed]);
      });
      const grads = params.map((p) => p.grad!);
      if (step % 25 === 0) expect(Number.isFinite((await grads[0]!.read())[0]!)).toBe(true);
      for (const p of params) {
        p.grad!.dispose();
        p.grad = null;
      }
      await d.flush();
      allocated.push(d.pool.allocatedBytes);
    }
    expect(new Set(allocated.slice(1)).size).toBe(1);
    expect(allocated.at(-1)).toBe(allocated[1]);
  });
  it("2,000 reads and flushes (after 2,200 more) leave the JS heap where it was (no reaction kept per wait)", async () => {
    // Regression: waits raced against one never-settling "device lost" promise, and each race
    // left a reaction on it holding the result: ~1.1 kB per read + flush.
    const d = dev();
    const t = Tensor.from(d, new Float32Array(256).fill(1), [256]);
    const heap = () => {
      collect();
      return process.memoryUsage().heapUsed;
    };
    const cycle = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await t.read();
        await d.flush();
      }
    };
    // warm-up (code caches, promise machinery), then two equal phases: one-off allocations land
    // in the first, a per-wait leak (~2.3 MiB per phase with the old code) in both
    await cycle(200);
    await cycle(2000);
    const before = heap();
    await cycle(2000);
    const grown = heap() - before;
    t.dispose();
    expect(grown).toBeLessThan(512 * 1024);
  });
});

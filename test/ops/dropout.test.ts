import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { Tensor, Generator, dropout, spatialDropout, backward } from "../../src/node.ts";

describe("dropout", () => {
  const dev = useDevice();
  const n = 4096;
  const ones = () => Tensor.from(dev(), new Float32Array(n).fill(1), [2, 4, 8, 8, 8]);

  it("drops about p of the elements, scales the rest, and the same seed gives the same mask", async () => {
    const a = await dropout(ones(), 0.3, true, new Generator(42)).read();
    const b = await dropout(ones(), 0.3, true, new Generator(42)).read();
    const c = await dropout(ones(), 0.3, true, new Generator(43)).read();
    expect([...a]).toEqual([...b]);
    expect([...a]).not.toEqual([...c]);
    const dropped = a.filter((v) => v === 0).length / n;
    expect(dropped).toBeGreaterThan(0.26);
    expect(dropped).toBeLessThan(0.34);
    expect(a.filter((v) => v !== 0).every((v) => Math.abs(v - 1 / 0.7) < 1e-6)).toBe(true);
  });

  it("is the identity in eval mode", async () => {
    expect([...(await dropout(ones(), 0.5, false, new Generator(1)).read())].every((v) => v === 1)).toBe(true);
  });

  it("spatial dropout drops whole channels; the gradient uses the same mask", async () => {
    const x = ones();
    x.requiresGrad = true;
    const y = spatialDropout(x, 0.5, true, new Generator(7));
    backward(y, [Tensor.from(dev(), new Float32Array(n).fill(1), [2, 4, 8, 8, 8])]);
    const [out, g] = [await y.read(), await x.grad!.read()];
    for (let ch = 0; ch < 8; ch++) {
      const slice = out.subarray(ch * 512, (ch + 1) * 512);
      expect(new Set(slice).size).toBe(1);
    }
    expect([...g]).toEqual([...out]);
  });

  it("passes the gradient through when inactive (eval mode or p = 0)", async () => {
    for (const [p, training] of [[0.3, false], [0, true]] as const) {
      const x = ones();
      x.requiresGrad = true;
      backward(dropout(x, p, training, new Generator(1)), [ones()]);
      expect(x.grad).not.toBeNull();
      expect([...(await x.grad!.read())].every((v) => v === 1)).toBe(true);
    }
  });

  it("rejects p outside [0, 1)", () => {
    expect(() => dropout(ones(), 1, true, new Generator(0))).toThrow(/p must be in \[0, 1\)/);
  });
});

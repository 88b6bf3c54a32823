import { describe, expect, it } from "vitest";
import { Tensor, backward, PulmoError, tidy, mul, sum } from "../../src/node.ts";
import { cast } from "../../src/graph/ops/cast.ts";
import { f16BitsToF32, f32ToF16Bits } from "../../src/runtime/tensor.ts";
import { kernelInfo, kernelName } from "../../src/runtime/kernels.ts";
import { useF16Device } from "./f16_device.ts";
import { uniform } from "../random.ts";

/** Host reference: IEEE binary16 round-to-nearest-even, as Tensor.from(…, "f16") stores it. */
const roundF16 = (v: number) => f16BitsToF32(f32ToF16Bits(v));

describe("f16 host conversion", () => {
  it("rounds to nearest even, keeps subnormals, overflows to Inf", () => {
    expect(roundF16(1)).toBe(1);
    expect(roundF16(65504)).toBe(65504);
    expect(roundF16(65520)).toBe(Infinity); // halfway to 2^16 rounds to even = overflow
    expect(roundF16(65519)).toBe(65504);
    expect(roundF16(-(2 ** -24))).toBe(-(2 ** -24)); // smallest subnormal
    expect(roundF16(2 ** -25)).toBe(0); // tie → even (0)
    expect(roundF16(1.5 * 2 ** -25)).toBe(2 ** -24);
    expect(roundF16(1 + 2 ** -11)).toBe(1); // tie → even
    expect(roundF16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(Number.isNaN(roundF16(NaN))).toBe(true);
    expect(roundF16(0.1)).toBeCloseTo(0.0999755859375, 12);
    // every f16 bit pattern round-trips (except NaN payloads)
    let mismatches = 0;
    for (let h = 0; h < 0x10000; h++) {
      const v = f16BitsToF32(h);
      if (!Number.isNaN(v) && f32ToF16Bits(v) !== h) mismatches++;
    }
    expect(mismatches).toBe(0);
  });
});

describe("cast f32 ↔ f16", () => {
  const dev = useF16Device(true);
  it("f16 tensors upload, read back and take 2 bytes an element", async (ctx) => {
    const d = dev();
    if (!d) return ctx.skip();
    const data = [0, 1, -2.5, 0.1, 65504, 3e-6, 7]; // odd count: padded to whole words
    const t = Tensor.from(d, data, [7], "f16");
    expect(t.bytes).toBe(14);
    expect(t.binding().size).toBe(16);
    expect([...(await t.read())]).toEqual(data.map(roundF16));
    t.dispose();
  });

  it("rounds to one of the two nearest f16 values, saturates, and widens exactly", async (ctx) => {
    const d = dev();
    if (!d) return ctx.skip();
    const n = 1001;
    const data = uniform(n, 7).map((v, i) => v * 2 ** ((i % 40) - 26)); // subnormal to 2^13
    data[0] = 1e6;
    data[1] = -1e6;
    data[2] = 0;
    const x = Tensor.from(d, data, [n]);
    const h = cast(x, "f16");
    expect(h.dtype).toBe("f16");
    const back = cast(h, "f32");
    expect(back.dtype).toBe("f32");
    const [hv, bv] = [await h.read(), await back.read()];
    expect([...bv]).toEqual([...hv]); // f16 → f32 is exact
    expect(hv[0]).toBe(65504);
    expect(hv[1]).toBe(-65504);
    for (let i = 2; i < n; i++) {
      const v = Math.fround(data[i]!);
      const near = roundF16(v);
      // the other neighbour: one f16 step from the nearest, on v's side
      const bits = f32ToF16Bits(near);
      const step = (v > near) === near >= 0 ? 1 : -1;
      const other = f16BitsToF32(near === 0 ? (v > 0 ? 1 : 0x8001) : bits + step);
      expect([near, other]).toContain(hv[i]);
    }
    [x, h, back].forEach((t) => t.dispose());
  });

  it("is differentiable both ways, the gradient staying f32", async (ctx) => {
    const d = dev();
    if (!d) return ctx.skip();
    const data = uniform(64, 3);
    const dyData = uniform(64, 4);
    const x = Tensor.from(d, data, [4, 16]);
    x.requiresGrad = true;
    const dy = Tensor.from(d, dyData, [4, 16]);
    tidy(d, () => {
      const z = cast(cast(x, "f16"), "f32");
      backward(sum(mul(z, dy)));
    });
    expect(x.grad!.dtype).toBe("f32");
    expect([...(await x.grad!.read())]).toEqual([...Float32Array.from(dyData)]);
    [x.grad!, x, dy].forEach((t) => t.dispose());
  });

  it("same dtype is a view; other dtypes are refused", (ctx) => {
    const d = dev();
    if (!d) return ctx.skip();
    const x = Tensor.from(d, [1, 2, 3, 4], [4]);
    const y = cast(x, "f32");
    expect(y.dtype).toBe("f32");
    expect(y.buffer).toBe(x.buffer);
    expect(() => cast(x, "i32")).toThrow(/only f32 ↔ f16/);
    [x, y].forEach((t) => t.dispose());
  });
});

describe("cast on a device without shader-f16", () => {
  const dev = useF16Device(false);
  it("refuses with the missing feature's name", () => {
    const d = dev()!;
    const x = Tensor.from(d, [1, 2, 3, 4], [4]);
    expect(() => cast(x, "f16")).toThrow(PulmoError);
    expect(() => cast(x, "f16")).toThrow(/cast f32 → f16 needs the WebGPU feature 'shader-f16'/);
    x.dispose();
  });
});

describe("kernel element-type variants (kernels.ts)", () => {
  it("K@f16 is K with 'enable f16;' prepended and its one alias line swapped, same bind layout", () => {
    expect(kernelName("conv/conv_direct", "f16")).toBe("conv/conv_direct@f16");
    expect(kernelName("conv/conv_direct", "f32")).toBe("conv/conv_direct");
    for (const k of ["layout/cast", "conv/conv_direct", "conv/conv_transposed"]) {
      const base = kernelInfo(k);
      const v = kernelInfo(kernelName(k, "f16"));
      expect(v.code.startsWith("enable f16;\n")).toBe(true);
      expect(v.code.match(/^alias elem = f16;$/gm)).toHaveLength(1);
      expect(v.code).not.toMatch(/^alias elem = f32;/m);
      expect(v.code.split("\n").slice(1).join("\n")).toBe(base.code.replace("alias elem = f32;", "alias elem = f16;"));
      expect(v.bindings).toEqual(base.bindings);
      expect([...v.entries.keys()]).toEqual([...base.entries.keys()]);
    }
  });
  it("refuses a kernel without the alias line and an unknown variant", () => {
    expect(() => kernelInfo("layout/copy@f16")).toThrow(/exactly one 'alias elem = f32;' line, found 0/);
    expect(() => kernelInfo("layout/cast@bf16")).toThrow(/unknown variant 'bf16'/);
  });
});

describe("f16 kernels on a device without shader-f16", () => {
  const dev = useF16Device(false);
  it("the pipeline cache refuses them, naming the feature", () => {
    const d = dev()!;
    const a = Tensor.from(d, [1, 2, 3, 4], [4]);
    const h = Tensor.empty(d, [4], "f16");
    expect(() =>
      d.dispatch({ kernel: "layout/cast@f16", entry: "to_elem", bindings: { a, h }, uniforms: { n: 4, limit: 65504 }, workgroups: 1, label: "t" }),
    ).toThrow(/needs the WebGPU feature 'shader-f16'/);
    [a, h].forEach((t) => t.dispose());
  });
});

import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { uniformF32 } from "../random.ts";
import { Tensor, conv3d, PulmoError, type Device } from "../../src/node.ts";

// Activations over one storage binding (128 MiB on lavapipe; lowered here to 8 KiB) are convolved
// in depth slabs; the result must equal the unsplit convolution.
describe("conv3d over the storage binding limit", () => {
  const small = useDevice({ limits: { maxBindingBytes: 8192 } });
  const normal = useDevice();

  const cases: [string, number[], number[], { stride?: number[]; padding?: number[]; dilation?: number[] }][] = [
    ["k3 p1", [2, 3, 9, 7, 8], [4, 3, 3, 3, 3], { padding: [1, 1, 1] }],
    ["k3 s2 p1", [1, 3, 13, 9, 8], [5, 3, 3, 3, 3], { stride: [2, 2, 2], padding: [1, 1, 1] }],
    ["7³ stem s(1,2,2)", [1, 1, 9, 16, 16], [4, 1, 7, 7, 7], { stride: [1, 2, 2], padding: [3, 3, 3] }],
    ["k3 dilation 2, no depth padding", [1, 2, 14, 10, 10], [6, 2, 3, 3, 3], { dilation: [2, 1, 1], padding: [0, 1, 1] }],
  ];

  const run = async (d: Device, xs: number[], ws: number[], opts: object, seed: number) => {
    const x = Tensor.from(d, uniformF32(xs.reduce((a, b) => a * b), seed), xs);
    const w = Tensor.from(d, uniformF32(ws.reduce((a, b) => a * b), seed + 1), ws);
    const b = Tensor.from(d, uniformF32(ws[0]!, seed + 2), [ws[0]!]);
    const y = conv3d(x, w, b, opts);
    const out = await y.read();
    [x, w, b, y].forEach((t) => t.dispose());
    return out;
  };

  for (const [name, xs, ws, opts] of cases)
    it(`${name}: ${xs} equals the unsplit result`, async () => {
      expect(xs.reduce((a, b) => a * b) * 4).toBeGreaterThan(8192);
      const got = await run(small(), xs, ws, opts, 7);
      const ref = await run(normal(), xs, ws, opts, 7);
      expect(got.length).toBe(ref.length);
      let maxDiff = 0, maxRef = 0;
      for (let i = 0; i < ref.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref[i]!));
        maxRef = Math.max(maxRef, Math.abs(ref[i]!));
      }
      expect(maxDiff).toBeLessThanOrEqual(1e-6 * maxRef);
    });

  it("the pool does not grow across repeated split convolutions", async () => {
    const d = small();
    await run(d, [2, 3, 9, 7, 8], [4, 3, 3, 3, 3], { padding: 1 }, 3);
    const allocated = d.pool.allocatedBytes;
    for (let i = 0; i < 3; i++) await run(d, [2, 3, 9, 7, 8], [4, 3, 3, 3, 3], { padding: 1 }, 3);
    expect(d.pool.allocatedBytes).toBe(allocated);
  });

  it("a single row that cannot fit is refused with a clear error", () => {
    const d = small();
    const x = Tensor.zeros(d, [1, 1, 2, 50, 50]);
    const w = Tensor.zeros(d, [2, 1, 1, 1, 1]);
    expect(() => conv3d(x, w)).toThrow(PulmoError);
    expect(() => conv3d(x, w)).toThrow(/does not fit the 8192-byte storage binding limit/);
  });
});

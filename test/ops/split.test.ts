import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { uniformF32 } from "../random.ts";
import {
  Tensor,
  batchNorm,
  buildModel,
  concat,
  conv2d,
  conv3d,
  convTranspose2d,
  convTranspose3d,
  instanceNorm,
  leakyRelu,
  maxPool2d,
  maxPool3d,
  nn,
  noGrad,
  tidy,
  upsample,
  type Device,
} from "../../src/node.ts";

// Activations larger than one storage binding (128 MiB on lavapipe; lowered here to 4 KiB) are
// split transparently (src/graph/ops/split.ts, docs/ops/split.md); results must equal the
// unsplit ones computed on a device with the normal limit.
const LIMIT = 4096;

function expectClose(got: Float32Array, ref: Float32Array, rel = 1e-5): void {
  expect(got.length).toBe(ref.length);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref[i]!));
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  expect(maxRef).toBeGreaterThan(0);
  expect(maxDiff).toBeLessThanOrEqual(rel * maxRef);
}

/** Seeded tensor: the same data on every device. */
const seeded = (d: Device, shape: number[], seed: number, lo = -1, hi = 1) =>
  Tensor.from(d, uniformF32(shape.reduce((a, b) => a * b, 1), seed, lo, hi), shape);

/** Runs `build` in tidy and returns every returned tensor's data, with the bytes of the biggest
 * tensor `build` reports through `track`. */
async function outputs(d: Device, build: (d: Device, track: (t: Tensor) => Tensor) => Tensor[]): Promise<{ data: Float32Array[]; biggest: number }> {
  let biggest = 0;
  const track = (t: Tensor) => ((biggest = Math.max(biggest, t.bytes)), t);
  const ys = tidy(d, () => noGrad(() => build(d, track)));
  const data = await Promise.all(ys.map((y) => y.readFloat()));
  ys.forEach((y) => y.dispose());
  return { data, biggest };
}

/** conv3d k3 p1 → instanceNorm → leakyRelu → maxPool3d → conv3d → upsample trilinear ×2 →
 * concat with the skip → conv3d k1, plus a strided conv and transposed convs. */
function chain(d: Device, t: (x: Tensor) => Tensor): Tensor[] {
  const x = seeded(d, [2, 3, 8, 8, 8], 1);
  const w1 = seeded(d, [4, 3, 3, 3, 3], 2, -0.3, 0.3);
  const b1 = seeded(d, [4], 3);
  const g = seeded(d, [4], 4, 0.5, 1.5);
  const beta = seeded(d, [4], 5);
  const w2 = seeded(d, [6, 4, 3, 3, 3], 6, -0.3, 0.3);
  const w3 = seeded(d, [3, 10, 1, 1, 1], 7, -0.5, 0.5);
  const b3 = seeded(d, [3], 8);
  const ws = seeded(d, [5, 4, 3, 3, 3], 9, -0.3, 0.3);
  const wt = seeded(d, [6, 4, 2, 2, 2], 10, -0.5, 0.5);
  const wt3 = seeded(d, [6, 2, 3, 3, 3], 11, -0.5, 0.5);
  const bt3 = seeded(d, [2], 12);

  const h1 = t(conv3d(x, w1, b1, { padding: 1 })); // [2, 4, 8, 8, 8]: 8 KiB per sample
  const skip = t(leakyRelu(t(instanceNorm(h1, g, beta)), 0.1));
  const p = t(maxPool3d(skip, { kernel: 2 })); // [2, 4, 4, 4, 4]
  const h2 = t(conv3d(p, w2, null, { padding: 1 })); // [2, 6, 4, 4, 4]
  const up = t(upsample(h2, { scale: 2, mode: "trilinear" })); // [2, 6, 8, 8, 8]
  const cat = t(concat([up, skip], 1)); // [2, 10, 8, 8, 8]
  const head = t(conv3d(cat, w3, b3)); // k1
  const strided = t(conv3d(skip, ws, null, { stride: 2, padding: 1 })); // [2, 5, 4, 4, 4]
  const tr = t(convTranspose3d(h2, wt, null, { stride: 2 })); // k2 s2: [2, 4, 8, 8, 8]
  const tr3 = t(convTranspose3d(h2, wt3, bt3, { stride: 2, padding: 1, outputPadding: 1, dilation: 1 })); // k3 s2 p1 op1
  return [skip, p, up, cat, head, strided, tr, tr3];
}

describe("ops over the storage binding limit", () => {
  const small = useDevice({ limits: { maxBindingBytes: LIMIT } });
  const normal = useDevice();

  it("the conv / norm / pool / upsample / concat chain equals the unsplit result", async () => {
    const got = await outputs(small(), (d, t) => chain(d, t));
    const ref = await outputs(normal(), (d, t) => chain(d, t));
    expect(got.biggest).toBeGreaterThan(LIMIT * 4); // really split
    got.data.forEach((g, i) => expectClose(g, ref.data[i]!));
  });

  it("unaligned channel runs (gathered by copy), batch norm in eval, 2D pool and 2D convs", async () => {
    const build = (d: Device) => {
      const x = seeded(d, [2, 5, 7, 9, 10], 21); // 630 floats per channel: not 256-byte aligned
      const w = seeded(d, [5], 22, 0.5, 1.5);
      const b = seeded(d, [5], 23);
      const rm = seeded(d, [5], 24);
      const rv = seeded(d, [5], 25, 0.5, 2);
      const x2 = seeded(d, [2, 3, 30, 21], 26);
      const k2 = seeded(d, [4, 3, 3, 3], 27, -0.3, 0.3);
      const kt2 = seeded(d, [3, 2, 3, 3], 28, -0.3, 0.3);
      return [
        instanceNorm(x, w, b),
        instanceNorm(x, null, null),
        batchNorm(x, w, b, { training: false, runningMean: rm, runningVar: rv }),
        maxPool3d(x, { kernel: 3, stride: 2, padding: 1 }),
        upsample(x, { scale: [1, 1.5, 1], mode: "nearest" }),
        maxPool2d(x2, { kernel: 2 }),
        conv2d(x2, k2, null, { stride: [2, 1], padding: 1 }),
        convTranspose2d(x2, kt2, null, { stride: 2, padding: 1, outputPadding: 1 }),
        upsample(x2, { size: [41, 24], mode: "bilinear", alignCorners: true }),
      ];
    };
    const got = await outputs(small(), (d) => build(d));
    const ref = await outputs(normal(), (d) => build(d));
    got.data.forEach((g, i) => expectClose(g, ref.data[i]!));
  });

  it("the pool does not grow across repeated split forwards", async () => {
    const d = small();
    await outputs(d, (dd, t) => chain(dd, t));
    await d.flush();
    const allocated = d.pool.allocatedBytes;
    const inUse = d.pool.inUseBytes;
    for (let i = 0; i < 3; i++) await outputs(d, (dd, t) => chain(dd, t));
    await d.flush();
    expect(d.pool.allocatedBytes).toBe(allocated);
    expect(d.pool.inUseBytes).toBe(inUse);
  });

  it("unsupported cases throw a clear PulmoError", () => {
    const d = small();
    tidy(d, () => {
      // one channel over the limit
      const big = Tensor.zeros(d, [1, 2, 4, 20, 20]);
      expect(() => instanceNorm(big, null, null)).toThrow(/one channel of 'x' \[1, 2, 4, 20, 20\].*does not fit the 4096-byte/);
      // one output depth row over the limit
      expect(() => conv3d(Tensor.zeros(d, [1, 1, 2, 50, 50]), Tensor.zeros(d, [2, 1, 1, 1, 1]))).toThrow(/does not fit the 4096-byte storage binding limit/);
    });
  });
});

describe("unet3d over the storage binding limit", () => {
  // tiny preset of shared/reference/models.py, input [2, 1, 16, 12, 16]: the full-resolution
  // activations (up to 144 KiB) exceed a 32 KiB binding, one conv row of them does not
  const CONFIG = { enc: [[4, 6], [6, 10], [10, 16]], dec: [[10, 8], [6, 6]], input_shape: [2, 1, 16, 12, 16] };
  const small = useDevice({ limits: { maxBindingBytes: 32768 } });
  const normal = useDevice();

  async function forward(d: Device): Promise<Float32Array> {
    nn.setInitSeed(17);
    const m = buildModel(d, "unet3d", CONFIG);
    // non-trivial running statistics
    let k = 0;
    for (const [key, t] of m.stateDict())
      if (key.endsWith("running_mean") || key.endsWith("running_var")) {
        const v = key.endsWith("running_var") ? uniformF32(t.size, 100 + k++, 0.5, 2) : uniformF32(t.size, 100 + k++, -0.5, 0.5);
        d.upload(t.buffer, t.byteOffset, v);
      }
    m.eval();
    const x = seeded(d, CONFIG.input_shape, 41);
    const y = tidy(d, () => noGrad(() => m.forward(x)));
    const out = await y.readFloat();
    [x, y].forEach((t) => t.dispose());
    (m as unknown as { dispose?: () => void }).dispose?.();
    return out;
  }

  it("eval forward equals the normal device", async () => {
    const got = await forward(small());
    const ref = await forward(normal());
    expect(got.length).toBe(2 * 2 * 16 * 12 * 16);
    expectClose(got, ref);
  });
});

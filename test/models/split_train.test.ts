import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { uniformF32 } from "../random.ts";
import { SGD, Tensor, backward, bceWithLogitsLoss, buildModel, nn, tidy, type Device } from "../../src/node.ts";
import { DeformableTransformer } from "../../src/models/deformable_transformer.ts";

// One training step (train-mode forward, backward, SGD) of tiny models on a device whose storage
// binding limit is lowered, so their activations, gradients and (cotr) token tensors are split
// (src/graph/ops/split.ts): loss, every parameter gradient, the parameters after the step and the
// batch-norm running statistics must equal those of a normal device. The limit stays at 2 MiB
// because the convolution weight gradient's partial sums (conv.ts, at most 16 MiB: far under a
// real 128 MiB binding) must fit it too.
const LIMIT = 2 << 20;

interface StepResult {
  loss: number;
  /** null: no gradient reached the parameter (on either device alike) */
  grads: Map<string, Float32Array | null>;
  after: Map<string, Float32Array>;
  copies: number;
}

const seeded = (d: Device, shape: number[], seed: number) => Tensor.from(d, uniformF32(shape.reduce((a, b) => a * b, 1), seed), shape);

async function step(d: Device, name: string, config: Record<string, unknown>, inputShape: number[]): Promise<StepResult> {
  nn.setInitSeed(17);
  const m = buildModel(d, name, config);
  m.train();
  const x = seeded(d, inputShape, 41);
  const params = m.parameters();
  const opt = new SGD(params, { lr: 0.1 });
  let copies = 0;
  const copy = d.copy.bind(d);
  d.copy = (...args: Parameters<Device["copy"]>) => (copies++, copy(...args));
  const loss = tidy(d, () => {
    const y = m.forward(x);
    const target = Tensor.from(d, uniformF32(y.size, 42, 0, 1), [...y.shape]);
    const l = bceWithLogitsLoss(y, target);
    backward(l);
    return l;
  });
  d.copy = copy;
  const grads = new Map<string, Float32Array | null>();
  for (const [k, p] of m.namedParameters()) grads.set(k, p.grad ? await p.grad.readFloat() : null);
  opt.step();
  const after = new Map<string, Float32Array>();
  for (const [k, t] of m.stateDict()) after.set(k, await t.readFloat());
  const out = { loss: (await loss.readFloat())[0]!, grads, after, copies };
  [x, loss].forEach((t) => t.dispose());
  (m as unknown as { dispose?: () => void }).dispose?.();
  return out;
}

function expectClose(got: Float32Array, ref: Float32Array, what: string, rel: number): void {
  expect(got.length, what).toBe(ref.length);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref[i]!));
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  expect(maxDiff, `${what}: max |diff| ${maxDiff} vs max |ref| ${maxRef}`).toBeLessThanOrEqual(rel * maxRef + 1e-7);
}

const MODELS: [string, string, Record<string, unknown>, number[]][] = [
  // batch norm in training mode (statistics over N·D·H·W across channel pieces), transposed convs,
  // concat, pooling: full-resolution activations of 2.25–3.4 MiB
  ["unet3d (batch norm, training mode)", "unet3d", { enc: [[4, 6], [6, 10], [10, 16]], dec: [[10, 8], [6, 6]] }, [2, 1, 24, 48, 64]],
  // instance norm, the 7³ stem, residual adds and the final upsampling over the limit (its
  // transformer's tokens stay under 2 MiB at this size: see the transformer test below)
  [
    "cotr (instance norm, residual blocks)",
    "cotr",
    { widths: [6, 12, 24, 24], blocks: [2, 1, 1], d_model: 24, n_heads: 3, n_layers: 2, d_ffn: 48, n_points: 2, dropout: 0 },
    [1, 1, 16, 160, 160],
  ],
];

describe("training over the storage binding limit", () => {
  const small = useDevice({ limits: { maxBindingBytes: LIMIT } });
  const normal = useDevice();

  for (const [title, name, config, inputShape] of MODELS)
    it(`${title}: one step equals the normal device`, async () => {
      const got = await step(small(), name, config, inputShape);
      const ref = await step(normal(), name, config, inputShape);
      expect(got.copies).toBeGreaterThan(100); // really split
      expect(Math.abs(got.loss - ref.loss)).toBeLessThanOrEqual(1e-5 * Math.abs(ref.loss));
      expect([...got.grads.keys()]).toEqual([...ref.grads.keys()]);
      for (const [k, g] of ref.grads) {
        expect(got.grads.get(k) === null, `grad ${k} present`).toBe(g === null);
        if (g) expectClose(got.grads.get(k)!, g, `grad ${k}`, 1e-4);
      }
      expect([...ref.grads.values()].filter((g) => g).length).toBeGreaterThan(ref.grads.size / 2);
      for (const [k, t] of ref.after) expectClose(got.after.get(k)!, t, `${k} after the step`, 1e-5);
    }, 600_000);
});

describe("the deformable transformer over the storage binding limit", () => {
  // CoTr's transformer alone (no convolutions, so the limit can be far lower): with 288 tokens ×
  // 24 channels (27 KiB, also the attention's value, which must fit), the 48-wide feed-forward
  // (54 KiB), the sampling offsets and locations (41 KiB) exceed a 32 KiB binding
  const CFG = { d_model: 24, n_heads: 3, n_layers: 2, d_ffn: 48, n_levels: 2, n_points: 2, dropout: 0 };
  const small = useDevice({ limits: { maxBindingBytes: 32768 } });
  const normal = useDevice();

  async function run(d: Device): Promise<{ y: Float32Array; grads: Map<string, Float32Array>; copies: number }> {
    nn.setInitSeed(5);
    const t = new DeformableTransformer(d, CFG);
    const srcs = [seeded(d, [1, 24, 4, 8, 8], 51), seeded(d, [1, 24, 2, 4, 4], 52)];
    srcs.forEach((s) => (s.requiresGrad = true));
    let copies = 0;
    const copy = d.copy.bind(d);
    d.copy = (...args: Parameters<Device["copy"]>) => (copies++, copy(...args));
    const y = tidy(d, () => {
      const y = t.forward(srcs);
      backward(y, [seeded(d, [...y.shape], 53)]);
      return y;
    });
    d.copy = copy;
    const grads = new Map<string, Float32Array>();
    for (const [k, p] of t.namedParameters()) grads.set(k, await p.grad!.readFloat());
    for (const [i, s] of srcs.entries()) grads.set(`src ${i}`, await s.grad!.readFloat());
    const out = { y: await y.readFloat(), grads, copies };
    [y, ...srcs].forEach((s) => s.dispose());
    return out;
  }

  it("output and every gradient equal the normal device", async () => {
    const got = await run(small());
    const ref = await run(normal());
    expect(got.copies).toBeGreaterThan(50); // really split
    expectClose(got.y, ref.y, "tokens", 1e-5);
    for (const [k, g] of ref.grads) expectClose(got.grads.get(k)!, g, `grad ${k}`, 1e-4);
  });
});

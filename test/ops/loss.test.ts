import { describe, expect, it } from "vitest";
import { goldenSuite, useDevice } from "../helpers.ts";
import {
  Tensor,
  backward,
  noGrad,
  PulmoError,
  bceLoss,
  bceWithLogitsLoss,
  weightedBceLoss,
  diceLoss,
  tverskyLoss,
  iouLoss,
  focalLoss,
  type Device,
} from "../../src/node.ts";

describe("loss golden cases", () =>
  goldenSuite(["loss_bce", "loss_bce_with_logits", "loss_weighted_bce", "loss_dice", "loss_tversky", "loss_iou", "loss_focal"]));

// ---------------------------------------------------------------------------------------------
// float64 references (PyTorch conventions), written independently of the kernels' formulas.
const clog = (v: number) => Math.max(Math.log(v), -100);
const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);

type Ref = (p: number[], g: number[], fixedW?: number) => number;
const REF: Record<string, Ref> = {
  bce: (p, g) => sum(p.map((v, i) => -(g[i]! * clog(v) + (1 - g[i]!) * clog(1 - v)))) / p.length,
  bce_with_logits: (x, g) =>
    sum(x.map((v, i) => -(g[i]! * Math.log(1 / (1 + Math.exp(-v))) + (1 - g[i]!) * Math.log(1 / (1 + Math.exp(v)))))) / x.length,
  weighted_bce_target: (p, g) => {
    const w = (p.length - sum(g)) / sum(g);
    return -sum(p.map((v, i) => w * g[i]! * clog(v) + (1 - g[i]!) * clog(1 - v))) / p.length;
  },
  weighted_bce_prediction: (p, g, fixedW) => {
    const w = fixedW ?? (p.length - sum(p)) / sum(p);
    return -sum(p.map((v, i) => w * g[i]! * clog(v) + (1 - g[i]!) * clog(1 - v))) / p.length;
  },
  dice: (p, g) => 1 - (2 * sum(p.map((v, i) => v * g[i]!)) + 1) / (sum(p) + sum(g) + 1),
  tversky: (p, g) => {
    const tp = sum(p.map((v, i) => v * g[i]!));
    const fp = sum(p.map((v, i) => v * (1 - g[i]!)));
    const fn = sum(p.map((v, i) => (1 - v) * g[i]!));
    return 1 - (tp + 0.5) / (tp + 0.3 * fp + 0.7 * fn + 0.5);
  },
  iou: (p, g) => {
    const i = sum(p.map((v, k) => v * g[k]!));
    return 1 - (i + 2) / (sum(p) + sum(g) - i + 2);
  },
  focal: (p, g) =>
    sum(
      p.map((v, i) => {
        const pos = g[i]! === 1;
        const pt = pos ? v : 1 - v;
        const at = pos ? 0.4 : 0.6;
        return -at * (1 - pt) ** 1.5 * clog(pt);
      }),
    ) / p.length,
};

const ENGINE: Record<string, (p: Tensor, g: Tensor) => Tensor> = {
  bce: (p, g) => bceLoss(p, g),
  bce_with_logits: (p, g) => bceWithLogitsLoss(p, g),
  weighted_bce_target: (p, g) => weightedBceLoss(p, g),
  weighted_bce_prediction: (p, g) => weightedBceLoss(p, g, { weightFrom: "prediction" }),
  dice: (p, g) => diceLoss(p, g),
  tversky: (p, g) => tverskyLoss(p, g, { alpha: 0.3, smooth: 0.5 }),
  iou: (p, g) => iouLoss(p, g, { smooth: 2 }),
  focal: (p, g) => focalLoss(p, g, { alpha: 0.4, gamma: 1.5 }),
};

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function inputs(n: number, seed: number, logits: boolean): { p: number[]; g: number[] } {
  const r = rng(seed);
  const p = Array.from({ length: n }, () => (logits ? (r() - 0.5) * 8 : 0.03 + 0.94 * r()));
  const g = Array.from({ length: n }, () => (r() < 0.3 ? 1 : 0));
  // Store exactly what the GPU sees (f32).
  return { p: [...Float32Array.from(p)], g };
}

async function lossAndGrad(d: Device, name: string, p: number[], g: number[], shape: number[], seed = 1) {
  const pt = Tensor.from(d, p, shape);
  const gt = Tensor.from(d, g, shape);
  pt.requiresGrad = true;
  const y = ENGINE[name]!(pt, gt);
  backward([y], [Tensor.from(d, [seed], [1])]);
  const value = (await y.read())[0]!;
  const grad = [...(await pt.grad!.read())];
  for (const t of [pt, gt, y, pt.grad!]) t.dispose();
  return { value, grad };
}

describe("losses against a float64 reference on an unseen shape", () => {
  const dev = useDevice();
  const shape = [2, 3, 5, 7];
  const n = 210;
  for (const name of Object.keys(REF)) {
    it(`${name}: forward and backward (central differences)`, async () => {
      const { p, g } = inputs(n, 17 + name.length, name === "bce_with_logits");
      const dy = 0.37;
      const { value, grad } = await lossAndGrad(dev(), name, p, g, shape, dy);
      const ref = REF[name]!;
      const fixedW = name === "weighted_bce_prediction" ? (n - sum(p)) / sum(p) : undefined; // w is a constant
      const y0 = ref(p, g, fixedW);
      expect(Math.abs(value - y0)).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(y0)));
      let num = 0;
      let den = 0;
      let worst = 0;
      let scale = 0;
      const h = 1e-6;
      for (let i = 0; i < n; i++) {
        const pp = [...p];
        pp[i] = p[i]! + h;
        const up = ref(pp, g, fixedW);
        pp[i] = p[i]! - h;
        const fd = (dy * (up - ref(pp, g, fixedW))) / (2 * h);
        num += (grad[i]! - fd) ** 2;
        den += fd * fd;
        worst = Math.max(worst, Math.abs(grad[i]! - fd));
        scale = Math.max(scale, Math.abs(fd));
      }
      expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
      expect(worst).toBeLessThan(1e-3 * scale);
    });
  }

  it("many workgroups (grid-stride past the workgroup cap) match the reference", async () => {
    const big = 1024 * 128 * 4 + 4099; // more elements than 1024 capped workgroups cover in one stride
    const { p, g } = inputs(big, 5, false);
    const pt = Tensor.from(dev(), p, [big]);
    const gt = Tensor.from(dev(), g, [big]);
    for (const name of ["bce", "dice", "tversky"]) {
      const y = noGrad(() => ENGINE[name]!(pt, gt));
      const v = (await y.read())[0]!;
      const r = REF[name]!(p, g);
      expect(Math.abs(v - r) / Math.abs(r)).toBeLessThan(1e-5);
      y.dispose();
    }
    pt.dispose();
    gt.dispose();
  });
});

describe("losses split over bindings and workgroups", () => {
  // 1024-element bindings and 4 workgroups per dimension: 5 chunks, split launches.
  const small = useDevice({ limits: { maxBindingBytes: 4096, maxWorkgroupsPerDim: 4 } });
  const plain = useDevice();
  it("gives the same loss and gradient as one binding", async () => {
    const n = 5000;
    for (const name of ["focal", "weighted_bce_target", "iou", "bce_with_logits"]) {
      const { p, g } = inputs(n, 3, name === "bce_with_logits");
      const a = await lossAndGrad(small(), name, p, g, [n], 0.8);
      const b = await lossAndGrad(plain(), name, p, g, [n], 0.8);
      expect(Math.abs(a.value - b.value)).toBeLessThan(2e-6 * Math.abs(b.value));
      const r = REF[name]!(p, g);
      expect(Math.abs(a.value - r)).toBeLessThan(2e-6 * Math.abs(r));
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(a.grad[i]! - b.grad[i]!) / (Math.abs(b.grad[i]!) + 1e-12));
      expect(worst).toBeLessThan(1e-4);
    }
  });
  // 4096-element bindings and 3 workgroups per dimension: the 8 reduction workgroups of a chunk
  // launch as 3×3 with one surplus workgroup that must write nothing.
  const split = useDevice({ limits: { maxBindingBytes: 16384, maxWorkgroupsPerDim: 3 } });
  it("reduces correctly when the partial-sum launch itself is split", async () => {
    const n = 10000;
    const { p, g } = inputs(n, 9, false);
    const pt = Tensor.from(split(), p, [n]);
    const gt = Tensor.from(split(), g, [n]);
    for (const name of ["bce", "dice", "weighted_bce_prediction"]) {
      const y = noGrad(() => ENGINE[name]!(pt, gt));
      const v = (await y.read())[0]!;
      const r = REF[name]!(p, g);
      expect(Math.abs(v - r)).toBeLessThan(2e-6 * Math.abs(r));
      y.dispose();
    }
    pt.dispose();
    gt.dispose();
  });
});

describe("loss edge cases", () => {
  const dev = useDevice();
  it("bce clamps log at -100 like PyTorch and stays finite at p = 0 and 1", async () => {
    const { value, grad } = await lossAndGrad(dev(), "bce", [0, 1, 0, 1], [1, 0, 0, 1], [4]);
    expect(value).toBeCloseTo(50, 4); // two elements at 100, two at 0
    expect(grad.every(Number.isFinite)).toBe(true);
    // PyTorch's backward: (p - g) / max(p(1-p), 1e-12) / N
    expect(grad[0]! / -2.5e11).toBeCloseTo(1, 5);
    expect(grad[2]).toBe(0);
  });
  it("bce with logits is stable at ±100", async () => {
    const { value, grad } = await lossAndGrad(dev(), "bce_with_logits", [-100, 100, 100, -100], [1, 0, 1, 0], [2, 2]);
    expect(value).toBeCloseTo(50, 4);
    expect(grad.map((v) => Math.round(v * 1e6) / 1e6)).toEqual([-0.25, 0.25, 0, 0]);
  });
  it("focal with gamma 0 and p_t = 1 has no NaN", async () => {
    const p = Tensor.from(dev(), [1, 0, 0.5], [3]);
    const g = Tensor.from(dev(), [1, 0, 1], [3]);
    p.requiresGrad = true;
    for (const gamma of [0, 0.5, 2]) {
      const y = focalLoss(p, g, { gamma });
      backward([y]);
      expect([...(await y.read())].every(Number.isFinite)).toBe(true);
      expect([...(await p.grad!.read())].every(Number.isFinite)).toBe(true);
      p.grad!.dispose();
      p.grad = null;
      y.dispose();
    }
  });
  it("weighted bce with no positive target gives plain negative-class BCE", async () => {
    const { value } = await lossAndGrad(dev(), "weighted_bce_target", [0.2, 0.6], [0, 0], [2]);
    expect(value).toBeCloseTo(-(Math.log(0.8) + Math.log(0.4)) / 2, 5);
  });
  it("gives no gradient to the target and frees every temporary", async () => {
    const d = dev();
    const p = Tensor.from(d, [0.1, 0.5, 0.8, 0.3], [2, 2]);
    const g = Tensor.from(d, [0, 1, 1, 0], [2, 2]);
    p.requiresGrad = true;
    g.requiresGrad = true;
    const run = async () => {
      for (const f of Object.values(ENGINE)) {
        const y = f(p, g);
        backward([y]);
        y.dispose();
      }
      await d.flush();
      p.grad!.dispose();
      p.grad = null;
    };
    await run();
    expect(g.grad).toBeNull();
    const inUse = d.pool.inUseBytes;
    await run();
    await run();
    expect(d.pool.inUseBytes).toBe(inUse);
    // Without a gradient to record, nothing is retained either.
    const y = noGrad(() => diceLoss(p, g));
    y.dispose();
    expect(d.pool.inUseBytes).toBe(inUse);
  });
});

describe("loss input validation", () => {
  const dev = useDevice();
  const t = (shape: number[], dtype: "f32" | "i32" = "f32") =>
    Tensor.from(dev(), new Array(shape.reduce((a, b) => a * b, 1)).fill(0), shape, dtype);
  it("rejects mismatched shapes, naming both", () => {
    expect(() => bceLoss(t([2, 3]), t([3, 2]))).toThrow(PulmoError);
    expect(() => diceLoss(t([2, 3]), t([3, 2]))).toThrow(/dice_loss: 'p' \[2, 3\] and 'target' \[3, 2\] must have the same shape/);
  });
  it("rejects a rank mismatch even with equal element counts", () => {
    expect(() => focalLoss(t([6]), t([2, 3]))).toThrow(/focal_loss: 'p' \[6\] and 'target' \[2, 3\]/);
    expect(() => bceWithLogitsLoss(t([1, 6]), t([6]))).toThrow(/bce_with_logits_loss: 'logits' \[1, 6\]/);
  });
  it("rejects non-f32 prediction or target", () => {
    expect(() => iouLoss(t([4], "i32"), t([4]))).toThrow(/iou_loss: 'p' must be f32, got i32/);
    expect(() => tverskyLoss(t([4]), t([4], "i32"))).toThrow(/tversky_loss: 'target' must be f32, got i32/);
  });
  it("rejects empty tensors and bad options", () => {
    expect(() => bceLoss(t([0, 3]), t([0, 3]))).toThrow(/bce_loss: 'p' \[0, 3\] is empty/);
    expect(() => focalLoss(t([4]), t([4]), { gamma: -1 })).toThrow(/focal_loss: option 'gamma'/);
    expect(() => tverskyLoss(t([4]), t([4]), { alpha: 1.5 })).toThrow(/tversky_loss: option 'alpha'/);
    expect(() => diceLoss(t([4]), t([4]), { smooth: NaN })).toThrow(/dice_loss: option 'smooth'/);
    expect(() => weightedBceLoss(t([4]), t([4]), { weightFrom: "pred" as any })).toThrow(/weightFrom/);
  });
});

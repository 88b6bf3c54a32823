import { describe, expect, it } from "vitest";
import { goldenSuite, useDevice } from "../helpers.ts";
import { rng } from "../random.ts";
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
  softmaxCrossEntropy,
  diceCeLoss,
  diceBceLoss,
  softDiceSigmoidLoss,
  vnetDiceLoss,
  deepSupervisionLoss,
  deepSupervisionWeights,
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

/** Forward-only value of each named loss on p, g (as [n] tensors on d), with its float64 reference. */
async function forwardValues(d: Device, names: string[], p: number[], g: number[]): Promise<{ v: number; r: number }[]> {
  const pt = Tensor.from(d, p, [p.length]);
  const gt = Tensor.from(d, g, [g.length]);
  const out: { v: number; r: number }[] = [];
  for (const name of names) {
    const y = noGrad(() => ENGINE[name]!(pt, gt));
    out.push({ v: (await y.read())[0]!, r: REF[name]!(p, g) });
    y.dispose();
  }
  pt.dispose();
  gt.dispose();
  return out;
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
    for (const { v, r } of await forwardValues(dev(), ["bce", "dice", "tversky"], p, g))
      expect(Math.abs(v - r) / Math.abs(r)).toBeLessThan(1e-5);
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
    for (const { v, r } of await forwardValues(split(), ["bce", "dice", "weighted_bce_prediction"], p, g))
      expect(Math.abs(v - r)).toBeLessThan(2e-6 * Math.abs(r));
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

// ---------------------------------------------------------------------------------------------
// Losses on logits: softmax cross-entropy, nnU-Net Dice + CE, sigmoid Dice / Dice + BCE, V-Net
// Dice, deep supervision. float64 references written from the definitions (PyTorch / nnU-Net).

interface ClassCase {
  z: number[]; // logits [N, C, S] flattened
  t: number[]; // class indices [N, S]
  n: number;
  c: number;
  s: number;
}

const softmaxAt = (k: ClassCase, z: number[], n: number, v: number): number[] => {
  const zs = Array.from({ length: k.c }, (_, c) => z[(n * k.c + c) * k.s + v]!);
  const m = Math.max(...zs);
  const e = zs.map((x) => Math.exp(x - m));
  const tot = sum(e);
  return e.map((x) => x / tot);
};

/** F.cross_entropy(weight=w, ignore_index=ignore), mean: sum(w[t]*nll)/sum(w[t]). */
function refCe(k: ClassCase, z: number[], w?: number[], ignore?: number): number {
  let num = 0;
  let den = 0;
  for (let n = 0; n < k.n; n++)
    for (let v = 0; v < k.s; v++) {
      const t = k.t[n * k.s + v]!;
      if (t === ignore) continue;
      const p = softmaxAt(k, z, n, v);
      const wt = w ? w[t]! : 1;
      num += -wt * Math.log(p[t]!);
      den += wt;
    }
  return num / den;
}

/** nnU-Net DC_and_CE (batch_dice, do_bg=False): CE + 1 - mean_{c>=1} Dice_c. */
function refDiceCe(k: ClassCase, z: number[], smooth = 1e-5): number {
  const I = new Array(k.c).fill(0);
  const P = new Array(k.c).fill(0);
  const T = new Array(k.c).fill(0);
  for (let n = 0; n < k.n; n++)
    for (let v = 0; v < k.s; v++) {
      const t = k.t[n * k.s + v]!;
      const p = softmaxAt(k, z, n, v);
      for (let c = 0; c < k.c; c++) {
        const tc = t === c ? 1 : 0;
        I[c] += p[c]! * tc;
        P[c] += p[c]!;
        T[c] += tc;
      }
    }
  let dice = 0;
  for (let c = 1; c < k.c; c++) dice += (2 * I[c] + smooth) / (P[c] + T[c] + smooth);
  return refCe(k, z) + 1 - dice / (k.c - 1);
}

function classCase(n: number, c: number, spatial: number[], seed: number, scale = 6): ClassCase {
  const r = rng(seed);
  const s = spatial.reduce((a, b) => a * b, 1);
  const z = [...Float32Array.from({ length: n * c * s }, () => (r() - 0.5) * scale)];
  const t = Array.from({ length: n * s }, () => Math.min(c - 1, Math.floor(r() * c)));
  return { z, t, n, c, s };
}

/** Central differences of dy * f over every logit, against the engine's gradient. */
function expectGradClose(grad: ArrayLike<number>, z: number[], f: (z: number[]) => number, dy: number, tol = 1e-4): void {
  const h = 1e-6;
  let num = 0;
  let den = 0;
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < z.length; i++) {
    const zz = [...z];
    zz[i] = z[i]! + h;
    const up = f(zz);
    zz[i] = z[i]! - h;
    const fd = (dy * (up - f(zz))) / (2 * h);
    num += (grad[i]! - fd) ** 2;
    den += fd * fd;
    worst = Math.max(worst, Math.abs(grad[i]! - fd));
    scale = Math.max(scale, Math.abs(fd));
  }
  expect(Math.sqrt(num / den)).toBeLessThan(tol);
  expect(worst).toBeLessThan(10 * tol * scale);
}

async function runClassLoss(
  d: Device,
  k: ClassCase,
  shape: number[],
  targetShape: number[],
  f: (z: Tensor, t: Tensor) => Tensor,
  dy: number,
): Promise<{ value: number; grad: Float32Array }> {
  const zt = Tensor.from(d, k.z, shape);
  const tt = Tensor.from(d, k.t, targetShape);
  zt.requiresGrad = true;
  const y = f(zt, tt);
  expect(y.shape).toEqual([1]);
  backward([y], [Tensor.from(d, [dy], [1])]);
  const value = (await y.read())[0]!;
  const grad = (await zt.grad!.read()) as Float32Array;
  for (const t of [zt, tt, y, zt.grad!]) t.dispose();
  return { value, grad };
}

const relClose = (a: number, b: number, tol: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b)));

describe("softmax cross-entropy and nnU-Net Dice + CE against float64 references", () => {
  const dev = useDevice();
  const layouts: { spatial: number[]; withChannel: boolean }[] = [
    { spatial: [3, 4], withChannel: false },
    { spatial: [2, 3, 2], withChannel: true },
  ];
  for (const c of [2, 3])
    for (const { spatial, withChannel } of layouts) {
      const shape = [2, c, ...spatial];
      const tshape = withChannel ? [2, 1, ...spatial] : [2, ...spatial];
      const name = `C=${c}, logits ${JSON.stringify(shape)}, target ${JSON.stringify(tshape)}`;
      it(`softmaxCrossEntropy ${name}`, async () => {
        const k = classCase(2, c, spatial, 11 * c + spatial.length);
        const r = await runClassLoss(dev(), k, shape, tshape, (z, t) => softmaxCrossEntropy(z, t), 0.63);
        relClose(r.value, refCe(k, k.z), 1e-5);
        expectGradClose(r.grad, k.z, (z) => refCe(k, z), 0.63);
      });
      it(`softmaxCrossEntropy with class weights, ${name}`, async () => {
        const k = classCase(2, c, spatial, 7 * c + spatial.length);
        const w = c === 2 ? [0.3, 2.5] : [0.3, 2.5, 1.2];
        const r = await runClassLoss(dev(), k, shape, tshape, (z, t) => softmaxCrossEntropy(z, t, { classWeights: w }), 1.7);
        relClose(r.value, refCe(k, k.z, w), 1e-5);
        expectGradClose(r.grad, k.z, (z) => refCe(k, z, w), 1.7);
      });
      it(`diceCeLoss ${name}`, async () => {
        const k = classCase(2, c, spatial, 5 * c + spatial.length);
        const r = await runClassLoss(dev(), k, shape, tshape, (z, t) => diceCeLoss(z, t), 0.9);
        relClose(r.value, refDiceCe(k, k.z), 1e-5);
        expectGradClose(r.grad, k.z, (z) => refDiceCe(k, z), 0.9);
      });
    }

  it("softmaxCrossEntropy with ignoreIndex drops those voxels (and with weights)", async () => {
    const k = classCase(2, 3, [4, 5], 99);
    k.t = k.t.map((v, i) => (i % 7 === 3 ? 255 : v));
    const w = [1, 0.5, 3];
    const r = await runClassLoss(dev(), k, [2, 3, 4, 5], [2, 4, 5], (z, t) => softmaxCrossEntropy(z, t, { ignoreIndex: 255, classWeights: w }), 1);
    relClose(r.value, refCe(k, k.z, w, 255), 1e-5);
    expectGradClose(r.grad, k.z, (z) => refCe(k, z, w, 255), 1);
    // an ignored voxel gets no gradient on any channel
    for (let c = 0; c < 3; c++) expect(r.grad[(0 * 3 + c) * 20 + 3]).toBe(0);
  });

  it("softmaxCrossEntropy on [N, C] logits (no spatial dims) and diceCe with its own smoothing", async () => {
    const k = classCase(2, 3, [], 4);
    const a = await runClassLoss(dev(), k, [2, 3], [2], (z, t) => softmaxCrossEntropy(z, t), 1);
    relClose(a.value, refCe(k, k.z), 1e-5);
    expectGradClose(a.grad, k.z, (z) => refCe(k, z), 1);
    const k2 = classCase(2, 2, [6], 8);
    const b = await runClassLoss(dev(), k2, [2, 2, 6], [2, 1, 6], (z, t) => diceCeLoss(z, t, { smooth: 1 }), 1);
    relClose(b.value, refDiceCe(k2, k2.z, 1), 1e-5);
    expectGradClose(b.grad, k2.z, (z) => refDiceCe(k2, z, 1), 1);
  });

  it("is stable for huge logits and deterministic run to run", async () => {
    const d = dev();
    const k = classCase(2, 3, [8], 21, 2000); // logits up to ±1000
    const r1 = await runClassLoss(d, k, [2, 3, 8], [2, 8], (z, t) => diceCeLoss(z, t), 1);
    const r2 = await runClassLoss(d, k, [2, 3, 8], [2, 8], (z, t) => diceCeLoss(z, t), 1);
    expect(Number.isFinite(r1.value)).toBe(true);
    expect([...r1.grad].every(Number.isFinite)).toBe(true);
    relClose(r1.value, refDiceCe(k, k.z), 1e-5);
    expect(r2.value).toBe(r1.value);
    expect([...r2.grad]).toEqual([...r1.grad]);
  });

  it("many voxels over many workgroups match the reference (diceCe, weighted CE)", async () => {
    const d = dev();
    const k = classCase(2, 3, [40, 41, 7], 13); // 22,960 voxels: 180 pass-1 workgroups
    const z = Tensor.from(d, k.z, [2, 3, 40, 41, 7]);
    const t = Tensor.from(d, k.t, [2, 40, 41, 7]);
    const y1 = noGrad(() => diceCeLoss(z, t));
    const y2 = noGrad(() => softmaxCrossEntropy(z, t, { classWeights: [0.2, 1, 4] }));
    relClose((await y1.read())[0]!, refDiceCe(k, k.z), 1e-5);
    relClose((await y2.read())[0]!, refCe(k, k.z, [0.2, 1, 4]), 1e-5);
    for (const x of [z, t, y1, y2]) x.dispose();
  });

  it("gives NaN for an out-of-range, fractional, NaN or infinite class index and for all-ignored targets", async () => {
    const d = dev();
    const z = Tensor.from(d, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [1, 3, 2]);
    for (const bad of [[0, 3], [0, 1.5], [-1, 0], [0, NaN], [Infinity, 0]]) {
      const t = Tensor.from(d, bad, [1, 2]);
      const y = softmaxCrossEntropy(z, t);
      expect(Number.isNaN((await y.read())[0])).toBe(true);
      const y2 = diceCeLoss(z, t);
      expect(Number.isNaN((await y2.read())[0])).toBe(true);
      for (const x of [t, y, y2]) x.dispose();
    }
    const t = Tensor.from(d, [7, 7], [1, 2]);
    const y = softmaxCrossEntropy(z, t, { ignoreIndex: 7 });
    expect(Number.isNaN((await y.read())[0])).toBe(true);
    for (const x of [z, t, y]) x.dispose();
  });
});

describe("softmax losses split over bindings and workgroups", () => {
  // 4096-element bindings, 6 workgroups per dimension: samples of 2000 logits bound two at a time
  // (the second chunk starts mid-256-byte block); pass 1 (16 workgroups) launches as 6×3 with two
  // surplus workgroups that must write nothing, the backward (32) as 6×6.
  const small = useDevice({ limits: { maxBindingBytes: 16384, maxWorkgroupsPerDim: 6 } });
  const plain = useDevice();
  it("gives the same loss and gradient as one binding", async () => {
    const k = classCase(5, 2, [1000], 31);
    for (const [name, f, ref] of [
      ["ce", (z: Tensor, t: Tensor) => softmaxCrossEntropy(z, t, { classWeights: [0.7, 1.9] }), (z: number[]) => refCe(k, z, [0.7, 1.9])],
      ["dice_ce", (z: Tensor, t: Tensor) => diceCeLoss(z, t), (z: number[]) => refDiceCe(k, z)],
    ] as const) {
      const a = await runClassLoss(small(), k, [5, 2, 1000], [5, 1, 1000], f, 0.5);
      const b = await runClassLoss(plain(), k, [5, 2, 1000], [5, 1, 1000], f, 0.5);
      relClose(a.value, ref(k.z), 1e-5);
      relClose(a.value, b.value, 2e-6);
      let worst = 0;
      for (let i = 0; i < b.grad.length; i++) worst = Math.max(worst, Math.abs(a.grad[i]! - b.grad[i]!) / (Math.abs(b.grad[i]!) + 1e-12));
      expect(worst, name).toBeLessThan(1e-4);
    }
  });
  it("rejects a sample larger than one binding", () => {
    const z = Tensor.zeros(small(), [1, 3, 2000]);
    const t = Tensor.zeros(small(), [1, 2000]);
    expect(() => softmaxCrossEntropy(z, t)).toThrow(/softmax_cross_entropy: one sample of 'logits' \[1, 3, 2000\] \(6000 elements\) does not fit/);
    z.dispose();
    t.dispose();
  });
});

// Sigmoid-network losses: same-shape targets, element-wise references.
const sig = (x: number) => 1 / (1 + Math.exp(-x));
const SIGMOID_REF: Record<string, (x: number[], g: number[]) => number> = {
  soft_dice_sigmoid: (x, g) => {
    const p = x.map(sig);
    return 1 - (2 * sum(p.map((v, i) => v * g[i]!)) + 1) / (sum(p) + sum(g) + 1);
  },
  dice_bce: (x, g) => {
    const p = x.map(sig);
    const bce = sum(x.map((v, i) => -(g[i]! * Math.log(sig(v)) + (1 - g[i]!) * Math.log(sig(-v))))) / x.length;
    const dice = 1 - (2 * sum(p.map((v, i) => v * g[i]!)) + 0.5) / (sum(p) + sum(g) + 0.5);
    return 1.3 * bce + 0.7 * dice;
  },
  vnet_dice: (p, g) => 1 - (2 * sum(p.map((v, i) => v * g[i]!)) + 1) / (sum(p.map((v) => v * v)) + sum(g.map((v) => v * v)) + 1),
};
const SIGMOID_ENGINE: Record<string, (x: Tensor, g: Tensor) => Tensor> = {
  soft_dice_sigmoid: (x, g) => softDiceSigmoidLoss(x, g),
  dice_bce: (x, g) => diceBceLoss(x, g, { smooth: 0.5, diceWeight: 0.7, bceWeight: 1.3 }),
  vnet_dice: (p, g) => vnetDiceLoss(p, g),
};

describe("sigmoid Dice, Dice + BCE and V-Net Dice against float64 references", () => {
  const dev = useDevice();
  for (const name of Object.keys(SIGMOID_REF))
    it(`${name}: forward and backward (central differences)`, async () => {
      const { p, g } = inputs(70, 41 + name.length, name !== "vnet_dice");
      const pt = Tensor.from(dev(), p, [2, 1, 5, 7]);
      const gt = Tensor.from(dev(), g, [2, 1, 5, 7]);
      pt.requiresGrad = true;
      const y = SIGMOID_ENGINE[name]!(pt, gt);
      backward([y], [Tensor.from(dev(), [0.8], [1])]);
      relClose((await y.read())[0]!, SIGMOID_REF[name]!(p, g), 2e-6);
      expectGradClose(await pt.grad!.read(), p, (x) => SIGMOID_REF[name]!(x, g), 0.8);
      for (const t of [pt, gt, y, pt.grad!]) t.dispose();
    });
  it("softDiceSigmoidLoss equals diceLoss on sigmoid probabilities", async () => {
    const { p, g } = inputs(64, 3, true);
    const x = Tensor.from(dev(), p, [64]);
    const gt = Tensor.from(dev(), g, [64]);
    const y = noGrad(() => softDiceSigmoidLoss(x, gt));
    const q = Tensor.from(dev(), p.map(sig), [64]);
    const y2 = noGrad(() => diceLoss(q, gt));
    relClose((await y.read())[0]!, (await y2.read())[0]!, 2e-6);
    for (const t of [x, gt, y, q, y2]) t.dispose();
  });
});

describe("deep supervision", () => {
  const dev = useDevice();
  it("deepSupervisionWeights: 1/2^i normalised, optionally nnU-Net's zeroed lowest output", () => {
    expect(deepSupervisionWeights(4).map((w) => w * 15)).toEqual([8, 4, 2, 1].map((v) => expect.closeTo(v, 12)));
    expect(deepSupervisionWeights(1)).toEqual([1]);
    expect(deepSupervisionWeights(4, { zeroLowest: true }).map((w) => w * 7)).toEqual([4, 2, 1, 0].map((v) => expect.closeTo(v, 12)));
    expect(deepSupervisionWeights(1, { zeroLowest: true })).toEqual([1]);
    expect(() => deepSupervisionWeights(0)).toThrow(/deep_supervision_weights: 'n'/);
  });
  it("sums weighted Dice + CE losses of several outputs with the right gradients", async () => {
    const d = dev();
    const w = deepSupervisionWeights(3);
    const cases = [classCase(2, 2, [4, 4], 1), classCase(2, 2, [2, 2], 2), classCase(2, 2, [1, 1], 3)];
    const shapes = [[2, 2, 4, 4], [2, 2, 2, 2], [2, 2, 1, 1]];
    const zs = cases.map((k, i) => Tensor.from(d, k.z, shapes[i]!));
    const ts = cases.map((k, i) => Tensor.from(d, k.t, [2, 1, ...shapes[i]!.slice(2)]));
    zs.forEach((z) => (z.requiresGrad = true));
    const losses = zs.map((z, i) => diceCeLoss(z, ts[i]!));
    const y = deepSupervisionLoss(losses, w);
    backward([y], [Tensor.from(d, [2], [1])]);
    const ref = sum(cases.map((k, i) => w[i]! * refDiceCe(k, k.z)));
    relClose((await y.read())[0]!, ref, 1e-5);
    for (let i = 0; i < 3; i++) {
      const k = cases[i]!;
      expectGradClose(await zs[i]!.grad!.read(), k.z, (z) => w[i]! * refDiceCe(k, z), 2);
    }
    for (const t of [...zs, ...ts, ...losses, y, ...zs.map((z) => z.grad!)]) t.dispose();
  });
  it("handles the same loss twice and passes dy to every term", async () => {
    const d = dev();
    const a = Tensor.from(d, [3], [1]);
    const b = Tensor.from(d, [5], [1]);
    a.requiresGrad = true;
    b.requiresGrad = true;
    const y = deepSupervisionLoss([a, b, a], [0.5, 0.25, 2]);
    backward([y], [Tensor.from(d, [3], [1])]);
    expect((await y.read())[0]).toBeCloseTo(3 * 2.5 + 1.25, 5);
    expect((await a.grad!.read())[0]).toBeCloseTo(3 * 2.5, 5);
    expect((await b.grad!.read())[0]).toBeCloseTo(0.75, 5);
    for (const t of [a, b, y, a.grad!, b.grad!]) t.dispose();
  });
});

describe("logit-loss input validation and memory", () => {
  const dev = useDevice();
  const t = (shape: number[], dtype: "f32" | "i32" = "f32") =>
    Tensor.from(dev(), new Array(shape.reduce((a, b) => a * b, 1)).fill(0), shape, dtype);
  it("rejects bad shapes, class counts and dtypes, naming the problem", () => {
    expect(() => softmaxCrossEntropy(t([6]), t([6]))).toThrow(/softmax_cross_entropy: 'logits' must have shape \[N, C, \.\.\.spatial\] \(rank >= 2\), got \[6\]/);
    expect(() => softmaxCrossEntropy(t([2, 3, 4]), t([2, 3, 4]))).toThrow(
      /softmax_cross_entropy: 'target' \[2, 3, 4\] must hold class indices of shape \[2, 4\] or \[2, 1, 4\] for 'logits' \[2, 3, 4\]/,
    );
    expect(() => diceCeLoss(t([2, 2, 4]), t([2, 5]))).toThrow(/dice_ce_loss: 'target' \[2, 5\]/);
    expect(() => diceCeLoss(t([2, 1, 4]), t([2, 4]))).toThrow(/dice_ce_loss: 'logits' \[2, 1, 4\] has 1 class channel\(s\) in dim 1; needs at least 2/);
    expect(() => softmaxCrossEntropy(t([2, 3, 4], "i32"), t([2, 4]))).toThrow(/softmax_cross_entropy: 'logits' must be f32, got i32/);
    expect(() => diceCeLoss(t([2, 3, 4]), t([2, 4], "i32"))).toThrow(/dice_ce_loss: 'target' must be f32, got i32/);
    expect(() => softmaxCrossEntropy(t([0, 3, 4]), t([0, 4]))).toThrow(/is empty/);
    expect(() => softDiceSigmoidLoss(t([2, 1, 4]), t([2, 4]))).toThrow(/soft_dice_sigmoid_loss: 'logits' \[2, 1, 4\] and 'target' \[2, 4\] must have the same shape/);
    expect(() => diceBceLoss(t([4]), t([5]))).toThrow(/dice_bce_loss: 'logits' \[4\]/);
    expect(() => vnetDiceLoss(t([4], "i32"), t([4]))).toThrow(/vnet_dice_loss: 'p' must be f32/);
  });
  it("rejects bad options", () => {
    expect(() => softmaxCrossEntropy(t([2, 3, 4]), t([2, 4]), { classWeights: [1, 2] })).toThrow(
      /softmax_cross_entropy: option 'classWeights' must have one weight per class \(3\), got 2/,
    );
    expect(() => softmaxCrossEntropy(t([2, 3, 4]), t([2, 4]), { classWeights: [1, -2, 1] })).toThrow(/classWeights\[1\]/);
    expect(() => softmaxCrossEntropy(t([2, 3, 4]), t([2, 4]), { ignoreIndex: 0.5 })).toThrow(/option 'ignoreIndex' must be an integer/);
    expect(() => diceCeLoss(t([2, 3, 4]), t([2, 4]), { smooth: -1 })).toThrow(/dice_ce_loss: option 'smooth'/);
    expect(() => diceBceLoss(t([4]), t([4]), { diceWeight: NaN })).toThrow(/dice_bce_loss: option 'diceWeight'/);
    expect(() => diceBceLoss(t([4]), t([4]), { bceWeight: -1 })).toThrow(/dice_bce_loss: option 'bceWeight'/);
    expect(() => softDiceSigmoidLoss(t([4]), t([4]), { smooth: Infinity })).toThrow(/soft_dice_sigmoid_loss: option 'smooth'/);
    expect(() => vnetDiceLoss(t([4]), t([4]), { smooth: -0.1 })).toThrow(/vnet_dice_loss: option 'smooth'/);
    expect(() => deepSupervisionLoss([], [])).toThrow(/deep_supervision_loss: 'losses' must be a non-empty array/);
    expect(() => deepSupervisionLoss([t([1]), t([1])], [1])).toThrow(/'weights' must have one weight per loss \(2\), got 1/);
    expect(() => deepSupervisionLoss([t([2])], [1])).toThrow(/'losses\[0\]' must be a scalar loss of shape \[1\], got \[2\]/);
    expect(() => deepSupervisionLoss([t([1])], [NaN])).toThrow(/'weights\[0\]' must be a finite number/);
  });
  it("gives no gradient to the target and frees every temporary", async () => {
    const d = dev();
    const k = classCase(2, 3, [4, 3], 77);
    const z = Tensor.from(d, k.z, [2, 3, 4, 3]);
    const tg = Tensor.from(d, k.t, [2, 4, 3]);
    const x = Tensor.from(d, k.z.slice(0, 24), [2, 1, 4, 3]);
    const g = Tensor.from(d, k.t.slice(0, 24).map((v) => (v > 0 ? 1 : 0)), [2, 1, 4, 3]);
    for (const a of [z, tg, x, g]) a.requiresGrad = true;
    const run = async () => {
      const ls = [
        softmaxCrossEntropy(z, tg),
        softmaxCrossEntropy(z, tg, { classWeights: [1, 2, 3], ignoreIndex: 2 }),
        diceCeLoss(z, tg),
        softDiceSigmoidLoss(x, g),
        diceBceLoss(x, g),
        vnetDiceLoss(x, g),
      ];
      const y = deepSupervisionLoss(ls, deepSupervisionWeights(ls.length));
      backward([y]);
      for (const l of [...ls, y]) l.dispose();
      await d.flush();
      for (const a of [z, x]) {
        a.grad!.dispose();
        a.grad = null;
      }
    };
    await run();
    expect(tg.grad).toBeNull();
    expect(g.grad).toBeNull();
    const inUse = d.pool.inUseBytes;
    await run();
    await run();
    expect(d.pool.inUseBytes).toBe(inUse);
    const y = noGrad(() => diceCeLoss(z, tg));
    const y2 = noGrad(() => softmaxCrossEntropy(z, tg, { classWeights: [1, 2, 3] }));
    y.dispose();
    y2.dispose();
    expect(d.pool.inUseBytes).toBe(inUse);
  });
});

// Gradient checks on composite graphs (issue 4): the directional derivative of a scalar graph
// f(θ) along random directions v, from the autograd gradient (GPU backward, read back) as
// Σ⟨∇f, v⟩, must agree with central differences (f(θ+εv) − f(θ−εv)) / 2ε of the GPU forward in
// f32, within 1e-2 relative: |num − auto| ≤ 1e-2 · max(|num|, |auto|, tiny).
//
// What keeps the comparison honest in f32:
// - θ ± εv are rounded to f32 before the GPU sees them, so the perturbation applied is
//   Δ = f32(θ+εv) − f32(θ−εv), not 2εv. The autograd side uses that Δ (Σ⟨∇f, Δ⟩), so input
//   rounding does not enter the comparison.
// - ε is relative: each tensor's direction has the norm of the tensor itself, ε = 1e-2 (3e-2
//   on the Dice graph, whose derivatives are small against its rounding floor). The
//   numerical derivative is the Richardson extrapolation (4 D(ε/2) − D(ε)) / 3 of two central
//   differences, so its truncation error is O(ε⁴) (plain central differences at this ε were off
//   by up to ~1% on the layerNorm → gelu → softmax graph), and its rounding error is that of
//   the f32 forward, about 3 u / ε for a forward off by u.
// - tiny is that rounding floor, made relative: with u = 2 ulp(max(|f|, 1)), tiny = 100 · 3u/ε,
//   so below tiny the allowed error is the rounding error of the numerical side itself (on the
//   Dice graph, derivatives ~1e-2 against a loss ~0.5, that floor is what limits precision).
//   Every check must be decisive: its derivative above tiny / 10, so that a gradient 10% off
//   fails it. A random direction that is not (nearly orthogonal to the gradient, as happens for
//   a 2-element bias) is replaced by the next draw, up to 3.
// - Kinks: a graph lists the tensors whose elements must stay in one smooth piece (the
//   argument of leaky_relu, the voxel cell of each deformable-attention sample). If any element
//   changes piece between θ−εv and θ+εv, ε is divided by 4 and the check redone.
import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { rng, uniformF32, type Rng } from "../random.ts";
import {
  Tensor,
  backward,
  conv2d,
  conv3d,
  convLstm2d,
  diceLoss,
  gelu,
  instanceNorm,
  layerNorm,
  leakyRelu,
  linear,
  msDeformAttn3d,
  mul,
  mulScalar,
  noGrad,
  record,
  reshape,
  sigmoid,
  softmax,
  sum,
  tidy,
  type Device,
  type SpatialShape3d,
} from "../../src/node.ts";

// ---------------------------------------------------------------------------------------------
// Harness

/** Elements of `t` must keep the same `cell(value, index)` across the perturbation. */
interface Kink {
  t: Tensor;
  cell: (x: number, i: number) => number;
}

interface Param {
  name: string;
  shape: number[];
  data: Float32Array;
}

interface Graph {
  params: Param[];
  /** params whose gradient is zero in exact arithmetic (a bias cancelled by a normalisation) */
  zero?: string[];
  /** relative step (default EPS) */
  eps?: number;
  /** the scalar f from one tensor per param (same order), and the tensors that must not cross a kink */
  f(ts: Tensor[]): { loss: Tensor; kinks?: Kink[] };
}

const REL = 1e-2;
const EPS = 1e-2;

/** The criterion of the issue: |num − auto| ≤ 1e-2 · max(|num|, |auto|, tiny). */
function agrees(num: number, auto: number, tiny: number, rel = REL): boolean {
  return Number.isFinite(num) && Number.isFinite(auto) && Math.abs(num - auto) <= rel * Math.max(Math.abs(num), Math.abs(auto), tiny);
}

const param = (name: string, shape: number[], r: Rng, lo = -1, hi = 1): Param => ({
  name,
  shape,
  data: uniformF32(shape.reduce((a, b) => a * b, 1), r, lo, hi),
});

/** Uniform weights scaled by 1/sqrt(fanIn), as PyTorch's default init. */
const weight = (name: string, shape: number[], fanIn: number, r: Rng): Param => param(name, shape, r, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn));

/** ∇f at θ, one Float32Array per param, from the GPU backward. */
async function autogradGrads(d: Device, g: Graph): Promise<Float32Array[]> {
  const leaves = g.params.map((p) => {
    const t = Tensor.from(d, p.data, p.shape);
    t.requiresGrad = true;
    return t;
  });
  tidy(d, () => {
    const { loss } = g.f(leaves);
    expect(loss.size).toBe(1);
    backward(loss);
  });
  const grads: Float32Array[] = [];
  for (const [i, t] of leaves.entries()) {
    if (!t.grad) throw new Error(`no gradient reached '${g.params[i]!.name}'`);
    grads.push(await t.grad.readFloat());
    t.grad.dispose();
    t.dispose();
  }
  return grads;
}

/** f at the given values (no recording), and the kink cells of its listed tensors. */
async function evaluate(d: Device, g: Graph, values: Float32Array[]): Promise<{ f: number; cells: number[][] }> {
  const inputs = values.map((v, i) => Tensor.from(d, v, g.params[i]!.shape));
  const kinks: Kink[] = [];
  const out = tidy(d, () =>
    noGrad(() => {
      const r = g.f(inputs);
      kinks.push(...(r.kinks ?? []));
      return [r.loss, ...kinks.map((k) => k.t)];
    }),
  );
  const f = (await out[0]!.readFloat())[0]!;
  const cells: number[][] = [];
  for (const [k, kink] of kinks.entries()) cells.push(Array.from(await out[k + 1]!.readFloat(), kink.cell));
  for (const t of [...out, ...inputs]) t.dispose();
  return { f, cells };
}

interface Check {
  label: string;
  eps: number;
  /** directional derivatives along the applied Δ / 2ε */
  num: number;
  auto: number;
  /** the derivative below which the numerical side is not precise to 1e-2 (rounding of f) */
  tiny: number;
}

/** f(θ+εv) − f(θ−εv) and the autograd prediction ⟨∇f, Δ⟩ of it for the applied
 * Δ = f32(θ+εv) − f32(θ−εv), with the kink cells at both ends. */
async function centralDifference(d: Device, g: Graph, grads: Float32Array[], v: Float32Array[], eps: number) {
  const plus = g.params.map((p, k) => Float32Array.from(p.data, (x, i) => x + eps * v[k]![i]!));
  const minus = g.params.map((p, k) => Float32Array.from(p.data, (x, i) => x - eps * v[k]![i]!));
  const a = await evaluate(d, g, plus);
  const b = await evaluate(d, g, minus);
  let auto = 0;
  for (let k = 0; k < grads.length; k++)
    for (let i = 0; i < grads[k]!.length; i++) auto += grads[k]![i]! * (plus[k]![i]! - minus[k]![i]!);
  return { num: a.f - b.f, auto, cells: [a.cells, b.cells], size: Math.max(Math.abs(a.f), Math.abs(b.f)) };
}

const sameCells = (a: number[][], b: number[][]) => a.every((cs, k) => cs.every((c, i) => c === b[k]![i]));

/** Compares the two directional derivatives along direction v (one array per param; all zeros
 * for a param leaves it fixed). The numerical one is the Richardson extrapolation
 * (4 D(ε/2) − D(ε)) / 3 of central differences, which cancels their O(ε²) error and leaves
 * O(ε⁴); the autograd side goes through the same combination of the applied perturbations. */
async function directional(d: Device, g: Graph, grads: Float32Array[], v: Float32Array[], label: string): Promise<Check> {
  for (let eps = g.eps ?? EPS, tries = 0; tries < 4; eps /= 4, tries++) {
    const whole = await centralDifference(d, g, grads, v, eps);
    const half = await centralDifference(d, g, grads, v, eps / 2);
    const cells = [...whole.cells, ...half.cells];
    if (!cells.every((c) => sameCells(c, cells[0]!))) continue; // a kink between θ−εv and θ+εv
    // D(h) = difference / 2h; (4 D(ε/2) − D(ε)) / 3 = (8 diff(ε/2) − diff(ε)) / 6ε
    const combine = (w: number, h: number) => (8 * h - w) / (6 * eps);
    // each f off by u moves the combination by at most (8·2u + 2u) / 6ε = 3u / ε
    const u = 2 * 2 ** -23 * Math.max(whole.size, half.size, 1);
    return { label, eps, num: combine(whole.num, half.num), auto: combine(whole.auto, half.auto), tiny: (3 * u) / eps / REL };
  }
  throw new Error(`${label}: a kink is crossed even at ε = ${(g.eps ?? EPS) / 4 ** 3}`);
}

/** A random direction with, for each param in `which`, the norm of that param (its size / 4 in
 * norm² where the param is all zeros), zeros elsewhere. */
function direction(g: Graph, which: (k: number) => boolean, r: Rng): Float32Array[] {
  return g.params.map((p, k) => {
    if (!which(k)) return new Float32Array(p.data.length);
    const v = uniformF32(p.data.length, r);
    const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));
    const target = norm(p.data) || Math.sqrt(p.data.length) / 2;
    const s = target / (norm(v) || 1);
    return v.map((x) => x * s);
  });
}

/** The derivative along a direction is large enough for the check to reject a gradient 10%
 * off: 0.1 |D| > 1e-2 · max(|D|, tiny). */
const decisive = (c: Check) => Math.max(Math.abs(c.num), Math.abs(c.auto)) > c.tiny / 10;

/** A check along a random direction from `draw`. A draw nearly orthogonal to the gradient (a
 * derivative below tiny / 10, likely for a 1- or 2-element bias) or one that cannot avoid a
 * kink is replaced by the next, up to 3 draws; the choice looks at both sides, so a gradient
 * that is missing (auto ≈ 0, num not) is still chosen and fails. */
async function randomCheck(d: Device, g: Graph, grads: Float32Array[], draw: () => Float32Array[], label: string): Promise<Check> {
  let best: Check | null = null;
  let error: unknown = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const v = draw();
    try {
      const c = await directional(d, g, grads, v, label);
      if (decisive(c)) return c;
      if (!best || Math.abs(c.num) + Math.abs(c.auto) > Math.abs(best.num) + Math.abs(best.auto)) best = c;
    } catch (e) {
      error = e;
    }
  }
  if (best) return best;
  throw error;
}

/** Gradient-checks `g`: one direction per param alone, then `joint` random directions over all
 * params at once. Returns every comparison (the callers assert them). */
async function gradcheck(d: Device, g: Graph, seed: number, joint = 3, tamper?: (grads: Float32Array[]) => void): Promise<Check[]> {
  const grads = await autogradGrads(d, g);
  tamper?.(grads);
  const r = rng(seed);
  const checks: Check[] = [];
  for (let k = 0; k < g.params.length; k++)
    checks.push(await randomCheck(d, g, grads, () => direction(g, (j) => j === k, r), `d/d ${g.params[k]!.name}`));
  for (let j = 0; j < joint; j++) checks.push(await randomCheck(d, g, grads, () => direction(g, () => true, r), `joint direction ${j}`));
  return checks;
}

const describeCheck = (c: Check) =>
  `${c.label}: numerical ${c.num.toPrecision(7)}, autograd ${c.auto.toPrecision(7)} (ε = ${c.eps}, tiny = ${c.tiny.toPrecision(2)})`;

function expectAgree(g: Graph, checks: Check[]): void {
  const bad = checks.filter((c) => !agrees(c.num, c.auto, c.tiny));
  expect(bad.map(describeCheck)).toEqual([]);
  // the directions are generic: no check may pass vacuously on a zero derivative, except along
  // a param whose gradient must vanish, where both sides must (nearly) be zero
  for (const c of checks) {
    const zero = g.zero?.some((name) => c.label === `d/d ${name}`) ?? false;
    if (zero) expect(Math.max(Math.abs(c.num), Math.abs(c.auto)), describeCheck(c)).toBeLessThan(REL * c.tiny);
    else expect(decisive(c), `${describeCheck(c)} is not decisive`).toBe(true);
  }
}

/** Σ x·R for a fixed random R of x's shape: a scalar whose gradient reaches every element. */
function dotFixed(x: Tensor, seed: number): Tensor {
  const r = Tensor.from(x.device, uniformF32(x.size, seed), x.shape);
  return sum(mul(x, r));
}

// ---------------------------------------------------------------------------------------------
// The graphs

/** conv3d → instanceNorm → leakyRelu → conv3d → sigmoid → diceLoss. */
function convNormGraph(): Graph {
  const r = rng(101);
  const [cin, cmid] = [2, 2];
  const sp = [3, 3, 3];
  const target = Float32Array.from({ length: sp[0]! * sp[1]! * sp[2]! }, () => (r() < 0.4 ? 1 : 0));
  return {
    // instance norm subtracts each channel's mean: conv1's bias has no effect on the loss
    zero: ["conv1.bias"],
    // the Dice loss is ~0.5 and its derivatives ~1e-2: a larger step keeps them well above the
    // rounding floor (tiny ∝ 1/ε); Richardson keeps the truncation error small even so
    eps: 3e-2,
    params: [
      param("x", [1, cin, ...sp], r),
      weight("conv1.weight", [cmid, cin, 3, 3, 3], cin * 27, r),
      weight("conv1.bias", [cmid], cin * 27, r),
      // |β| ≥ 1 moves most pre-activations away from leaky_relu's kink, one channel to each side
      { name: "norm.weight", shape: [cmid], data: Float32Array.of(0.7, 0.6) },
      { name: "norm.bias", shape: [cmid], data: Float32Array.of(1.2, -1.1) },
      weight("conv2.weight", [1, cmid, 3, 3, 3], cmid * 27, r),
      weight("conv2.bias", [1], cmid * 27, r),
    ],
    f([x, w1, b1, nw, nb, w2, b2]) {
      const pre = instanceNorm(conv3d(x!, w1!, b1, { padding: 1 }), nw!, nb!);
      const p = sigmoid(conv3d(leakyRelu(pre, 0.2), w2!, b2, { padding: 1 }));
      const loss = diceLoss(p, Tensor.from(x!.device, target, [1, 1, ...sp]));
      return { loss, kinks: [{ t: pre, cell: (v) => (v > 0 ? 1 : 0) }] };
    },
  };
}

/** linear → layerNorm → gelu → softmax(-1) → Σ softmax·R. */
function linearNormGraph(): Graph {
  const r = rng(202);
  const [fin, fout] = [5, 6];
  return {
    params: [
      param("x", [2, 3, fin], r),
      weight("linear.weight", [fout, fin], fin, r),
      weight("linear.bias", [fout], fin, r),
      param("norm.weight", [fout], r, 0.5, 1.5),
      param("norm.bias", [fout], r, -0.5, 0.5),
    ],
    f([x, w, b, nw, nb]) {
      const s = softmax(gelu(layerNorm(linear(x!, w!, b), nw!, nb!)), -1);
      return { loss: dotFixed(s, 203) };
    },
  };
}

/** convLstm2d (all time steps) → conv2d → Σ y·R. */
function convLstmGraph(): Graph {
  const r = rng(303);
  const [n, steps, cin, hidden, h, w, cout] = [1, 3, 2, 2, 4, 4, 2];
  return {
    params: [
      param("x", [n, steps, cin, h, w], r),
      weight("lstm.weight", [4 * hidden, cin + hidden, 3, 3], (cin + hidden) * 9, r),
      weight("lstm.bias", [4 * hidden], (cin + hidden) * 9, r),
      weight("conv.weight", [cout, hidden, 3, 3], hidden * 9, r),
      weight("conv.bias", [cout], hidden * 9, r),
    ],
    f([x, lw, lb, cw, cb]) {
      const hs = convLstm2d(x!, lw!, lb!, { hidden }); // [n, steps, hidden, h, w]
      const y = conv2d(reshape(hs, [n * steps, hidden, h, w]), cw!, cb, { padding: 1 });
      return { loss: dotFixed(y, 304) };
    },
  };
}

/** msDeformAttn3d between linear layers: value = linear(x), attention weights =
 * softmax(linear(q)) per head over levels × points, sampling locations = sigmoid(linear(q)),
 * output → linear → Σ y·R. */
function deformAttnGraph(): Graph {
  const r = rng(404);
  const shapes: SpatialShape3d[] = [
    [2, 3, 3],
    [1, 2, 2],
  ];
  const S = shapes.reduce((s, [a, b, c]) => s + a * b * c, 0);
  const [N, Lq, C, nH, Dh, nP, Cout] = [1, 3, 4, 2, 2, 2, 3];
  const nL = shapes.length;
  // the voxel cell of each sampling coordinate (x → W, y → H, z → D, align_corners=False):
  // trilinear sampling is smooth in the location only inside one cell
  const cell = (loc: number, i: number) => {
    const level = shapes[Math.floor(i / (3 * nP)) % nL]!;
    const size = level[2 - (i % 3)]!;
    return Math.floor(loc * size - 0.5);
  };
  return {
    params: [
      param("x", [N, S, C], r),
      param("q", [N, Lq, C], r),
      weight("value_proj.weight", [nH * Dh, C], C, r),
      weight("value_proj.bias", [nH * Dh], C, r),
      weight("attn_proj.weight", [nH * nL * nP, C], C, r),
      weight("attn_proj.bias", [nH * nL * nP], C, r),
      param("loc_proj.weight", [nH * nL * nP * 3, C], r, -1.5, 1.5),
      param("loc_proj.bias", [nH * nL * nP * 3], r),
      weight("out_proj.weight", [Cout, nH * Dh], nH * Dh, r),
      weight("out_proj.bias", [Cout], nH * Dh, r),
    ],
    f([x, q, vw, vb, aw, ab, lw, lb, ow, ob]) {
      const value = reshape(linear(x!, vw!, vb), [N, S, nH, Dh]);
      const attn = reshape(softmax(reshape(linear(q!, aw!, ab), [N, Lq, nH, nL * nP]), -1), [N, Lq, nH, nL, nP]);
      const loc = reshape(sigmoid(linear(q!, lw!, lb)), [N, Lq, nH, nL, nP, 3]);
      const y = linear(msDeformAttn3d(value, shapes, loc, attn), ow!, ob);
      return { loss: dotFixed(y, 405), kinks: [{ t: loc, cell }] };
    },
  };
}

/** An identity op whose recorded backward is deliberately wrong (1.1 × the true gradient). */
function wrongIdentity(x: Tensor): Tensor {
  const y = noGrad(() => mulScalar(x, 1));
  return record("wrong_identity", y, [x], [], (dy) => [noGrad(() => mulScalar(dy, 1.1))]);
}

// ---------------------------------------------------------------------------------------------

describe("gradient checks of composite graphs (central differences vs autograd)", () => {
  const dev = useDevice();

  it("the criterion rejects a gradient 10% off, and accepts the exact one", () => {
    const tiny = 1e-3;
    expect(agrees(1, 1, tiny)).toBe(true);
    expect(agrees(1, 1.005, tiny)).toBe(true);
    expect(agrees(1, 1.1, tiny)).toBe(false);
    expect(agrees(-2.5, -2.5 * 1.1, tiny)).toBe(false);
    expect(agrees(1, -1, tiny)).toBe(false);
    expect(agrees(NaN, NaN, tiny)).toBe(false);
    expect(agrees(0, 0, tiny)).toBe(true);
    // below tiny the allowed error is 1e-2 · tiny
    expect(agrees(1e-4, 1.1e-4, tiny)).toBe(true);
    expect(agrees(1e-4, 1.2e-4, tiny)).toBe(false);
  });

  it("the harness detects a wrong gradient in a graph (1.1 × autograd, and a wrong backward rule)", async () => {
    const g = linearNormGraph();
    // the true gradients pass, 1.1 × them fails every check
    const scaled = await gradcheck(dev(), g, 11, 1, (grads) => grads.forEach((gr) => gr.forEach((x, i) => (gr[i] = 1.1 * x))));
    expect(scaled.every((c) => !agrees(c.num, c.auto, c.tiny))).toBe(true);
    expect(scaled.every((c) => agrees(c.num, c.auto / 1.1, c.tiny))).toBe(true);
    // an op with a wrong backward in the middle of the graph fails the checks of what is below it
    const broken: Graph = {
      params: g.params,
      f([x, w, b, nw, nb]) {
        const s = softmax(gelu(layerNorm(wrongIdentity(linear(x!, w!, b)), nw!, nb!)), -1);
        return { loss: dotFixed(s, 203) };
      },
    };
    const checks = await gradcheck(dev(), broken, 12, 1);
    const below = checks.filter((c) => c.label.startsWith("d/d x") || c.label.startsWith("d/d linear"));
    expect(below.length).toBe(3);
    for (const c of below) expect(agrees(c.num, c.auto, c.tiny), describeCheck(c)).toBe(false);
    // the LN affine is above the wrong op: its gradient is still right
    for (const c of checks.filter((c) => c.label.startsWith("d/d norm"))) expect(agrees(c.num, c.auto, c.tiny), describeCheck(c)).toBe(true);
  });

  it("conv3d → instanceNorm → leakyRelu → conv3d → sigmoid → diceLoss", async () => {
    const g = convNormGraph();
    expectAgree(g, await gradcheck(dev(), g, 1));
  });

  it("linear → layerNorm → gelu → softmax(-1) → Σ softmax·R", async () => {
    const g = linearNormGraph();
    expectAgree(g, await gradcheck(dev(), g, 2));
  });

  it("convLstm2d → conv2d → Σ y·R", async () => {
    const g = convLstmGraph();
    expectAgree(g, await gradcheck(dev(), g, 3));
  });

  it("linear → msDeformAttn3d (softmax weights, sigmoid locations) → linear → Σ y·R", async () => {
    const g = deformAttnGraph();
    expectAgree(g, await gradcheck(dev(), g, 4));
  });
});

// Gradient checks on composite graphs (issue 4): the directional derivative of a scalar graph
// f(θ) along random directions v, from the autograd gradient (GPU backward, read back) as
// Σ⟨∇f, v⟩, must agree with the central difference (f(θ+εv) − f(θ−εv)) / 2ε of the GPU
// forward in f32, within 1e-2 relative.
//
// Details that keep the comparison honest in f32:
// - θ ± εv are rounded to f32 before the GPU sees them, so the perturbation actually applied is
//   Δ = f32(θ+εv) − f32(θ−εv), not 2εv. The autograd side uses that Δ exactly (Σ⟨∇f, Δ⟩), so
//   input rounding does not enter the comparison.
// - ε is relative: each tensor's direction has the norm of the tensor itself, and ε = 1e-2.
//   The truncation error of the central difference is O(ε²) ≈ 1e-4 relative, the rounding
//   error of an f32 forward of O(1) values O(1e-7 / ε) ≈ 1e-5 relative.
// - Kinks: a graph lists the tensors whose elements must stay in one smooth piece (the
//   argument of leaky_relu, the voxel cell of each deformable-attention sample). If any
//   element changes piece between θ+εv and θ−εv, ε is divided by 4 and the check is redone.
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
  /** the scalar f from one tensor per param (same order), and the tensors that must not cross a kink */
  f(ts: Tensor[]): { loss: Tensor; kinks?: Kink[] };
}

const REL = 1e-2;
/** directional derivatives below this (in units of the normalised direction) count as zero */
const TINY = 1e-6;
const EPS = 1e-2;

/** The criterion of the issue: |num − auto| ≤ 1e-2 · max(|num|, |auto|, tiny). */
function agrees(num: number, auto: number, rel = REL, tiny = TINY): boolean {
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
}

/** Compares the two directional derivatives along direction v (one array per param; all zeros
 * for a param leaves it fixed). `grads` may be altered by the caller to test the harness. */
async function directional(d: Device, g: Graph, grads: Float32Array[], v: Float32Array[], label: string): Promise<Check> {
  for (let eps = EPS, tries = 0; tries < 4; eps /= 4, tries++) {
    const plus = g.params.map((p, k) => Float32Array.from(p.data, (x, i) => x + eps * v[k]![i]!));
    const minus = g.params.map((p, k) => Float32Array.from(p.data, (x, i) => x - eps * v[k]![i]!));
    const a = await evaluate(d, g, plus);
    const b = await evaluate(d, g, minus);
    const crossed = a.cells.some((cs, k) => cs.some((c, i) => c !== b.cells[k]![i]));
    if (crossed) continue;
    let auto = 0;
    for (let k = 0; k < grads.length; k++)
      for (let i = 0; i < grads[k]!.length; i++) auto += grads[k]![i]! * (plus[k]![i]! - minus[k]![i]!);
    return { label, eps, num: (a.f - b.f) / (2 * eps), auto: auto / (2 * eps) };
  }
  throw new Error(`${label}: a kink is crossed even at ε = ${EPS / 4 ** 3}`);
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

/** Gradient-checks `g`: one direction per param alone, then `joint` random directions over all
 * params at once. Returns every comparison (the callers assert them). */
async function gradcheck(d: Device, g: Graph, seed: number, joint = 3, tamper?: (grads: Float32Array[]) => void): Promise<Check[]> {
  const grads = await autogradGrads(d, g);
  tamper?.(grads);
  const r = rng(seed);
  const checks: Check[] = [];
  for (let k = 0; k < g.params.length; k++)
    checks.push(await directional(d, g, grads, direction(g, (j) => j === k, r), `d/d ${g.params[k]!.name}`));
  for (let j = 0; j < joint; j++) checks.push(await directional(d, g, grads, direction(g, () => true, r), `joint direction ${j}`));
  return checks;
}

const describeCheck = (c: Check) => `${c.label}: numerical ${c.num.toPrecision(7)}, autograd ${c.auto.toPrecision(7)} (ε = ${c.eps})`;

function expectAgree(checks: Check[]): void {
  if (process.env.GRADCHECK_LOG) for (const c of checks) console.log(describeCheck(c), Math.abs(c.num - c.auto) / Math.max(Math.abs(c.num), Math.abs(c.auto)));
  const bad = checks.filter((c) => !agrees(c.num, c.auto));
  expect(bad.map(describeCheck)).toEqual([]);
  // the directions are generic: no check may pass vacuously on a zero derivative
  for (const c of checks) expect(Math.max(Math.abs(c.num), Math.abs(c.auto))).toBeGreaterThan(100 * TINY);
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
  const [cin, cmid] = [2, 3];
  const sp = [4, 4, 4];
  const target = Float32Array.from({ length: sp[0]! * sp[1]! * sp[2]! }, () => (r() < 0.4 ? 1 : 0));
  return {
    params: [
      param("x", [1, cin, ...sp], r),
      weight("conv1.weight", [cmid, cin, 3, 3, 3], cin * 27, r),
      weight("conv1.bias", [cmid], cin * 27, r),
      param("norm.weight", [cmid], r, 0.5, 1.5),
      param("norm.bias", [cmid], r, -0.5, 0.5),
      weight("conv2.weight", [1, cmid, 3, 3, 3], cmid * 27, r),
      weight("conv2.bias", [1], cmid * 27, r),
    ],
    f([x, w1, b1, nw, nb, w2, b2]) {
      const pre = instanceNorm(conv3d(x!, w1!, b1, { padding: 1 }), nw!, nb!);
      const p = sigmoid(conv3d(leakyRelu(pre, 0.1), w2!, b2, { padding: 1 }));
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
    expect(agrees(1, 1)).toBe(true);
    expect(agrees(1, 1.005)).toBe(true);
    expect(agrees(1, 1.1)).toBe(false);
    expect(agrees(-2.5, -2.5 * 1.1)).toBe(false);
    expect(agrees(1, -1)).toBe(false);
    expect(agrees(NaN, NaN)).toBe(false);
    expect(agrees(0, 0)).toBe(true);
  });

  it("the harness detects a wrong gradient in a graph (1.1 × autograd, and a wrong backward rule)", async () => {
    const g = linearNormGraph();
    // the true gradients pass, 1.1 × them fails every check
    const scaled = await gradcheck(dev(), g, 11, 1, (grads) => grads.forEach((gr) => gr.forEach((x, i) => (gr[i] = 1.1 * x))));
    expect(scaled.every((c) => !agrees(c.num, c.auto))).toBe(true);
    expect(scaled.every((c) => agrees(c.num, c.auto / 1.1))).toBe(true);
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
    for (const c of below) expect(agrees(c.num, c.auto), describeCheck(c)).toBe(false);
    // the LN affine is above the wrong op: its gradient is still right
    for (const c of checks.filter((c) => c.label.startsWith("d/d norm"))) expect(agrees(c.num, c.auto), describeCheck(c)).toBe(true);
  });

  it("conv3d → instanceNorm → leakyRelu → conv3d → sigmoid → diceLoss", async () => {
    expectAgree(await gradcheck(dev(), convNormGraph(), 1));
  });

  it("linear → layerNorm → gelu → softmax(-1) → Σ softmax·R", async () => {
    expectAgree(await gradcheck(dev(), linearNormGraph(), 2));
  });

  it("convLstm2d → conv2d → Σ y·R", async () => {
    expectAgree(await gradcheck(dev(), convLstmGraph(), 3));
  });

  it("linear → msDeformAttn3d (softmax weights, sigmoid locations) → linear → Σ y·R", async () => {
    expectAgree(await gradcheck(dev(), deformAttnGraph(), 4));
  });
});

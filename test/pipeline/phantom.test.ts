import { describe, expect, it } from "vitest";
import { makePhantom, PHANTOM_HU, type Phantom } from "../../src/pipeline/phantom.ts";
import { connectedComponents, distanceTransform, erode6 } from "../../src/pipeline/masks/index.ts";
import { PulmoError } from "../../src/runtime/errors.ts";

const count = (m: Uint8Array): number => m.reduce((a, b) => a + b, 0);

function valuesIn(p: Phantom, mask: Uint8Array, erodeTimes = 1): Float64Array {
  let m = mask;
  for (let e = 0; e < erodeTimes; e++) m = erode6({ data: m, shape: p.shape }).data;
  const out: number[] = [];
  for (let i = 0; i < m.length; i++) if (m[i]) out.push(p.ct[i]!);
  return Float64Array.from(out).sort();
}
const median = (v: Float64Array): number => v[Math.floor(v.length / 2)]!;
const std = (v: Float64Array): number => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
};

const phantoms = new Map<number, Phantom>();
const phantom = (seed: number): Phantom => {
  if (!phantoms.has(seed)) phantoms.set(seed, makePhantom({ seed }));
  return phantoms.get(seed)!;
};
const SEEDS = [1, 2, 3, 4, 5, 6];

describe("makePhantom", () => {
  it("is deterministic: the same options give identical bytes, another seed differs", () => {
    const a = makePhantom({ seed: 7, shape: [20, 64, 64], spacing: [4, 4.5, 4.5] });
    const b = makePhantom({ seed: 7, shape: [20, 64, 64], spacing: [4, 4.5, 4.5] });
    expect(Buffer.from(a.ct.buffer).equals(Buffer.from(b.ct.buffer))).toBe(true);
    for (const k of Object.keys(a.masks) as (keyof Phantom["masks"])[]) expect(Buffer.from(a.masks[k]).equals(Buffer.from(b.masks[k]))).toBe(true);
    expect(a.tumours).toEqual(b.tumours);
    const c = makePhantom({ seed: 8, shape: [20, 64, 64], spacing: [4, 4.5, 4.5] });
    expect(Buffer.from(a.ct.buffer).equals(Buffer.from(c.ct.buffer))).toBe(false);
  });

  it("has the default grid and integer HU within the CT range", () => {
    const p = phantom(1);
    expect(p.shape).toEqual([48, 128, 128]);
    expect(p.spacing).toEqual([3, 2.4, 2.4]);
    expect(p.ct.length).toBe(48 * 128 * 128);
    let min = Infinity, max = -Infinity, integers = true;
    for (const v of p.ct) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      if (!Number.isInteger(v)) integers = false;
    }
    expect(integers).toBe(true);
    expect(min).toBeGreaterThanOrEqual(-1024);
    expect(max).toBeLessThanOrEqual(3071);
  });

  it("gives each tissue its HU (medians of eroded masks) and ≈20 HU noise", () => {
    const p = phantom(1);
    const n = p.ct.length;
    const outside = new Uint8Array(n).map((_, i) => 1 - p.masks.body[i]!);
    expect(median(valuesIn(p, outside, 2))).toBeGreaterThan(-1024);
    expect(median(valuesIn(p, outside, 2))).toBeLessThan(-980);
    const lung = median(valuesIn(p, p.masks.lungs, 1));
    expect(lung).toBeGreaterThan(-900);
    expect(lung).toBeLessThan(-780);
    const heart = valuesIn(p, p.masks.heart, 2);
    expect(median(heart)).toBeGreaterThan(20);
    expect(median(heart)).toBeLessThan(60);
    expect(std(heart)).toBeGreaterThan(15);
    expect(std(heart)).toBeLessThan(30);
    const bone = median(valuesIn(p, p.masks.bone, 0));
    expect(bone).toBeGreaterThanOrEqual(400);
    expect(bone).toBeLessThanOrEqual(1200);
    expect(valuesIn(p, p.masks.bone, 1).at(-1)).toBeGreaterThan(900); // cortical bone
    const tumour = median(valuesIn(p, p.masks.gtv, 1));
    expect(tumour).toBeGreaterThanOrEqual(PHANTOM_HU.tumour[0]);
    expect(tumour).toBeLessThanOrEqual(PHANTOM_HU.tumour[1]);
    // fat: body voxels in the outer ring between −150 and −50 HU are plentiful
    let fat = 0;
    for (let i = 0; i < n; i++) if (p.masks.body[i] && p.ct[i]! > -150 && p.ct[i]! < -50) fat++;
    expect(fat).toBeGreaterThan(0.02 * count(p.masks.body));
  });

  it("reports tumour volumes equal to their GTV voxels, each tumour one component around its centre", () => {
    for (const seed of SEEDS) {
      const p = phantom(seed);
      expect(p.tumours.length).toBeGreaterThanOrEqual(1);
      expect(p.tumours.length).toBeLessThanOrEqual(3);
      const voxelCc = (p.spacing[0] * p.spacing[1] * p.spacing[2]) / 1000;
      const total = p.tumours.reduce((a, t) => a + t.volumeCc, 0);
      expect(total).toBeCloseTo(count(p.masks.gtv) * voxelCc, 9);
      const comps = connectedComponents({ data: p.masks.gtv, shape: p.shape }, 26);
      const [, H, W] = p.shape;
      for (const t of p.tumours) {
        const idx = (t.centre[0] * H + t.centre[1]) * W + t.centre[2];
        expect(p.masks.gtv[idx]).toBe(1);
        const label = comps.labels[idx]!;
        const compCc = comps.sizes[label - 1]! * voxelCc;
        // a tumour clipped by the lung outline may rarely leave a detached sliver
        expect(compCc).toBeLessThanOrEqual(t.volumeCc + 1e-9);
        expect(compCc).toBeGreaterThanOrEqual(0.9 * t.volumeCc);
        expect(t.volumeCc).toBeLessThanOrEqual(650);
      }
    }
  });

  it("puts the tumours inside the body and lungs, some touching the chest wall or mediastinum", () => {
    const touching = new Set<string>();
    for (const seed of SEEDS) {
      const p = phantom(seed);
      const [D, H, W] = p.shape;
      for (let i = 0; i < p.ct.length; i++) if (p.masks.gtv[i]) {
        expect(p.masks.body[i]).toBe(1);
        expect(p.masks.heart[i] | p.masks.bone[i]! | p.masks.oesophagus[i]! | p.masks.lungs[i]!).toBe(0);
      }
      for (const t of p.tumours) {
        if (t.site === "lung") continue;
        // a GTV voxel of this tumour's component next to soft tissue that is neither lung nor tumour
        const comps = connectedComponents({ data: p.masks.gtv, shape: p.shape }, 26);
        const label = comps.labels[(t.centre[0] * H + t.centre[1]) * W + t.centre[2]]!;
        let touches = false;
        for (let k = 1; k < D - 1 && !touches; k++) for (let j = 1; j < H - 1 && !touches; j++) for (let i = 1; i < W - 1; i++) {
          const idx = (k * H + j) * W + i;
          if (comps.labels[idx] !== label) continue;
          for (const o of [1, -1, W, -W, H * W, -H * W]) {
            const q = idx + o;
            if (!p.masks.gtv[q] && !p.masks.lungs[q] && p.masks.body[q]) touches = true;
          }
          if (touches) break;
        }
        expect(touches, `seed ${seed} ${t.site} tumour touches non-lung tissue`).toBe(true);
        touching.add(t.site);
      }
    }
    expect([...touching].sort()).toEqual(["chest wall", "mediastinum"]);
  });

  it("makes iGTV ⊇ GTV (with breathing motion), CTV ⊇ GTV within the margin and outside heart, oesophagus and bone", () => {
    for (const seed of SEEDS) {
      const p = phantom(seed);
      expect(p.ctvMarginMm).toBeGreaterThanOrEqual(5);
      expect(p.ctvMarginMm).toBeLessThanOrEqual(8);
      const d = distanceTransform({ data: p.masks.gtv, shape: p.shape }, p.spacing);
      let igtvExtra = 0, ctvExtra = 0;
      for (let i = 0; i < p.ct.length; i++) {
        if (p.masks.gtv[i]) {
          expect(p.masks.igtv[i]).toBe(1);
          expect(p.masks.ctv[i]).toBe(1);
        }
        if (p.masks.igtv[i] && !p.masks.gtv[i]) igtvExtra++;
        if (p.masks.ctv[i]) {
          if (!p.masks.gtv[i]) ctvExtra++;
          expect(d[i]).toBeLessThanOrEqual(p.ctvMarginMm);
          expect(p.masks.heart[i]! | p.masks.oesophagus[i]! | p.masks.bone[i]!).toBe(0);
          expect(p.masks.body[i]).toBe(1);
        }
      }
      expect(igtvExtra).toBeGreaterThan(0);
      expect(ctvExtra).toBeGreaterThan(0);
      // cranio-caudal motion dominates
      for (const t of p.tumours) expect(Math.abs(t.motionMm[0])).toBeGreaterThan(Math.abs(t.motionMm[1]) + Math.abs(t.motionMm[2]));
    }
  });

  it("keeps iGTV = GTV with one breathing phase", () => {
    const p = makePhantom({ seed: 3, shape: [20, 64, 64], spacing: [4, 4.5, 4.5], breathingPhases: 1 });
    expect(Buffer.from(p.masks.igtv).equals(Buffer.from(p.masks.gtv))).toBe(true);
  });

  it("samples the same anatomy (in mm) on any grid, anisotropic included", () => {
    const coarse = makePhantom({ seed: 2, shape: [24, 64, 64], spacing: [6, 4.8, 4.8], tumours: 2 });
    const fine = makePhantom({ seed: 2, shape: [48, 128, 128], spacing: [3, 2.4, 2.4], tumours: 2 });
    const aniso = makePhantom({ seed: 2, shape: [58, 342, 342], spacing: [2.5, 0.9, 0.9], tumours: 1, breathingPhases: 2 });
    const cc = (p: Phantom, m: Uint8Array) => (count(m) * p.spacing[0] * p.spacing[1] * p.spacing[2]) / 1000;
    for (const k of ["body", "lungs", "heart", "bone"] as const) {
      expect(cc(coarse, coarse.masks[k]) / cc(fine, fine.masks[k])).toBeGreaterThan(0.85);
      expect(cc(coarse, coarse.masks[k]) / cc(fine, fine.masks[k])).toBeLessThan(1.15);
    }
    // 58 × 2.5 = 145 mm of the 144 mm-long default field of view, sampled finely in plane
    expect(cc(aniso, aniso.masks.lungs) / cc(fine, fine.masks.lungs)).toBeGreaterThan(0.9);
    expect(cc(aniso, aniso.masks.lungs) / cc(fine, fine.masks.lungs)).toBeLessThan(1.1);
    expect(coarse.tumours.length).toBe(2);
    expect(aniso.tumours.length).toBe(1);
    expect(count(aniso.masks.gtv)).toBeGreaterThan(0);
  }, 60_000);

  it("rejects bad options and a field of view without room for tumours with PulmoErrors", () => {
    expect(() => makePhantom({ shape: [0, 10, 10] })).toThrow(/shape must be/);
    expect(() => makePhantom({ shape: [4, 4] as unknown as [number, number, number] })).toThrow(PulmoError);
    expect(() => makePhantom({ spacing: [1, -1, 1] })).toThrow(/spacing must be/);
    expect(() => makePhantom({ seed: 1.5 })).toThrow(/seed must be an integer/);
    expect(() => makePhantom({ tumours: 4 })).toThrow(/tumours must be 1, 2 or 3/);
    expect(() => makePhantom({ breathingPhases: 0 })).toThrow(/breathingPhases/);
  });

  it("puts the tumour in the mediastinum when the field of view is too small to show the lungs", () => {
    for (const [shape, spacing] of [[[8, 16, 16], [3, 2.4, 2.4]], [[4, 8, 8], [1, 1, 1]]] as const) {
      const p = makePhantom({ shape: [...shape], spacing: [...spacing], tumours: 2 });
      expect(p.tumours.length).toBe(2);
      if (shape[0] === 4) {
        expect(count(p.masks.lungs)).toBe(0);
        expect(p.tumours.map((t) => t.site)).toEqual(["mediastinum", "mediastinum"]);
      }
      for (let i = 0; i < p.ct.length; i++) {
        if (p.masks.gtv[i]) {
          expect(p.masks.body[i]! & (1 - p.masks.bone[i]!)).toBe(1);
          expect(p.masks.ctv[i]).toBe(1);
          expect(p.masks.igtv[i]).toBe(1);
        }
        if (p.masks.ctv[i]) expect(p.masks.heart[i]! | p.masks.oesophagus[i]! | p.masks.bone[i]!).toBe(0);
      }
      expect(p.tumours.every((t) => t.volumeCc > 0)).toBe(true);
    }
  });
});

// Seeded synthetic chest-CT phantom: anatomy, HU values, tumours and their GTV/iGTV/CTV masks.
// Pure TypeScript (browser-safe). Anatomy is defined in millimetres, so any grid shape and
// spacing samples the same body. Conventions and the HU table: docs/demo.md.
//
// Coordinates: a voxel (k, j, i) of a [D, H, W] grid has its centre at
//   x = (i + 0.5)·dx − W·dx/2   (patient left, +)
//   y = (j + 0.5)·dy − H·dy/2   (posterior, +)
//   z = (k + 0.5)·dz − D·dz/2   (superior, +)
// i.e. DICOM's LPS axes with the origin at the centre of the field of view.
import { PulmoError } from "../runtime/errors.ts";
import { rng as mulberry32 } from "../graph/fit.ts";
import { distanceTransform } from "./masks/edt.ts";
import { expandMargin } from "./masks/morphology.ts";

export interface PhantomOptions {
  /** any integer (default 1) */
  seed?: number;
  /** [D, H, W] voxels (default [48, 128, 128]) */
  shape?: [number, number, number];
  /** voxel size in mm [dz, dy, dx] (default [3, 2.4, 2.4]) */
  spacing?: [number, number, number];
  /** number of tumours, 1..3 (default: drawn from the seed) */
  tumours?: number;
  /** 4DCT phases whose GTVs make up the iGTV (default 10; 1 gives iGTV = GTV) */
  breathingPhases?: number;
}

export interface PhantomTumour {
  /** centre voxel [z, y, x] (index of the main lobe's centre) */
  centre: [number, number, number];
  /** volume of this tumour's GTV voxels, cm³ */
  volumeCc: number;
  site: "lung" | "chest wall" | "mediastinum";
  /** peak breathing displacement [dz, dy, dx] in mm (phase 0, the CT's, is at rest) */
  motionMm: [number, number, number];
}

export interface Phantom {
  /** HU (integers, clamped to [−1024, 3071]), [D, H, W] in C order */
  ct: Float32Array;
  shape: [number, number, number];
  spacing: [number, number, number];
  /** 0/1 per voxel on the CT's grid */
  masks: { body: Uint8Array; lungs: Uint8Array; heart: Uint8Array; oesophagus: Uint8Array; bone: Uint8Array; gtv: Uint8Array; igtv: Uint8Array; ctv: Uint8Array };
  tumours: PhantomTumour[];
  /** the GTV → CTV expansion used, mm (drawn in [5, 8]) */
  ctvMarginMm: number;
}

export const PHANTOM_DEFAULTS = { seed: 1, shape: [48, 128, 128], spacing: [3, 2.4, 2.4], breathingPhases: 10 } as const;

/** Nominal HU of each tissue before texture, partial-volume blur and noise. */
export const PHANTOM_HU = {
  air: -1000,
  lung: -850,
  fat: -100,
  softTissue: 40,
  blood: 40,
  oesophagus: 45,
  cancellousBone: 450,
  corticalBone: 1100,
  disc: 80,
  csf: 15,
  /** each tumour draws a base in [20, 45]; with texture it stays within [0, 60] */
  tumour: [0, 60],
} as const;

/** Standard deviation of the added Gaussian noise, HU. */
export const PHANTOM_NOISE_HU = 20;

const enum L {
  Air = 0,
  Fat,
  Soft,
  Lung,
  Vessel,
  Heart,
  Oesophagus,
  Aorta,
  Airway,
  Cancellous,
  Cortical,
  Disc,
  Csf,
  Tumour,
}

type Vec3 = [number, number, number]; // [z, y, x] in mm

interface Lobe {
  offset: Vec3;
  radius: number;
}

/** Where a tumour may lie (and is clipped to): the lungs, or (small fields of view) the body but bone. */
type Region = "lung" | "body";

function inRegion(region: Region, l: number): boolean {
  if (region === "lung") return l === L.Lung || l === L.Vessel || l === L.Tumour;
  return l !== L.Air && l !== L.Cancellous && l !== L.Cortical;
}

interface TumourShape {
  centre: Vec3;
  lobes: Lobe[]; // lobes[0] is the main sphere at offset 0
  extent: number;
  region: Region;
}

interface Grid {
  shape: [number, number, number];
  spacing: [number, number, number];
}

function checkOptions(o: PhantomOptions): { seed: number; grid: Grid; tumours: number | undefined; phases: number } {
  const seed = o.seed ?? PHANTOM_DEFAULTS.seed;
  if (!Number.isSafeInteger(seed)) throw new PulmoError(`makePhantom: seed must be an integer, got ${o.seed}`);
  const shape = o.shape ?? [...PHANTOM_DEFAULTS.shape];
  if (!Array.isArray(shape) || shape.length !== 3 || shape.some((s) => !Number.isSafeInteger(s) || s < 1))
    throw new PulmoError(`makePhantom: shape must be [D, H, W] of positive integers, got ${JSON.stringify(o.shape)}`);
  if (shape[0] * shape[1] * shape[2] > 2 ** 28) throw new PulmoError(`makePhantom: shape ${JSON.stringify(shape)} has more than 2^28 voxels`);
  const spacing = o.spacing ?? [...PHANTOM_DEFAULTS.spacing];
  if (!Array.isArray(spacing) || spacing.length !== 3 || spacing.some((s) => !(Number.isFinite(s) && s > 0)))
    throw new PulmoError(`makePhantom: spacing must be three positive finite mm sizes [dz, dy, dx], got ${JSON.stringify(o.spacing)}`);
  const tumours = o.tumours;
  if (tumours !== undefined && !(Number.isInteger(tumours) && tumours >= 1 && tumours <= 3))
    throw new PulmoError(`makePhantom: tumours must be 1, 2 or 3, got ${tumours}`);
  const phases = o.breathingPhases ?? PHANTOM_DEFAULTS.breathingPhases;
  if (!(Number.isInteger(phases) && phases >= 1 && phases <= 100))
    throw new PulmoError(`makePhantom: breathingPhases must be an integer in 1..100, got ${o.breathingPhases}`);
  return { seed, grid: { shape: [shape[0], shape[1], shape[2]], spacing: [spacing[0], spacing[1], spacing[2]] }, tumours, phases };
}

/** An independent generator per purpose, so e.g. the noise does not change when a tumour does. */
function stream(seed: number, purpose: number): () => number {
  return mulberry32(Math.imul(seed ^ 0x27d4eb2d, 0x9e3779b1) ^ Math.imul(purpose + 1, 0x85ebca6b));
}

const uniform = (r: () => number, lo: number, hi: number): number => lo + (hi - lo) * r();

function centreMm(g: Grid, axis: number, index: number): number {
  return (index + 0.5) * g.spacing[axis]! - (g.shape[axis]! * g.spacing[axis]!) / 2;
}

/** The seeded body variant: an in-plane scale and a cranio-caudal shift of the organs. */
interface Anatomy {
  scale: number;
  zShift: number;
  heart: Vec3; // centre offset jitter, canonical mm
  ribPhase: number;
  discPhase: number;
}

// Canonical anatomy (mm, before the seeded in-plane scale): see docs/demo.md.
const BODY = { a: 140, b: 100, fat: 10 };
const LUNG = { cx: 58, cy: 3, ax: 46, ay: 64, apexZ0: -30, apexAz: 130, diaphragmEdge: -75, diaphragmDome: 30 };
const HEART = { x: 12, y: -22, z: -35, a: 42, b: 40, c: 45 };
const AORTA = { x: 20, y: 34, r: 11 };
const OESOPHAGUS = { x: -6, y: 30, r: 7 };
const TRACHEA = { y: 0, r: 9, carinaZ: 15, bronchusR: 6, bronchusLength: 25 };
const SPINE = { y: 52, r: 16, cortex: 2.5, canalY: 76, canalR: 6, archR: 11, period: 25, disc: 5 };
const RIBS = { a: 118, b: 80, r: 5, marrowR: 3.5, period: 25, slope: 12, anteriorGapX: 40, posteriorGapX: 22 };
/** Fraction of the rib ellipse inside which non-organ soft tissue is mediastinal fat. */
const MEDIASTINAL_FAT_RHO = 0.88;
const STERNUM = { halfWidth: 14, y0: -89, y1: -79, cortex: 2, minZ: -50 };

/** Tissue label of a point (canonical mm), before vessels and tumours. */
function tissueAt(x: number, y: number, z: number, an: Anatomy): L {
  const bx = x / BODY.a, by = y / BODY.b;
  if (bx * bx + by * by > 1) return L.Air;
  const fx = x / (BODY.a - BODY.fat), fy = y / (BODY.b - BODY.fat);
  let t: L = fx * fx + fy * fy > 1 ? L.Fat : L.Soft;
  // lungs: elliptic cross-section tapering to the apex, domed diaphragm below
  const taper = 1 - ((z - LUNG.apexZ0) / LUNG.apexAz) ** 2;
  // mediastinal fat: inside the rib cage above the diaphragm the space between the organs is fat, as
  // in a real chest, so a mediastinal tumour (0–60 HU) stands out against it; the chest wall
  // outside the ribs stays muscle
  if (t === L.Soft && taper > 0 && z > LUNG.diaphragmEdge + an.zShift && Math.hypot(x / RIBS.a, y / RIBS.b) < MEDIASTINAL_FAT_RHO) t = L.Fat;
  if (taper > 0) {
    for (const side of [-1, 1]) {
      const u = (x - side * LUNG.cx) / LUNG.ax, v = (y - LUNG.cy) / LUNG.ay;
      const r2 = (u * u + v * v) / taper;
      if (r2 <= 1 && z > LUNG.diaphragmEdge + an.zShift + LUNG.diaphragmDome * (1 - r2)) t = L.Lung;
    }
  }
  const hx = (x - HEART.x - an.heart[2]) / HEART.a, hy = (y - HEART.y - an.heart[1]) / HEART.b, hz = (z - HEART.z - an.zShift - an.heart[0]) / HEART.c;
  if (hx * hx + hy * hy + hz * hz <= 1) t = L.Heart;
  if ((x - AORTA.x) ** 2 + (y - AORTA.y) ** 2 <= AORTA.r ** 2) t = L.Aorta;
  if ((x - OESOPHAGUS.x) ** 2 + (y - OESOPHAGUS.y) ** 2 <= OESOPHAGUS.r ** 2) t = L.Oesophagus;
  const carina = TRACHEA.carinaZ + an.zShift;
  if (z > carina && x * x + (y - TRACHEA.y) ** 2 <= TRACHEA.r ** 2) t = L.Airway;
  if (z <= carina && z > carina - TRACHEA.bronchusLength) {
    const bxc = (carina - z) * 0.8;
    for (const side of [-1, 1]) if ((x - side * bxc) ** 2 + (y - TRACHEA.y) ** 2 <= TRACHEA.bronchusR ** 2) t = L.Airway;
  }
  // spine: vertebral bodies (cortical shell, cancellous core) separated by discs; canal and arch
  const rs2 = x * x + (y - SPINE.y) ** 2;
  if (rs2 <= SPINE.r ** 2) {
    const m = mod(z - an.discPhase, SPINE.period);
    t = m < SPINE.disc ? L.Disc : rs2 > (SPINE.r - SPINE.cortex) ** 2 ? L.Cortical : L.Cancellous;
  }
  const rc2 = x * x + (y - SPINE.canalY) ** 2;
  if (rc2 <= SPINE.canalR ** 2) t = L.Csf;
  else if (rc2 <= SPINE.archR ** 2) t = L.Cortical;
  if (z > STERNUM.minZ + an.zShift && Math.abs(x) <= STERNUM.halfWidth && y >= STERNUM.y0 && y <= STERNUM.y1) {
    const edge = Math.min(STERNUM.halfWidth - Math.abs(x), y - STERNUM.y0, STERNUM.y1 - y);
    t = edge < STERNUM.cortex ? L.Cortical : L.Cancellous;
  }
  // ribs: tubes along an ellipse inside the chest wall, sloping down anteriorly, one per period
  if ((t === L.Fat || t === L.Soft) && !(y < 0 && Math.abs(x) < RIBS.anteriorGapX) && !(y > 0 && Math.abs(x) < RIBS.posteriorGapX)) {
    const rho = Math.hypot(x / RIBS.a, y / RIBS.b);
    if (rho > 0) {
      const dr = (rho - 1) * (Math.hypot(x, y) / rho);
      const dz = mod(z - RIBS.slope * (y / RIBS.b) - an.ribPhase, RIBS.period) - RIBS.period / 2;
      const d2 = dr * dr + dz * dz;
      if (d2 <= RIBS.r ** 2) t = d2 > RIBS.marrowR ** 2 ? L.Cortical : L.Cancellous;
    }
  }
  return t;
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

/** Labels of every voxel (anatomy only). */
function labelVolume(g: Grid, an: Anatomy): Uint8Array {
  const [D, H, W] = g.shape;
  const out = new Uint8Array(D * H * W);
  for (let k = 0; k < D; k++) {
    const z = centreMm(g, 0, k);
    for (let j = 0; j < H; j++) {
      const y = centreMm(g, 1, j) / an.scale;
      const row = (k * H + j) * W;
      for (let i = 0; i < W; i++) out[row + i] = tissueAt(centreMm(g, 2, i) / an.scale, y, z, an);
    }
  }
  return out;
}

/** Voxel index range [lo, hi) whose centres lie within [cMm − r, cMm + r] along `axis`. */
function indexRange(g: Grid, axis: number, cMm: number, r: number): [number, number] {
  const s = g.spacing[axis]!, n = g.shape[axis]!;
  const origin = -(n * s) / 2;
  const lo = Math.max(0, Math.ceil((cMm - r - origin) / s - 0.5));
  const hi = Math.min(n, Math.floor((cMm + r - origin) / s - 0.5) + 1);
  return [lo, Math.max(lo, hi)];
}

interface Segment {
  a: Vec3;
  b: Vec3;
  ra: number;
  rb: number;
}

/** Branching pulmonary vessel trees from each hilum (real mm). */
function vesselTree(r: () => number, an: Anatomy): Segment[] {
  const segs: Segment[] = [];
  const grow = (p: Vec3, dir: Vec3, radius: number, length: number, depth: number): void => {
    const q: Vec3 = [p[0] + dir[0] * length, p[1] + dir[1] * length, p[2] + dir[2] * length];
    const rEnd = radius * 0.9;
    segs.push({ a: p, b: q, ra: radius, rb: rEnd });
    if (depth >= 7) return;
    const children = depth === 0 ? 3 : 2;
    for (let c = 0; c < children; c++) {
      const jitter: Vec3 = [uniform(r, -1, 1), uniform(r, -1, 1), uniform(r, -1, 1)];
      const d: Vec3 = [dir[0] + 0.9 * jitter[0], dir[1] + 0.9 * jitter[1], dir[2] + 0.9 * jitter[2]];
      if (depth === 0) d[0] += c - 1; // upper, middle, lower trunks
      const n = Math.hypot(d[0], d[1], d[2]) || 1;
      grow(q, [d[0] / n, d[1] / n, d[2] / n], rEnd * 0.9, length * uniform(r, 0.75, 0.9), depth + 1);
    }
  };
  for (const side of [-1, 1]) {
    const hilum: Vec3 = [-10 + an.zShift, 5 * an.scale, side * 14 * an.scale];
    grow(hilum, [0, 0, side], 5, 22 * an.scale, 0);
  }
  return segs;
}

function paintVessels(labels: Uint8Array, g: Grid, segs: Segment[]): void {
  const [, H, W] = g.shape;
  for (const s of segs) {
    const rmax = Math.max(s.ra, s.rb);
    const lo = [0, 1, 2].map((a) => Math.min(s.a[a]!, s.b[a]!));
    const hi = [0, 1, 2].map((a) => Math.max(s.a[a]!, s.b[a]!));
    const ab: Vec3 = [s.b[0] - s.a[0], s.b[1] - s.a[1], s.b[2] - s.a[2]];
    const len2 = ab[0] ** 2 + ab[1] ** 2 + ab[2] ** 2 || 1;
    const [k0, k1] = indexRange(g, 0, (lo[0]! + hi[0]!) / 2, (hi[0]! - lo[0]!) / 2 + rmax);
    const [j0, j1] = indexRange(g, 1, (lo[1]! + hi[1]!) / 2, (hi[1]! - lo[1]!) / 2 + rmax);
    const [i0, i1] = indexRange(g, 2, (lo[2]! + hi[2]!) / 2, (hi[2]! - lo[2]!) / 2 + rmax);
    for (let k = k0; k < k1; k++) {
      const pz = centreMm(g, 0, k) - s.a[0];
      for (let j = j0; j < j1; j++) {
        const py = centreMm(g, 1, j) - s.a[1];
        for (let i = i0; i < i1; i++) {
          const idx = (k * H + j) * W + i;
          if (labels[idx] !== L.Lung) continue;
          const px = centreMm(g, 2, i) - s.a[2];
          const t = Math.min(1, Math.max(0, (pz * ab[0] + py * ab[1] + px * ab[2]) / len2));
          const d2 = (pz - t * ab[0]) ** 2 + (py - t * ab[1]) ** 2 + (px - t * ab[2]) ** 2;
          const rad = s.ra + (s.rb - s.ra) * t;
          if (d2 <= rad * rad) labels[idx] = L.Vessel;
        }
      }
    }
  }
}

/** A lobulated tumour: a main sphere with 2–5 smaller spheres on its surface (offsets in units of
 * the main radius; scaled by `radius`). */
function tumourShape(r: () => number, radius: number): { lobes: Lobe[]; extent: number } {
  const lobes: Lobe[] = [{ offset: [0, 0, 0], radius }];
  const n = 2 + Math.floor(r() * 4);
  for (let l = 0; l < n; l++) {
    let d: Vec3 = [uniform(r, -1, 1), uniform(r, -1, 1), uniform(r, -1, 1)];
    const len = Math.hypot(d[0], d[1], d[2]) || 1;
    const dist = radius * uniform(r, 0.5, 0.8);
    d = [(d[0] / len) * dist, (d[1] / len) * dist, (d[2] / len) * dist];
    lobes.push({ offset: d, radius: radius * uniform(r, 0.35, 0.65) });
  }
  const extent = Math.max(...lobes.map((l) => Math.hypot(...l.offset) + l.radius));
  return { lobes, extent };
}

function scaleShape(s: { lobes: Lobe[]; extent: number }, f: number): { lobes: Lobe[]; extent: number } {
  return { lobes: s.lobes.map((l) => ({ offset: [l.offset[0] * f, l.offset[1] * f, l.offset[2] * f], radius: l.radius * f })), extent: s.extent * f };
}

/** Calls `visit(idx)` for every voxel whose centre is inside the tumour shifted by `shift` mm. */
function forEachTumourVoxel(g: Grid, t: TumourShape, shift: Vec3, visit: (idx: number) => void): void {
  const [, H, W] = g.shape;
  const c: Vec3 = [t.centre[0] + shift[0], t.centre[1] + shift[1], t.centre[2] + shift[2]];
  const [k0, k1] = indexRange(g, 0, c[0], t.extent);
  const [j0, j1] = indexRange(g, 1, c[1], t.extent);
  const [i0, i1] = indexRange(g, 2, c[2], t.extent);
  for (let k = k0; k < k1; k++) {
    const z = centreMm(g, 0, k) - c[0];
    for (let j = j0; j < j1; j++) {
      const y = centreMm(g, 1, j) - c[1];
      for (let i = i0; i < i1; i++) {
        const x = centreMm(g, 2, i) - c[2];
        for (const l of t.lobes) {
          if ((z - l.offset[0]) ** 2 + (y - l.offset[1]) ** 2 + (x - l.offset[2]) ** 2 <= l.radius * l.radius) {
            visit((k * H + j) * W + i);
            break;
          }
        }
      }
    }
  }
}

const SITES: PhantomTumour["site"][] = ["lung", "chest wall", "mediastinum"];

/**
 * Places the tumours: each draws a site and a volume log-uniform in [0.06, 650] cc, then a centre
 * voxel in the lung whose depth (distance to non-lung tissue) suits the site: deep enough to be
 * fully inside for "lung", less than the main radius (so it touches) on the lateral side for
 * "chest wall" and the medial side for "mediastinum". Tumours that do not fit shrink by 15% per
 * try. The tumour is clipped to the lung region when rasterised. A field of view too small to
 * show the lungs (or to hold the tumour in them) gets it in the mediastinum instead: anywhere in
 * the body but bone, clipped to that region (it then displaces whatever tissue is there).
 */
function placeTumours(r: () => number, g: Grid, labels: Uint8Array, count: number, an: Anatomy): { shapes: TumourShape[]; sites: PhantomTumour["site"][] } {
  const [D, H, W] = g.shape;
  const n = D * H * W;
  const depthIn = (region: Region) => {
    const outside = new Uint8Array(n);
    for (let i = 0; i < n; i++) outside[i] = inRegion(region, labels[i]!) ? 0 : 1;
    return distanceTransform({ data: outside, shape: g.shape }, g.spacing);
  };
  const depths: Partial<Record<Region, Float64Array>> = { lung: depthIn("lung") };
  const shapes: TumourShape[] = [];
  const sites: PhantomTumour["site"][] = [];
  const lungCx = LUNG.cx * an.scale;
  // a centre voxel next to the lung outline (depth one voxel) touches it however small the tumour
  const maxSpacing = Math.max(...g.spacing) * 1.001;
  for (let t = 0; t < count; t++) {
    const drawn = SITES[Math.floor(r() * 3)]!;
    const volumeMm3 = 60 * Math.exp(r() * Math.log(650 / 0.06));
    const shape0 = tumourShape(r, Math.cbrt((3 * volumeMm3) / (4 * Math.PI)) / 1.1);
    let placed = false;
    for (let attempt = 0, f = 1; attempt < 80 && !placed; attempt++, f *= 0.85) {
      // the lung first (40 tries), then the fallback region
      const region: Region = attempt < 40 ? "lung" : "body";
      const site = region === "lung" ? drawn : "mediastinum";
      const depth = (depths[region] ??= depthIn(region));
      if (attempt === 40) f = 1;
      const s = scaleShape(shape0, f);
      const R = s.lobes[0]!.radius;
      const candidates: number[] = [];
      for (let k = 0; k < D; k++) {
        const bz = Math.min(k + 0.5, D - k - 0.5) * g.spacing[0];
        if (bz < s.extent) continue;
        const z = centreMm(g, 0, k);
        for (let j = 0; j < H; j++) {
          const by = Math.min(j + 0.5, H - j - 0.5) * g.spacing[1];
          if (by < s.extent) continue;
          const y = centreMm(g, 1, j);
          for (let i = 0; i < W; i++) {
            const bx = Math.min(i + 0.5, W - i - 0.5) * g.spacing[2];
            if (bx < s.extent) continue;
            const idx = (k * H + j) * W + i;
            const dep = depth[idx]!;
            if (dep === 0) continue;
            const x = centreMm(g, 2, i);
            const lateral = Math.abs(x) > lungCx;
            const medial = Math.abs(x) < lungCx - 0.3 * LUNG.ax * an.scale;
            const ok = site === "lung" || region === "body" ? dep >= s.extent + 1 : dep >= Math.min(0.45 * R, maxSpacing) && dep <= Math.max(0.85 * R, maxSpacing) && (site === "chest wall" ? lateral : medial);
            if (!ok) continue;
            // 6 mm apart in the lungs; just apart in a small field of view
            if (shapes.some((o) => Math.hypot(o.centre[0] - z, o.centre[1] - y, o.centre[2] - x) < o.extent + s.extent + (region === "lung" ? 6 : 0.01))) continue;
            candidates.push(idx);
          }
        }
      }
      if (candidates.length === 0) continue;
      const idx = candidates[Math.floor(r() * candidates.length)]!;
      const k = Math.floor(idx / (H * W)), j = Math.floor(idx / W) % H, i = idx % W;
      shapes.push({ centre: [centreMm(g, 0, k), centreMm(g, 1, j), centreMm(g, 2, i)], lobes: s.lobes, extent: s.extent, region });
      sites.push(site);
      placed = true;
    }
    if (!placed)
      throw new PulmoError(
        `makePhantom: no room for tumour ${t + 1} of ${count} in the body of a ${g.shape.join("×")} grid at ${g.spacing.join("×")} mm ` +
          `(field of view ${g.shape.map((s, a) => (s * g.spacing[a]!).toFixed(0)).join("×")} mm); use a larger field of view or fewer tumours`,
      );
  }
  return { shapes, sites };
}

/** Smooth texture in [−1, 1]: a sum of four random plane waves with 15–40 mm wavelengths. */
function textureField(r: () => number): (z: number, y: number, x: number) => number {
  const waves = Array.from({ length: 4 }, () => {
    const d: Vec3 = [uniform(r, -1, 1), uniform(r, -1, 1), uniform(r, -1, 1)];
    const k = (2 * Math.PI) / uniform(r, 15, 40) / (Math.hypot(d[0], d[1], d[2]) || 1);
    return { kz: d[0] * k, ky: d[1] * k, kx: d[2] * k, phase: uniform(r, 0, 2 * Math.PI) };
  });
  return (z, y, x) => {
    let s = 0;
    for (const w of waves) s += Math.cos(w.kz * z + w.ky * y + w.kx * x + w.phase);
    return s / 4;
  };
}

function baseHu(label: number, tex: number, yCanon: number, tumourBase: number): number {
  switch (label) {
    case L.Air: return PHANTOM_HU.air;
    case L.Fat: return PHANTOM_HU.fat + 10 * tex;
    case L.Soft: return PHANTOM_HU.softTissue + 8 * tex;
    // dependent lung is denser (posterior, +y)
    case L.Lung: return PHANTOM_HU.lung + 30 * tex + 25 * (yCanon / LUNG.ay);
    case L.Vessel: case L.Heart: case L.Aorta: return PHANTOM_HU.blood + 5 * tex;
    case L.Oesophagus: return PHANTOM_HU.oesophagus + 5 * tex;
    case L.Airway: return PHANTOM_HU.air;
    case L.Cancellous: return PHANTOM_HU.cancellousBone + 50 * tex;
    case L.Cortical: return PHANTOM_HU.corticalBone + 50 * tex;
    case L.Disc: return PHANTOM_HU.disc;
    case L.Csf: return PHANTOM_HU.csf;
    case L.Tumour: return Math.min(60, Math.max(0, tumourBase + 12 * tex));
    default: return 0;
  }
}

/** Partial-volume blur: separable Gaussian with σ = 0.6 voxel per axis (clamped edges). */
function blur(v: Float32Array, shape: [number, number, number]): void {
  const sigma = 0.6;
  const w = [-2, -1, 0, 1, 2].map((o) => Math.exp(-(o * o) / (2 * sigma * sigma)));
  const sum = w.reduce((a, b) => a + b, 0);
  const kernel = w.map((x) => x / sum);
  const [D, H, W] = shape;
  const strides = [H * W, W, 1];
  for (let axis = 0; axis < 3; axis++) {
    const n = shape[axis]!;
    if (n === 1) continue;
    const stride = strides[axis]!;
    const line = new Float32Array(n);
    const outer = (D * H * W) / n;
    for (let o = 0; o < outer; o++) {
      // base index of line o: decompose over the two other axes
      const base = axis === 2 ? o * W : axis === 1 ? Math.floor(o / W) * H * W + (o % W) : o;
      for (let p = 0; p < n; p++) line[p] = v[base + p * stride]!;
      for (let p = 0; p < n; p++) {
        let s = 0;
        for (let q = -2; q <= 2; q++) s += kernel[q + 2]! * line[Math.min(n - 1, Math.max(0, p + q))]!;
        v[base + p * stride] = s;
      }
    }
  }
}

/** Rounded to an integer HU in the CT range [−1024, 3071] (+ 0 turns −0 into 0). */
function integerHu(v: number): number {
  return Math.min(3071, Math.max(-1024, Math.round(v))) + 0;
}

/**
 * A synthetic chest CT with its structures. Deterministic: the same options give the same bytes.
 * Throws a PulmoError for invalid options or a field of view too small to hold the tumours.
 */
export function makePhantom(options: PhantomOptions = {}): Phantom {
  const { seed, grid: g, tumours, phases } = checkOptions(options);
  const [D, H, W] = g.shape;
  const n = D * H * W;
  const ra = stream(seed, 0);
  const an: Anatomy = {
    scale: uniform(ra, 0.95, 1.05),
    zShift: uniform(ra, -8, 8),
    heart: [uniform(ra, -5, 5), uniform(ra, -4, 4), uniform(ra, -5, 5)],
    ribPhase: uniform(ra, 0, RIBS.period),
    discPhase: uniform(ra, 0, SPINE.period),
  };
  const labels = labelVolume(g, an);
  paintVessels(labels, g, vesselTree(stream(seed, 1), an));

  const rt = stream(seed, 2);
  const count = tumours ?? 1 + Math.floor(rt() * 3);
  const { shapes, sites } = placeTumours(rt, g, labels, count, an);
  const tumourId = new Uint8Array(n); // 1-based
  shapes.forEach((s, t) =>
    forEachTumourVoxel(g, s, [0, 0, 0], (idx) => {
      if (inRegion(s.region, labels[idx]!)) {
        labels[idx] = L.Tumour;
        tumourId[idx] = t + 1;
      }
    }),
  );
  const tumourBase = shapes.map(() => uniform(rt, 20, 45));
  const motion: Vec3[] = shapes.map((s) => {
    // lower tumours move more: 5 mm near the apex up to ~14 mm at the base
    const a = 5 + 7 * Math.min(1, Math.max(0, (30 + an.zShift - s.centre[0]) / 100)) + uniform(rt, 0, 2);
    return [-a, a * uniform(rt, -0.3, 0.3), a * uniform(rt, -0.15, 0.15)];
  });

  const masks = {
    body: new Uint8Array(n),
    lungs: new Uint8Array(n),
    heart: new Uint8Array(n),
    oesophagus: new Uint8Array(n),
    bone: new Uint8Array(n),
    gtv: new Uint8Array(n),
    igtv: new Uint8Array(n),
    ctv: new Uint8Array(n),
  };
  for (let i = 0; i < n; i++) {
    const l = labels[i]!;
    masks.body[i] = l !== L.Air ? 1 : 0;
    masks.lungs[i] = l === L.Lung || l === L.Vessel ? 1 : 0;
    masks.heart[i] = l === L.Heart ? 1 : 0;
    masks.oesophagus[i] = l === L.Oesophagus ? 1 : 0;
    masks.bone[i] = l === L.Cancellous || l === L.Cortical ? 1 : 0;
    masks.gtv[i] = l === L.Tumour ? 1 : 0;
  }
  // iGTV: the GTV at each 4DCT phase, displaced along (1 − cos)/2 of the peak motion; phase 0 is the CT's
  masks.igtv.set(masks.gtv);
  for (let p = 1; p < phases; p++) {
    const w = (1 - Math.cos((2 * Math.PI * p) / phases)) / 2;
    shapes.forEach((s, t) => {
      const m = motion[t]!;
      forEachTumourVoxel(g, s, [m[0] * w, m[1] * w, m[2] * w], (idx) => {
        if (inRegion(s.region, labels[idx]!)) masks.igtv[idx] = 1;
      });
    });
  }
  // CTV: the CTV paper's institutional rule, GTV + margin cropped by heart, oesophagus and bone (and the body outline)
  const ctvMarginMm = Math.round(uniform(rt, 5, 8) * 10) / 10;
  const avoid = new Uint8Array(n);
  for (let i = 0; i < n; i++) avoid[i] = masks.heart[i]! | masks.oesophagus[i]! | masks.bone[i]! | (masks.body[i]! ^ 1);
  masks.ctv.set(expandMargin({ data: masks.gtv, shape: g.shape }, { data: avoid, shape: g.shape }, g.spacing, ctvMarginMm).data);

  // HU: tissue values with texture, partial-volume blur, noise, integer HU
  const tex = textureField(stream(seed, 3));
  const ct = new Float32Array(n);
  for (let k = 0, idx = 0; k < D; k++) {
    const z = centreMm(g, 0, k);
    for (let j = 0; j < H; j++) {
      const y = centreMm(g, 1, j);
      for (let i = 0; i < W; i++, idx++) {
        const l = labels[idx]!;
        const t = l === L.Air || l === L.Airway ? 0 : tex(z, y, centreMm(g, 2, i));
        ct[idx] = baseHu(l, t, y / an.scale, l === L.Tumour ? tumourBase[tumourId[idx]! - 1]! : 0);
      }
    }
  }
  blur(ct, g.shape);
  const rn = stream(seed, 4);
  for (let i = 0; i < n; i += 2) {
    // Box–Muller: two normals per pair of uniforms
    const u1 = 1 - rn(), u2 = rn();
    const m = PHANTOM_NOISE_HU * Math.sqrt(-2 * Math.log(u1));
    ct[i] = integerHu(ct[i]! + m * Math.cos(2 * Math.PI * u2));
    if (i + 1 < n) ct[i + 1] = integerHu(ct[i + 1]! + m * Math.sin(2 * Math.PI * u2));
  }

  const voxelCc = (g.spacing[0] * g.spacing[1] * g.spacing[2]) / 1000;
  const counts = new Array<number>(shapes.length).fill(0);
  for (let i = 0; i < n; i++) if (tumourId[i]) counts[tumourId[i]! - 1]!++;
  const tumourList: PhantomTumour[] = shapes.map((s, t) => ({
    centre: [0, 1, 2].map((a) => Math.min(g.shape[a]! - 1, Math.max(0, Math.round((s.centre[a]! + (g.shape[a]! * g.spacing[a]!) / 2) / g.spacing[a]! - 0.5)))) as [number, number, number],
    volumeCc: counts[t]! * voxelCc,
    site: sites[t]!,
    motionMm: motion[t]!.map((v) => Math.round(v * 10) / 10) as [number, number, number],
  }));
  return { ct, shape: [D, H, W], spacing: [...g.spacing], masks, tumours: tumourList, ctvMarginMm };
}

// Evaluation of a predicted mask against a reference: the golden metrics (maskMetrics) with voxel
// spacing, volumes and their difference, overlap with organs at risk, per-tumour metrics, and
// summary statistics over cases, with MONAI's empty-mask conventions. Browser-safe (no Node
// built-ins). Conventions: docs/evaluation.md.
import { PulmoError, shapeStr } from "../runtime/errors.ts";
import { connectedComponents, type Connectivity } from "./masks/components.ts";
import { maskMetrics, type MaskMetrics } from "./masks/metrics.ts";
import { checkSpacing, checkVolume, type Shape3, type Spacing3, type Volume } from "./masks/volume.ts";

/** A mask with its grid: spacing in mm (D, H, W) and, when known, the voxel → patient affine
 * (4×4 row-major, NIfTI's voxel (i=x, j=y, k=z) convention). */
export interface GriddedMask extends Volume {
  spacing: readonly number[];
  affine?: readonly (readonly number[])[];
}

/** Thrown when two masks that must share a grid do not. */
export class GridMismatchError extends PulmoError {
  constructor(message: string) {
    super(message);
    this.name = "GridMismatchError";
  }
}

/**
 * Checks that `b` lies on `a`'s grid: same shape, same spacing (relative 1e-4) and, when both
 * carry an affine, the same affine (1e-3 mm on every entry). `what` names `b` in the message.
 */
export function checkSameGrid(a: GriddedMask, b: GriddedMask, what: string, against = "the reference"): void {
  const sa = checkVolume(a, against);
  const sb = checkVolume(b, what);
  if (sa[0] !== sb[0] || sa[1] !== sb[1] || sa[2] !== sb[2])
    throw new GridMismatchError(`${what} has shape ${shapeStr(sb)} but ${against} ${shapeStr(sa)} (D, H, W): they are not on the same grid`);
  const pa = checkSpacing(a.spacing, against);
  const pb = checkSpacing(b.spacing, what);
  if (pa.some((v, i) => Math.abs(v - pb[i]!) > 1e-4 * Math.max(v, pb[i]!)))
    throw new GridMismatchError(`${what} has spacing ${fmtMm(pb)} mm but ${against} ${fmtMm(pa)} mm: they are not on the same grid`);
  if (a.affine && b.affine) {
    for (let r = 0; r < 3; r++)
      for (let c = 0; c < 4; c++)
        if (!(Math.abs(a.affine[r]![c]! - b.affine[r]![c]!) <= 1e-3))
          throw new GridMismatchError(
            `${what} and ${against} have the same shape and spacing but different affines (row ${r}: ${fmtRow(b.affine[r]!)} vs ${fmtRow(a.affine[r]!)}): different origin or orientation`,
          );
  }
}

// NIfTI stores float32: print 0.9, not 0.8999999761581421.
const fmtMm = (v: readonly number[]) => `[${v.map((x) => +x.toPrecision(6)).join(", ")}]`;
const fmtRow = (r: readonly number[]) => `[${r.slice(0, 4).map((v) => +v.toFixed(3)).join(", ")}]`;

/** Which of the two masks is empty: MONAI's conventions depend on it. */
export type EmptyCase = "both empty" | "prediction empty" | "reference empty" | null;

/** The conventions every report states. */
export const EMPTY_MASK_CONVENTIONS =
  "empty masks (MONAI): both empty → Dice 1, surface distances undefined (n/a); one empty → Dice 0, surface distances infinite (inf)";

export interface TumourMetrics extends MaskMetrics {
  /** 1-based, in raster order of the reference components */
  tumour: number;
  referenceCc: number;
  predictionCc: number;
  /** prediction components assigned to this tumour (each to the tumour it overlaps most) */
  predictionComponents: number;
}

export interface CaseEvaluation extends MaskMetrics {
  predictionCc: number;
  referenceCc: number;
  /** prediction − reference, cm³ */
  volumeDifferenceCc: number;
  /** 100 · (prediction − reference) / reference; NaN when the reference is empty */
  volumeDifferencePercent: number;
  empty: EmptyCase;
  /** per OAR name: cm³ of the prediction and of the reference inside the OAR */
  oarOverlap: Record<string, { predictionCc: number; referenceCc: number }>;
  /** per reference component, when the reference has more than one */
  tumours?: TumourMetrics[];
  /** prediction components overlapping no reference component (false-positive lesions) */
  unmatchedPredictionComponents: number;
}

export interface EvaluateOptions {
  /** organs at risk on the same grid, by name */
  oars?: Record<string, GriddedMask>;
  /** connectivity of the tumour components (default 26) */
  connectivity?: Connectivity;
}

function count(d: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < d.length; i++) if (d[i] !== 0) n++;
  return n;
}

/** Bounding box [lo, hi) per axis of the voxels set in either mask, grown by one voxel (clipped). */
function unionBox(shape: Shape3, a: ArrayLike<number>, b: ArrayLike<number>): [number, number][] | null {
  const [D, H, W] = shape;
  const lo = [D, H, W],
    hi = [-1, -1, -1];
  for (let z = 0, i = 0; z < D; z++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++, i++)
        if (a[i] !== 0 || b[i] !== 0) {
          const p = [z, y, x];
          for (let k = 0; k < 3; k++) {
            if (p[k]! < lo[k]!) lo[k] = p[k]!;
            if (p[k]! > hi[k]!) hi[k] = p[k]!;
          }
        }
  if (hi[0]! < 0) return null;
  return [0, 1, 2].map((k) => [Math.max(0, lo[k]! - 1), Math.min(shape[k]!, hi[k]! + 2)] as [number, number]);
}

function cropTo(shape: Shape3, d: ArrayLike<number>, box: [number, number][]): Uint8Array {
  const [, H, W] = shape;
  const [[z0, z1], [y0, y1], [x0, x1]] = box as [[number, number], [number, number], [number, number]];
  const out = new Uint8Array((z1 - z0) * (y1 - y0) * (x1 - x0));
  let o = 0;
  for (let z = z0; z < z1; z++) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out[o++] = d[(z * H + y) * W + x] !== 0 ? 1 : 0;
  return out;
}

/**
 * maskMetrics on the bounding box of both masks grown by one voxel (clipped to the volume): the
 * same numbers as on the whole volume at a fraction of the cost for small tumours. Exact because
 * the box edge is either a background rim or the volume's own edge (both count as background for
 * the erosion), and every surface voxel and its nearest surface voxel lie inside. Only the FPR
 * depends on the true negatives outside the box, so it is computed on the whole volume.
 */
export function croppedMetrics(pred: Volume, ref: Volume, spacing: Spacing3): MaskMetrics {
  const shape = checkVolume(pred, "prediction");
  checkVolume(ref, "reference");
  const box = unionBox(shape, pred.data, ref.data);
  if (!box) return maskMetrics(pred, ref, spacing);
  const s = box.map(([a, b]) => b - a) as unknown as Shape3;
  const m = maskMetrics({ data: cropTo(shape, pred.data, box), shape: s }, { data: cropTo(shape, ref.data, box), shape: s }, spacing);
  let fp = 0,
    tn = 0;
  for (let i = 0; i < pred.data.length; i++)
    if (ref.data[i] === 0) {
      if (pred.data[i] !== 0) fp++;
      else tn++;
    }
  return { ...m, fpr: fp + tn === 0 ? NaN : fp / (fp + tn) };
}

/** Every metric of one case: `pred` and `ref` must share a grid (GridMismatchError otherwise). */
export function evaluateCase(pred: GriddedMask, ref: GriddedMask, options: EvaluateOptions = {}): CaseEvaluation {
  checkSameGrid(ref, pred, "the prediction");
  const shape = checkVolume(ref, "the reference");
  const spacing = checkSpacing(ref.spacing, "the reference");
  const cc = (spacing[0] * spacing[1] * spacing[2]) / 1000;
  const np = count(pred.data),
    nr = count(ref.data);
  const m = croppedMetrics(pred, ref, spacing);
  const empty: EmptyCase = np === 0 && nr === 0 ? "both empty" : np === 0 ? "prediction empty" : nr === 0 ? "reference empty" : null;

  const oarOverlap: CaseEvaluation["oarOverlap"] = {};
  for (const [name, oar] of Object.entries(options.oars ?? {})) {
    checkSameGrid(ref, oar, `OAR '${name}'`);
    let p = 0,
      r = 0;
    for (let i = 0; i < oar.data.length; i++)
      if (oar.data[i] !== 0) {
        if (pred.data[i] !== 0) p++;
        if (ref.data[i] !== 0) r++;
      }
    oarOverlap[name] = { predictionCc: p * cc, referenceCc: r * cc };
  }

  // Tumours: reference components; each prediction component goes to the tumour it overlaps most.
  const conn = options.connectivity ?? 26;
  const rc = connectedComponents(ref, conn);
  const pc = connectedComponents(pred, conn);
  const overlap = new Map<number, Map<number, number>>(); // pred label → ref label → voxels
  for (let i = 0; i < pc.labels.length; i++) {
    const p = pc.labels[i]!,
      r = rc.labels[i]!;
    if (p && r) {
      const row = overlap.get(p) ?? new Map<number, number>();
      row.set(r, (row.get(r) ?? 0) + 1);
      overlap.set(p, row);
    }
  }
  const owner = new Int32Array(pc.count + 1); // pred label → ref label (0: unmatched)
  for (const [p, row] of overlap) {
    let best = 0,
      bv = 0;
    for (const [r, v] of row) if (v > bv || (v === bv && r < best)) (best = r), (bv = v);
    owner[p] = best;
  }
  let unmatched = 0;
  for (let p = 1; p <= pc.count; p++) if (!owner[p]) unmatched++;

  let tumours: TumourMetrics[] | undefined;
  if (rc.count > 1) {
    tumours = [];
    for (let t = 1; t <= rc.count; t++) {
      const rt = new Uint8Array(rc.labels.length);
      const pt = new Uint8Array(rc.labels.length);
      let assigned = 0;
      for (let p = 1; p <= pc.count; p++) if (owner[p] === t) assigned++;
      for (let i = 0; i < rt.length; i++) {
        rt[i] = rc.labels[i] === t ? 1 : 0;
        const p = pc.labels[i]!;
        pt[i] = p && owner[p] === t ? 1 : 0;
      }
      const tm = croppedMetrics({ data: pt, shape }, { data: rt, shape }, spacing);
      tumours.push({ tumour: t, referenceCc: rc.sizes[t - 1]! * cc, predictionCc: count(pt) * cc, predictionComponents: assigned, ...tm });
    }
  }

  const predictionCc = np * cc,
    referenceCc = nr * cc;
  return {
    ...m,
    predictionCc,
    referenceCc,
    volumeDifferenceCc: predictionCc - referenceCc,
    volumeDifferencePercent: nr === 0 ? NaN : (100 * (np - nr)) / nr,
    empty,
    oarOverlap,
    ...(tumours ? { tumours } : {}),
    unmatchedPredictionComponents: unmatched,
  };
}

// ---------------------------------------------------------------------------------------------
// Summary statistics and tables

export interface Summary {
  /** cases with a finite value */
  n: number;
  /** cases whose value is NaN (undefined) or ±Infinity, left out of the statistics */
  excluded: number;
  mean: number;
  median: number;
  /** sample standard deviation (n − 1 in the denominator); NaN for n < 2 */
  sd: number;
}

/** Mean, median and sample SD of the finite values; NaN/Infinity are counted in `excluded`. */
export function summarize(values: readonly number[]): Summary {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = v.length;
  const mean = n ? v.reduce((a, b) => a + b, 0) / n : NaN;
  const median = n === 0 ? NaN : n % 2 ? v[n >> 1]! : (v[(n >> 1) - 1]! + v[n >> 1]!) / 2;
  const sd = n < 2 ? NaN : Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { n, excluded: values.length - n, mean, median, sd };
}

/** The columns of the tables, in order: [key, header, unit]. */
export const METRIC_COLUMNS: readonly (readonly [keyof CaseEvaluation & string, string])[] = [
  ["dice", "Dice"],
  ["jaccard", "Jaccard"],
  ["precision", "precision"],
  ["recall", "recall"],
  ["fpr", "FPR"],
  ["hausdorff", "HD mm"],
  ["hausdorff95", "HD95 mm"],
  ["meanSurfaceDistance", "MSD mm"],
  ["medianSurfaceDistance", "medSD mm"],
  ["predictionCc", "pred cc"],
  ["referenceCc", "ref cc"],
  ["volumeDifferenceCc", "ΔV cc"],
  ["volumeDifferencePercent", "ΔV %"],
];

export interface NamedEvaluation {
  name: string;
  evaluation: CaseEvaluation;
}

/** A number as the tables print it: NaN → "n/a" (undefined), ±Infinity → "inf"/"-inf". */
export function formatValue(v: number, digits = 4): string {
  if (Number.isNaN(v)) return "n/a";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  return Number.isInteger(v) && Math.abs(v) < 1e6 ? String(v) : v.toFixed(digits);
}

function oarNames(cases: readonly NamedEvaluation[]): string[] {
  return [...new Set(cases.flatMap((c) => Object.keys(c.evaluation.oarOverlap)))].sort();
}

/** Rows (header first) of the case table: one row per case, per-tumour rows under a case with
 * several tumours (named `case#k`), and mean/median/SD rows when there is more than one case. */
export function evaluationRows(cases: readonly NamedEvaluation[], digits = 4): string[][] {
  const oars = oarNames(cases);
  const header = ["case", ...METRIC_COLUMNS.map(([, h]) => h), ...oars.map((o) => `pred∩${o} cc`), "empty"];
  const rows: string[][] = [header];
  const row = (name: string, m: Partial<CaseEvaluation>, extra: string[]) => [
    name,
    ...METRIC_COLUMNS.map(([k]) => (typeof m[k] === "number" ? formatValue(m[k] as number, digits) : "")),
    ...extra,
  ];
  for (const c of cases) {
    const e = c.evaluation;
    rows.push(row(c.name, e, [...oars.map((o) => (e.oarOverlap[o] ? formatValue(e.oarOverlap[o]!.predictionCc, digits) : "")), e.empty ?? ""]));
    for (const t of e.tumours ?? [])
      rows.push(row(`${c.name}#${t.tumour}`, { ...t, referenceCc: t.referenceCc, predictionCc: t.predictionCc }, [...oars.map(() => ""), ""]));
  }
  if (cases.length > 1) {
    const stats = METRIC_COLUMNS.map(([k]) => summarize(cases.map((c) => c.evaluation[k] as number)));
    const oarStats = oars.map((o) => summarize(cases.map((c) => c.evaluation.oarOverlap[o]?.predictionCc ?? NaN)));
    for (const s of ["mean", "median", "sd"] as const)
      rows.push([s === "sd" ? "SD (sample)" : s, ...stats.map((x) => formatValue(x[s], digits)), ...oarStats.map((x) => formatValue(x[s], digits)), ""]);
    rows.push(["n (finite)", ...stats.map((x) => String(x.n)), ...oarStats.map((x) => String(x.n)), ""]);
  }
  return rows;
}

/** The rows as an aligned plain-text table. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join("  ").trimEnd()).join("\n");
}

/** The rows as RFC 4180 CSV (fields with a comma, quote or newline quoted). */
export function formatCsv(rows: readonly (readonly string[])[]): string {
  const q = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  return rows.map((r) => r.map(q).join(",")).join("\n") + "\n";
}

/** JSON of the cases and (for several cases) their summaries. NaN and Infinity, which JSON lacks,
 * are written as null and "inf"; `conventions` states what they mean. */
export function evaluationJson(cases: readonly NamedEvaluation[]): string {
  const summary =
    cases.length > 1
      ? Object.fromEntries(
          [...METRIC_COLUMNS.map(([k]) => k), ...oarNames(cases).map((o) => `oar:${o}`)].map((k) => [
            k,
            summarize(cases.map((c) => (k.startsWith("oar:") ? (c.evaluation.oarOverlap[k.slice(4)]?.predictionCc ?? NaN) : (c.evaluation[k as keyof CaseEvaluation] as number)))),
          ]),
        )
      : undefined;
  const doc = {
    conventions: {
      emptyMasks: EMPTY_MASK_CONVENTIONS,
      json: "null = undefined (NaN), \"inf\" = infinite",
      units: "distances mm, volumes cm³; volumeDifference = prediction − reference",
      summary: "mean, median and sample standard deviation (n − 1) over the cases with a finite value; excluded counts the others",
    },
    cases: cases.map((c) => ({ name: c.name, ...c.evaluation })),
    ...(summary ? { summary } : {}),
  };
  return JSON.stringify(doc, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? (Number.isNaN(v) ? null : v > 0 ? "inf" : "-inf") : v), 2) + "\n";
}

// Planar contours ↔ binary slices, in voxel coordinates (x = column, y = row; pixel centres at
// integers). Marching squares puts vertices at the midpoints between inside and outside pixel
// centres (the 0.5 iso-line), so filling the contours again by pixel centre gives back the slice.

/** A closed polygon as interleaved x, y (voxel units); the last vertex connects to the first. */
export type Polygon = Float64Array;

// Segments per marching-squares case (corners TL=8, TR=4, BR=2, BL=1), as pairs of cell edges
// 0 top, 1 right, 2 bottom, 3 left. Saddles (5, 10) keep the two inside corners apart.
const CASES: number[][] = [[], [3, 2], [2, 1], [3, 1], [0, 1], [0, 1, 3, 2], [0, 2], [3, 0], [0, 3], [0, 2], [0, 3, 2, 1], [0, 1], [3, 1], [2, 1], [3, 2], []];

/** Closed contours (outer boundaries and holes) of the pixels of a [H, W] slice where `inside` is true. */
export function marchingSquares(height: number, width: number, inside: (y: number, x: number) => boolean): Polygon[] {
  // padded sample grid: samples at y, x ∈ [−1, H] × [−1, W], zero outside, so every contour closes
  const pw = width + 2;
  const ph = height + 2;
  const v = new Uint8Array(ph * pw);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (inside(y, x)) v[(y + 1) * pw + x + 1] = 1;
  // point ids: 2·(Y·pw + X) for the horizontal edge right of padded sample (Y, X), +1 for the vertical edge below it
  const next = new Int32Array(2 * ph * pw * 2).fill(-1);
  const link = (p: number, q: number) => {
    next[2 * p + (next[2 * p]! < 0 ? 0 : 1)] = q;
    next[2 * q + (next[2 * q]! < 0 ? 0 : 1)] = p;
  };
  for (let Y = 0; Y + 1 < ph; Y++)
    for (let X = 0; X + 1 < pw; X++) {
      const c = (v[Y * pw + X]! << 3) | (v[Y * pw + X + 1]! << 2) | (v[(Y + 1) * pw + X + 1]! << 1) | v[(Y + 1) * pw + X]!;
      const segs = CASES[c]!;
      if (segs.length === 0) continue;
      const edge = [2 * (Y * pw + X), 2 * (Y * pw + X + 1) + 1, 2 * ((Y + 1) * pw + X), 2 * (Y * pw + X) + 1];
      for (let i = 0; i < segs.length; i += 2) link(edge[segs[i]!]!, edge[segs[i + 1]!]!);
    }
  const seen = new Uint8Array(ph * pw * 2);
  const polygons: Polygon[] = [];
  for (let start = 0; start < seen.length; start++) {
    if (seen[start] || next[2 * start]! < 0) continue;
    const pts: number[] = [];
    let prev = -1;
    let cur = start;
    do {
      seen[cur] = 1;
      const cell = cur >> 1;
      const X = cell % pw;
      const Y = (cell - X) / pw;
      // padded (Y, X) is voxel (Y − 1, X − 1); horizontal edges sit half a pixel right, vertical half below
      if (cur & 1) pts.push(X - 1, Y - 0.5);
      else pts.push(X - 0.5, Y - 1);
      const a = next[2 * cur]!;
      const step = a !== prev ? a : next[2 * cur + 1]!;
      prev = cur;
      cur = step;
    } while (cur !== start);
    polygons.push(dropCollinear(pts));
  }
  return polygons;
}

/** Removes vertices lying on the straight line through their neighbours (exact: coordinates are halves). */
function dropCollinear(pts: number[]): Polygon {
  const n = pts.length / 2;
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = (i + n - 1) % n;
    const q = (i + 1) % n;
    const cross = (pts[2 * i]! - pts[2 * p]!) * (pts[2 * q + 1]! - pts[2 * i + 1]!) - (pts[2 * i + 1]! - pts[2 * p + 1]!) * (pts[2 * q]! - pts[2 * i]!);
    if (cross !== 0) keep.push(pts[2 * i]!, pts[2 * i + 1]!);
  }
  return Float64Array.from(keep.length >= 6 ? keep : pts);
}

/**
 * Even-odd fill of polygons onto a [H, W] slice by pixel centre: a pixel is inside when a ray from
 * its centre crosses the polygons' edges an odd number of times, so contours inside contours are holes.
 * Sets `out[offset + y·W + x] = 1`.
 */
export function fillEvenOdd(polygons: readonly Polygon[], height: number, width: number, out: Uint8Array, offset = 0): void {
  const crossings: number[][] = Array.from({ length: height }, () => []);
  for (const poly of polygons) {
    const n = poly.length / 2;
    for (let i = 0; i < n; i++) {
      const j = (i + 1) % n;
      const x0 = poly[2 * i]!, y0 = poly[2 * i + 1]!, x1 = poly[2 * j]!, y1 = poly[2 * j + 1]!;
      if (y0 === y1) continue;
      // rows y with min(y0, y1) ≤ y < max(y0, y1) (half-open, so shared vertices count once)
      const lo = Math.max(0, Math.ceil(Math.min(y0, y1)));
      const hi = Math.min(height - 1, Math.ceil(Math.max(y0, y1)) - 1);
      for (let y = lo; y <= hi; y++) crossings[y]!.push(x0 + ((y - y0) * (x1 - x0)) / (y1 - y0));
    }
  }
  for (let y = 0; y < height; y++) {
    const xs = crossings[y]!.sort((a, b) => a - b);
    for (let i = 0; i + 1 < xs.length; i += 2) {
      const from = Math.max(0, Math.ceil(xs[i]!));
      const to = Math.min(width - 1, Math.ceil(xs[i + 1]!) - 1);
      for (let x = from; x <= to; x++) out[offset + y * width + x] = 1;
    }
  }
}

// Exact Euclidean distance transform with anisotropic voxel spacing.
//
// Separable algorithm of Felzenszwalb & Huttenlocher ("Distance Transforms of Sampled Functions",
// 2012): one pass per axis, each computing the lower envelope of the parabolas
// f(q) + (s·(p − q))² along every line, O(n) per line, so O(N) per axis and O(N) overall.
// Distances are in millimetres (spacing units), computed in float64.
//
// Bit-for-bit convention: the axes are processed in D, H, W order and each pass adds its own
// term as f + ((p − q)·s)², so the squared distance to the nearest site is evaluated as
// ((dD·sD)² + (dH·sH)²) + (dW·sW)², the same expression (and rounding) as
// scipy.ndimage.distance_transform_edt(..., sampling=spacing), which squares and sums the
// per-axis offsets to the nearest feature in axis order. Thresholds (`d <= margin`) therefore
// agree with SciPy exactly, not just to within rounding.
import { PulmoError } from "../../runtime/errors.ts";
import { checkSpacing, checkVolume, type Shape3, type Spacing3, type Volume } from "./volume.ts";

/** Which axes (D, H, W) a transform runs over; `[false, true, true]` is a per-slice 2D transform. */
export type Axes3 = readonly [boolean, boolean, boolean];

/**
 * Squared distance (mm²) from every voxel to the nearest *site*, a non-zero voxel of `sites`
 * (0 on the sites themselves). Where no site is reachable (an empty mask, or with some axes
 * disabled, an empty line/slice) the value is `Infinity`.
 *
 * This is `scipy.ndimage.distance_transform_edt(sites == 0, sampling=spacing) ** 2`: SciPy
 * measures from non-zero voxels to the nearest zero, here from every voxel to the nearest site.
 */
export function squaredDistanceTransform(sites: Volume, spacing: Spacing3, axes: Axes3 = [true, true, true]): Float64Array {
  const shape = checkVolume(sites, "distance transform");
  const sp = checkSpacing(spacing, "distance transform");
  const n = sites.data.length;
  const g = new Float64Array(n);
  const src = sites.data;
  for (let i = 0; i < n; i++) g[i] = src[i] !== 0 ? 0 : Infinity;
  const longest = Math.max(shape[0], shape[1], shape[2], 1);
  const scratch = {
    f: new Float64Array(longest),
    d: new Float64Array(longest),
    v: new Int32Array(longest),
    z: new Float64Array(longest + 1),
  };
  for (let axis = 0; axis < 3; axis++) if (axes[axis]) transformAxis(g, shape, axis, sp[axis]!, scratch);
  return g;
}

/** Euclidean distance (mm) to the nearest site: the square root of `squaredDistanceTransform`. */
export function distanceTransform(sites: Volume, spacing: Spacing3, axes: Axes3 = [true, true, true]): Float64Array {
  const g = squaredDistanceTransform(sites, spacing, axes);
  for (let i = 0; i < g.length; i++) g[i] = Math.sqrt(g[i]!);
  return g;
}

interface Scratch {
  f: Float64Array;
  d: Float64Array;
  v: Int32Array;
  z: Float64Array;
}

/** Runs the 1D transform along `axis` over every line of `g`, in place. */
function transformAxis(g: Float64Array, shape: Shape3, axis: number, s: number, sc: Scratch): void {
  const n = shape[axis]!;
  if (n === 0) return;
  const outer = axis === 0 ? 1 : axis === 1 ? shape[0] : shape[0] * shape[1];
  const inner = axis === 0 ? shape[1] * shape[2] : axis === 1 ? shape[2] : 1; // the axis' stride
  const { f, d } = sc;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let any = false;
      for (let p = 0, at = base; p < n; p++, at += inner) {
        const x = g[at]!;
        f[p] = x;
        if (x !== Infinity) any = true;
      }
      if (!any) continue; // nothing reachable along this line: stays Infinity
      envelope1d(n, s, sc);
      for (let p = 0, at = base; p < n; p++, at += inner) g[at] = d[p]!;
    }
  }
}

/**
 * d[p] = min_q f[q] + ((p − q)·s)² over the sites q with finite f (at least one), by the lower
 * envelope of parabolas. v holds the envelope's parabola apexes, z the boundaries between them
 * (in index units).
 */
function envelope1d(n: number, s: number, sc: Scratch): void {
  const { f, d, v, z } = sc;
  const s2 = s * s;
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[q]!;
    if (fq === Infinity) continue;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -Infinity;
      z[1] = Infinity;
      continue;
    }
    // Where the parabola at q overtakes the envelope's last one; drop those it hides entirely.
    let x: number;
    for (;;) {
      const r = v[k]!;
      x = ((fq - f[r]!) / s2 + (q * q - r * r)) / (2 * (q - r));
      if (x <= z[k]! && k > 0) k--;
      else break;
    }
    // k === 0 with x <= z[0] cannot happen (z[0] = -Infinity), so the parabola is always kept.
    k++;
    v[k] = q;
    z[k] = x;
    z[k + 1] = Infinity;
  }
  if (k < 0) throw new PulmoError("distance transform: internal error, no finite site on a line marked reachable");
  let j = 0;
  for (let p = 0; p < n; p++) {
    while (z[j + 1]! < p) j++;
    const q = v[j]!;
    const t = (p - q) * s;
    d[p] = f[q]! + t * t;
  }
}

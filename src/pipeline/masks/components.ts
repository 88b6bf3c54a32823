// Connected-component labelling of [D, H, W] binary masks.
import { PulmoError } from "../../runtime/errors.ts";
import { checkVolume, type Mask, type Volume } from "./volume.ts";

/** 6: face neighbours; 18: faces and edges; 26: faces, edges and corners. */
export type Connectivity = 6 | 18 | 26;

export interface Components {
  /** number of components */
  count: number;
  /** per voxel: 0 for background, else the component's label 1..count. Labels follow raster
   * (D, H, W) order of each component's first voxel, as scipy.ndimage.label numbers them. */
  labels: Int32Array;
  /** sizes[k - 1] = voxels in component k */
  sizes: number[];
  /** label of the largest component (ties: the lowest label, i.e. the one whose first voxel comes
   * first in raster order); 0 when the mask is empty */
  largestLabel: number;
  /** the largest component as a 0/1 mask (all zero when the mask is empty) */
  largest: Mask;
}

function neighbourOffsets(connectivity: Connectivity): [number, number, number][] {
  const reach = connectivity === 6 ? 1 : connectivity === 18 ? 2 : connectivity === 26 ? 3 : 0;
  if (!reach) throw new PulmoError(`connectedComponents: connectivity must be 6, 18 or 26, got ${connectivity}`);
  const out: [number, number, number][] = [];
  for (let dz = -1; dz <= 1; dz++)
    for (let dy = -1; dy <= 1; dy++)
      for (let dx = -1; dx <= 1; dx++) {
        const k = Math.abs(dz) + Math.abs(dy) + Math.abs(dx);
        if (k > 0 && k <= reach) out.push([dz, dy, dx]);
      }
  return out;
}

/** Labels the components of `mask` (non-zero = set) by flood fill, O(voxels × neighbours). */
export function connectedComponents(mask: Volume, connectivity: Connectivity = 26): Components {
  const shape = checkVolume(mask, "connectedComponents");
  const offsets = neighbourOffsets(connectivity);
  const [D, H, W] = shape;
  const HW = H * W;
  const n = mask.data.length;
  const m = mask.data;
  const labels = new Int32Array(n);
  const stack = new Int32Array(n);
  const sizes: number[] = [];
  let count = 0;
  for (let seed = 0; seed < n; seed++) {
    if (m[seed] === 0 || labels[seed] !== 0) continue;
    const label = ++count;
    let size = 0;
    let top = 0;
    stack[top++] = seed;
    labels[seed] = label;
    while (top > 0) {
      const i = stack[--top]!;
      size++;
      const z = (i / HW) | 0;
      const r = i - z * HW;
      const y = (r / W) | 0;
      const x = r - y * W;
      for (const [dz, dy, dx] of offsets) {
        const zz = z + dz,
          yy = y + dy,
          xx = x + dx;
        if (zz < 0 || zz >= D || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        const j = i + dz * HW + dy * W + dx;
        if (m[j] !== 0 && labels[j] === 0) {
          labels[j] = label;
          stack[top++] = j;
        }
      }
    }
    sizes.push(size);
  }
  let largestLabel = 0;
  for (let k = 0; k < sizes.length; k++) if (largestLabel === 0 || sizes[k]! > sizes[largestLabel - 1]!) largestLabel = k + 1;
  const largest = new Uint8Array(n);
  if (largestLabel) for (let i = 0; i < n; i++) largest[i] = labels[i] === largestLabel ? 1 : 0;
  return { count, labels, sizes, largestLabel, largest: { data: largest, shape } };
}

/** Just the largest component (see `connectedComponents` for the tie rule). */
export function largestComponent(mask: Volume, connectivity: Connectivity = 26): Mask {
  return connectedComponents(mask, connectivity).largest;
}

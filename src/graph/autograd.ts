import type { Tensor } from "../runtime/index.ts";
import { backward as runBackward, type BackwardOptions } from "./tape.ts";
import { addSame, full } from "./launch.ts";

/** d/d(leaves) of the roots, seeded with `seeds` (or 1 for a scalar root), into `.grad`. */
export function backward(roots: Tensor | Tensor[], seeds: (Tensor | null)[] = [], options: BackwardOptions = {}): void {
  runBackward(Array.isArray(roots) ? roots : [roots], seeds, addSame, (r) => full(r.device, r.shape, 1), options);
}

import { keep, Tensor, PulmoError } from "../runtime/index.ts";

/** Reverse-mode autograd on a tape: each op that sees an input requiring a gradient records
 * a node on its output holding retained copies of what its backward needs. */
export interface GradNode {
  op: string;
  inputs: (Tensor | null)[];
  saved: Tensor[];
  /** gradient of each input (null where none flows) from the output gradient */
  backward(gradOutput: Tensor, saved: Tensor[]): (Tensor | null)[];
}

let gradDepth = 0;

/** Runs fn with recording switched off (inference, and backward passes themselves). */
export function noGrad<T>(fn: () => T): T {
  gradDepth++;
  try {
    return fn();
  } finally {
    gradDepth--;
  }
}

/** Runs fn with recording on even inside noGrad or a backward pass (a split op's backward
 * recomputes each piece on a small graph of its own, split.ts). */
export function enableGrad<T>(fn: () => T): T {
  const saved = gradDepth;
  gradDepth = 0;
  try {
    return fn();
  } finally {
    gradDepth = saved;
  }
}

export function isGradEnabled(): boolean {
  return gradDepth === 0;
}

export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  return gradDepth === 0 && inputs.some((t) => t?.requiresGrad);
}

/** Records `op` on `output` if any input needs a gradient. `save` lists tensors the backward
 * reads; they are retained until the node is freed. */
export function record(
  op: string,
  output: Tensor,
  inputs: (Tensor | null | undefined)[],
  save: Tensor[],
  backward: GradNode["backward"],
): Tensor {
  if (!needsGrad(...inputs)) return output;
  const node: GradNode = {
    op,
    inputs: inputs.map((t) => (t?.requiresGrad ? t : null)),
    saved: save.map((t) => t.retain()),
    backward,
  };
  output.requiresGrad = true;
  output.gradNode = node;
  return output;
}

function nodeOf(t: Tensor): GradNode | null {
  return (t.gradNode as GradNode | null) ?? null;
}

/** Frees what a node retained; the graph below it can no longer be differentiated. */
function releaseNode(t: Tensor): void {
  const node = nodeOf(t);
  if (!node) return;
  for (const s of node.saved) s.dispose();
  node.saved = [];
  t.gradNode = null;
}

export interface BackwardOptions {
  /** keep the graph for a second backward pass */
  retainGraph?: boolean;
}

/** Back-propagates `seeds[i]` (d loss / d roots[i]) and accumulates into `.grad` of every leaf
 * tensor with requiresGrad. A scalar root with no seed gets a seed of 1. */
export function backward(roots: Tensor[], seeds: (Tensor | null)[] = [], accumulate: AccumulateFn, ones: (like: Tensor) => Tensor, options: BackwardOptions = {}): void {
  // Topological order by depth-first search from the roots.
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const visit = (t: Tensor) => {
    if (visited.has(t)) return;
    visited.add(t);
    const node = nodeOf(t);
    if (node) for (const i of node.inputs) if (i) visit(i);
    order.push(t);
  };
  for (const r of roots) visit(r);

  const grads = new Map<Tensor, Tensor>();
  const add = (t: Tensor, g: Tensor) => {
    const prev = grads.get(t);
    if (!prev) grads.set(t, g);
    else {
      grads.set(t, accumulate(prev, g));
      prev.dispose();
      g.dispose();
    }
  };
  noGrad(() => {
    roots.forEach((r, i) => {
      const seed = seeds[i];
      if (seed) {
        if (seed.size !== r.size) throw new PulmoError(`backward: seed for root ${i} has ${seed.size} elements, root has ${r.size}`);
        add(r, seed.retain());
      } else {
        if (r.size !== 1) throw new PulmoError(`backward: root ${r} is not a scalar; pass its gradient`);
        add(r, ones(r));
      }
    });
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k]!;
      const g = grads.get(t);
      const node = nodeOf(t);
      if (!g) continue;
      if (!node) {
        // a leaf: accumulate into .grad
        grads.delete(t);
        if (t.requiresGrad) {
          const shaped = g.reshape(t.shape);
          g.dispose();
          if (t.grad) {
            const sum = accumulate(t.grad, shaped);
            t.grad.dispose();
            shaped.dispose();
            t.grad = sum;
          } else t.grad = shaped;
          keep(t.grad);
        } else g.dispose();
        continue;
      }
      const shapedG = g.shape.join() === t.shape.join() ? g : g.reshape(t.shape);
      const inputGrads = node.backward(shapedG, node.saved);
      if (shapedG !== g) shapedG.dispose();
      grads.delete(t);
      g.dispose();
      node.inputs.forEach((input, i) => {
        const ig = inputGrads[i];
        if (input && ig) add(input, ig);
        else ig?.dispose();
      });
      if (!options.retainGraph) releaseNode(t);
    }
  });
}

export type AccumulateFn = (a: Tensor, b: Tensor) => Tensor;


/** Drops the recorded graph under `t` without back-propagating (e.g. an unused loss). */
export function releaseGraph(t: Tensor): void {
  const stack = [t];
  const seen = new Set<Tensor>();
  while (stack.length) {
    const x = stack.pop()!;
    if (seen.has(x)) continue;
    seen.add(x);
    const node = nodeOf(x);
    if (node) for (const i of node.inputs) if (i) stack.push(i);
    releaseNode(x);
  }
}

import { PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { overBindingLimit, splitRows } from "./split.ts";
import { reshape } from "./layout.ts";
import { expectFloat, groups1d, label, normAxis } from "../launch.ts";
import { registerEntry, rowKernel, rowsPlan, vec4Ok } from "./norm.ts";

// softmax over any axis: kernels/softmax/softmax.wgsl views x as [outer, r, inner] (r = the
// softmax axis), so no permute is needed. The last axis (inner = 1) with rows of at least 4 runs
// on kernels/softmax/rows_subgroup.wgsl (a subgroup per row; the forward from registers where the
// row fits, registerEntry) or rows.wgsl (a team of invocations per row, one barrier per row): see
// rowKernel in norm.ts.

/** Rows longer than this get a workgroup each (tree reductions), shorter ones a thread each. */
const THREAD_ROW_MAX = 64;

function launch(entry: "main" | "backward", x: Tensor, dy: Tensor | null, outer: number, r: number, inner: number): Tensor {
  const out = Tensor.empty(x.device, x.shape);
  const plan = inner === 1 && outer > 0 ? rowsPlan(r) : null;
  if (plan) {
    const v4 = vec4Ok(r, x, dy);
    const rk = rowKernel(x.device, "softmax", outer, plan);
    const reg = v4 ? registerEntry(rk, r / 4, outer) : null;
    const k = reg ?? rk;
    const dir = entry === "main" ? "fwd" : "bwd";
    x.device.dispatch({
      kernel: rk.kernel,
      entry: reg ? `${dir}4r` : `${dir}${v4 ? 4 : 1}`,
      constants: k.constants,
      bindings: v4 ? { xv: x, dyv: dy ?? x, outv: out } : { x, dy: dy ?? x, out },
      uniforms: { rows: outer, r, rpw: k.rpw },
      workgroups: Math.ceil(outer / k.rpw),
      label: label(entry === "main" ? "softmax" : "softmax_backward", x),
    });
    return out;
  }
  const rows = outer * inner;
  const wide = r > THREAD_ROW_MAX;
  x.device.dispatch({
    kernel: "softmax/softmax",
    entry: wide ? `${entry}_wg` : entry,
    bindings: { x, dy: dy ?? x, y: out },
    uniforms: { outer, r, inner },
    workgroups: out.size === 0 ? 0 : wide ? rows : groups1d(rows),
    label: label(entry === "main" ? "softmax" : "softmax_backward", x),
  });
  return out;
}

/** torch.softmax(x, dim): exp(x - max) / sum(exp(x - max)) along `dim` (negative counts from the
 * end). Backward: dx = y * (dy - sum(dy * y)) along `dim`, from the saved output. */
export function softmax(x: Tensor, dim: number): Tensor {
  expectFloat("softmax", "x", x);
  if (x.rank === 0) throw new PulmoError(`softmax: 'x' must have rank >= 1, got ${shapeStr(x.shape)}`);
  const a = normAxis("softmax", "dim", dim, x.rank, `'x' of shape ${shapeStr(x.shape)}`);
  const outer = numel(x.shape.slice(0, a));
  const r = x.shape[a]!;
  const inner = numel(x.shape.slice(a + 1));
  if (overBindingLimit(x.device, x.bytes))
    // over one storage binding: runs of whole outer indices, each [k, r, inner] (split.ts)
    return splitRows("softmax", x, r * inner, [], x.shape, ([xs]) => {
      const k = xs!.shape[0]!;
      const s = softmax(reshape(xs!, [k, r, inner]), 1);
      const y2 = reshape(s, [k, r * inner]);
      s.dispose();
      return y2;
    });
  const y = launch("main", x, null, outer, r, inner);
  return record("softmax", y, [x], [y], (dy, [ys]) => [launch("backward", ys!, dy, outer, r, inner)]);
}

import { PulmoError, Tensor, numel, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, expectSameDevice, groups1d, label } from "../launch.ts";

const WG = 128; // workgroup size of prelu.wgsl's reduction entries
const MAX_GROUPS = 1024; // partial sums per channel in the weight-gradient reduction

/** F.prelu: y = x > 0 ? x : weight * x, with weight [1] (one slope) or [C] (one per channel of
 * dim 1, x of rank >= 2). Gradients for x and weight. */
export function prelu(x: Tensor, weight: Tensor): Tensor {
  const op = "prelu";
  expectFloat(op, "x", x);
  expectFloat(op, "weight", weight);
  const device = expectSameDevice(op, x, weight);
  if (weight.rank > 1) throw new PulmoError(`${op}: 'weight' must have rank 0 or 1, got ${shapeStr(weight.shape)}`);
  const channels = weight.size;
  if (channels !== 1 && (x.rank < 2 || x.shape[1] !== channels))
    throw new PulmoError(
      `${op}: 'weight' ${shapeStr(weight.shape)} must have 1 element or one per channel (dim 1) of 'x' ${shapeStr(x.shape)}`,
    );
  const inner = channels === 1 ? x.size : numel(x.shape.slice(2));
  const count = channels === 0 ? 0 : x.size / channels; // elements per slope
  const groups = Math.max(1, Math.min(MAX_GROUPS, Math.ceil(count / (WG * 16))));
  const uniforms = { n: x.size, inner, channels, count, groups };

  const y = Tensor.empty(device, x.shape);
  device.dispatch({
    kernel: "activation/prelu",
    bindings: { x, weight, out: y },
    uniforms,
    workgroups: groups1d(x.size),
    label: label(op, x, weight),
  });

  const xShape = x.shape;
  const wShape = weight.shape;
  return record(op, y, [x, weight], [x, weight], (dy, [xs, ws]) => {
    const dx = Tensor.empty(device, xShape);
    const dw = Tensor.empty(device, wShape);
    const partials = Tensor.empty(device, [channels * groups]);
    device.dispatch({
      kernel: "activation/prelu",
      entry: "backward",
      bindings: { x: xs!, weight: ws!, dy, out: dx, partials },
      uniforms,
      workgroups: channels * groups,
      label: label(`${op}_backward`, xs, ws),
    });
    device.dispatch({
      kernel: "activation/prelu",
      entry: "reduce",
      bindings: { x: xs!, weight: ws!, dy, out: dw, partials },
      uniforms,
      workgroups: channels,
      label: label(`${op}_backward_weight`, xs, ws),
    });
    partials.dispose();
    return [dx, dw];
  });
}

// ConvLSTM (the Recurrent 3D-DenseUNet's recurrent block): a fused pointwise LSTM cell
// (kernels/recurrent/lstm_cell.wgsl) and the 2D ConvLSTM layer composed from conv2d, concat,
// slice and stack, so backpropagation through time comes from the tape.
import { PulmoError, Tensor, shapeStr } from "../../runtime/index.ts";
import { record } from "../tape.ts";
import { expectFloat, expectRank, expectSameDevice, expectShape, groups1d, label } from "../launch.ts";
import { conv2d } from "./conv.ts";
import { concat, reshape, slice, stack } from "./layout.ts";

export type RecurrentActivation = "sigmoid" | "hard_sigmoid";
const ACT: Record<RecurrentActivation, number> = { sigmoid: 0, hard_sigmoid: 1 };

function actCode(op: string, a: unknown): number {
  if (a !== "sigmoid" && a !== "hard_sigmoid")
    throw new PulmoError(`${op}: 'recurrentActivation' must be "sigmoid" or "hard_sigmoid", got ${JSON.stringify(a)}`);
  return ACT[a];
}

function launchCell(entry: "main" | "backward", z: Tensor, cPrev: Tensor, dout: Tensor | null, act: number): [Tensor, Tensor | null] {
  const device = z.device;
  const [n, c4, ...spatial] = z.shape as number[];
  const hidden = c4! / 4;
  const out = Tensor.empty(device, entry === "main" ? [n!, 2, hidden, ...spatial] : z.shape);
  const dcPrev = entry === "main" ? null : Tensor.empty(device, cPrev.shape);
  device.dispatch({
    kernel: "recurrent/lstm_cell",
    entry,
    constants: { ACT: act },
    // each entry binds only what it uses: the forward has no dout or dc_prev
    bindings: dcPrev && dout ? { z, c_prev: cPrev, dout, out, dc_prev: dcPrev } : { z, c_prev: cPrev, out },
    uniforms: { n: cPrev.size, chw: cPrev.size / Math.max(n!, 1) },
    workgroups: groups1d(cPrev.size),
    label: label(entry === "main" ? "lstm_cell" : "lstm_cell_backward", z, cPrev),
  });
  return [out, dcPrev];
}

/** One LSTM cell step from gate pre-activations.
 * z [N, 4*hidden, ...spatial] (gate order i, f, g, o), cPrev [N, hidden, ...spatial] →
 * packed [N, 2, hidden, ...spatial] holding h_t (index 0) and c_t (index 1), with
 * i, f, o = recurrentActivation, g = tanh, c_t = f*c_prev + i*g, h_t = o*tanh(c_t).
 * Differentiable in z and cPrev. */
export function lstmCell(z: Tensor, cPrev: Tensor, recurrentActivation: RecurrentActivation = "sigmoid"): Tensor {
  const op = "lstm_cell";
  expectFloat(op, "z", z);
  expectFloat(op, "cPrev", cPrev);
  expectSameDevice(op, z, cPrev);
  expectRank(op, "z", z, [2, 3, 4, 5]);
  const act = actCode(op, recurrentActivation);
  const c4 = z.shape[1]!;
  if (c4 % 4 !== 0 || c4 === 0)
    throw new PulmoError(`${op}: 'z' must have 4*hidden channels (gates i, f, g, o) on axis 1, got ${shapeStr(z.shape)}`);
  const want = [z.shape[0]!, c4 / 4, ...z.shape.slice(2)];
  if (cPrev.rank !== want.length || cPrev.shape.some((d, i) => d !== want[i]))
    throw new PulmoError(`${op}: 'cPrev' must have shape ${shapeStr(want)} to match 'z' ${shapeStr(z.shape)}, got ${shapeStr(cPrev.shape)}`);
  const [y] = launchCell("main", z, cPrev, null, act);
  return record(op, y, [z, cPrev], [z, cPrev], (dy, [zs, cs]) => launchCell("backward", zs!, cs!, dy, act));
}

export interface ConvLstm2dOptions {
  /** hidden channels (the weight has 4*hidden output channels) */
  hidden: number;
  /** square kernel size, odd (default: the weight's); padding is kernel >> 1, stride 1 */
  kernel?: number;
  /** activation of gates i, f, o (default "sigmoid"); g and the cell output use tanh */
  recurrentActivation?: RecurrentActivation;
  /** return every h_t [N, T, hidden, H, W] (default) or only the last [N, hidden, H, W] */
  returnSequences?: boolean;
}

/** 2D ConvLSTM over x [N, T, Cin, H, W] with weight [4*hidden, Cin+hidden, k, k] and bias
 * [4*hidden] (or null): z_t = conv2d(concat(x_t, h_{t-1}), weight, bias, padding k>>1), gates
 * i, f, g, o from z_t through lstmCell, h_0 = c_0 = 0. Backpropagation through time comes from
 * the tape: every step is ordinary differentiable ops. */
export function convLstm2d(x: Tensor, weight: Tensor, bias: Tensor | null, opts: ConvLstm2dOptions): Tensor {
  const op = "convlstm2d";
  expectFloat(op, "x", x);
  expectFloat(op, "weight", weight);
  if (bias) expectFloat(op, "bias", bias);
  const device = expectSameDevice(op, x, weight, bias);
  expectRank(op, "x", x, 5);
  expectRank(op, "weight", weight, 4);
  const hidden = opts?.hidden;
  if (!Number.isInteger(hidden) || hidden < 1)
    throw new PulmoError(`${op}: 'hidden' must be a positive integer, got ${hidden}`);
  const [n, steps, cin, h, w] = x.shape as [number, number, number, number, number];
  const k = opts.kernel ?? weight.shape[2]!;
  if (!Number.isInteger(k) || k < 1 || k % 2 === 0)
    throw new PulmoError(`${op}: 'kernel' must be a positive odd integer (padding k>>1 keeps H, W), got ${k}`);
  expectShape(op, "weight", weight, [4 * hidden, cin + hidden, k, k]);
  if (bias) expectShape(op, "bias", bias, [4 * hidden]);
  const act = opts.recurrentActivation ?? "sigmoid";
  actCode(op, act);
  if (steps < 1) throw new PulmoError(`${op}: 'x' must have at least one time step (axis 1), got ${shapeStr(x.shape)}`);
  const returnSequences = opts.returnSequences ?? true;

  const state = [n, hidden, h, w];
  // h_0 = 0: step 0's conv over concat(x_0, h_0) is the conv of x_0 with the weight's input half
  // (skips the concat and the hidden half's FLOPs, 1/(2T) of the layer's conv work at Cin = hidden)
  const wx = slice(weight, 1, 0, cin);
  let hPrev: Tensor | null = null;
  let cPrev = Tensor.zeros(device, state);
  const hs: Tensor[] = [];
  for (let t = 0; t < steps; t++) {
    const xs = slice(x, 1, t, t + 1);
    const xt = reshape(xs, [n, cin, h, w]);
    const inp = hPrev ? concat([xt, hPrev], 1) : null;
    const z = inp ? conv2d(inp, weight, bias, { padding: k >> 1 }) : conv2d(xt, wx, bias, { padding: k >> 1 });
    const packed = lstmCell(z, cPrev, act);
    const hp = slice(packed, 1, 0, 1);
    const cp = slice(packed, 1, 1, 2);
    const hNext = reshape(hp, state);
    const cNext = reshape(cp, state);
    // The tape keeps what each backward needs (retained); these handles can go.
    for (const tmp of [xs, xt, inp, z, packed, hp, cp, cPrev]) tmp?.dispose();
    if (returnSequences) hs.push(hNext);
    else hPrev?.dispose(); // an h_t nobody returns
    hPrev = hNext;
    cPrev = cNext;
  }
  cPrev.dispose();
  wx.dispose();
  if (!returnSequences) return hPrev!;
  const y = stack(hs, 1);
  for (const t of hs) t.dispose();
  return y;
}

import { keep, PulmoError, shapeStr, Tensor, tidy, type Device } from "../runtime/index.ts";
import { backward } from "./autograd.ts";
import { noGrad } from "./tape.ts";
import { checkpointBytes } from "./checkpoint.ts";
import { groups1d } from "./launch.ts";
import type { HostArray, Module } from "./module.ts";
import type { Optimizer } from "./optim.ts";
import type { Schedule } from "./schedule.ts";

/** One training example: host arrays uploaded per step. */
export interface Sample {
  input: HostArray;
  target: HostArray;
}

export interface StepInfo {
  epoch: number;
  step: number;
  loss: number;
  lr: number;
}

/** Samples of one epoch: a fixed list, or a function of the epoch (it may augment). Each sample's
 * input and target carry a leading batch dimension (usually 1); `fit` stacks `batchSize` of them
 * along it. */
export type SampleSource = readonly Sample[] | ((epoch: number) => Iterable<Sample>);

/** One entry of the history `fit` returns. */
export interface FitEpoch {
  epoch: number;
  /** mean training loss over the epoch's steps */
  loss: number;
  /** mean validation loss (absent without validation samples) */
  valLoss?: number;
  /** mean validation Dice of the thresholded predictions (absent without validation samples) */
  valDice?: number;
  /** learning rate used during the epoch */
  lr: number;
  /** wall-clock seconds of the epoch, validation and checkpoint included */
  seconds: number;
  /** true when this epoch's checkpoint was written (a new best validation Dice) */
  saved?: boolean;
}

export interface FitOptions {
  model: Module & { forward(x: Tensor): Tensor };
  optimizer: Optimizer;
  /** scalar loss ([1]) from the network output (logits) and the stacked targets */
  loss: (output: Tensor, target: Tensor) => Tensor;
  /** training samples */
  samples: SampleSource;
  /** validation samples: enables the per-epoch validation loss and Dice, best-checkpoint keeping
   * and early stopping */
  validation?: SampleSource;
  /** last epoch + 1 (epochs run: startEpoch .. epochs - 1) */
  epochs: number;
  /** first epoch (resuming from a checkpoint: the stored epoch + 1) */
  startEpoch?: number;
  /** samples stacked along N per step (default 1); the last batch may be smaller */
  batchSize?: number;
  /** samples per validation forward (default batchSize) */
  validationBatchSize?: number;
  /** drop the last, smaller batch of an epoch (default false) */
  dropLast?: boolean;
  /** visit the training samples in a seeded random order each epoch (default false) */
  shuffle?: boolean;
  /** seed of the shuffled orders (default 0); the order of epoch e depends only on (seed, e) */
  seed?: number;
  schedule?: Schedule;
  /** stop after this many epochs without a validation-Dice improvement (needs validation) */
  patience?: number;
  /** an improvement must beat the best Dice by more than this (default 0) */
  minDelta?: number;
  /** how outputs are thresholded for the Dice: "sigmoid" (logit > 0, per channel) or "softmax"
   * (argmax over channels, Dice of the foreground classes 1..C-1 averaged). Default: sigmoid for
   * 1-channel outputs, softmax otherwise. */
  activation?: "sigmoid" | "softmax";
  /** receives checkpointBytes(model, optimizer, schedule, epoch) after each epoch with a new best
   * validation Dice (after every epoch without validation). Node: `checkpointFile(path)` from
   * src/platform/training.ts writes it atomically. */
  saveCheckpoint?: (bytes: Uint8Array, info: FitEpoch) => void | Promise<void>;
  /** stored as the checkpoint's `config` (default: the model's `config` property, if any) */
  checkpointConfig?: unknown;
  /** progress lines: `final` false for redraws of the running epoch (throttled to 10/s), true
   * once per epoch and for closing messages. Node: `terminalProgress()`. */
  progress?: (line: string, final: boolean) => void;
  signal?: AbortSignal;
  onStep?: (info: StepInfo) => void;
  /** after each epoch, once its checkpoint is written */
  onEpoch?: (info: FitEpoch) => void | Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Host-side batching

/** Concatenates host arrays along dim 0 (their other dims must agree). */
export function stackHost(arrays: readonly HostArray[], what = "input"): HostArray {
  const first = arrays[0];
  if (!first) throw new PulmoError(`fit: cannot stack an empty batch`);
  if (arrays.length === 1) return first;
  const rest = first.shape.slice(1);
  let n = 0, size = 0;
  arrays.forEach((a, i) => {
    if (a.shape.length !== first.shape.length || a.shape.slice(1).some((d, k) => d !== rest[k]))
      throw new PulmoError(`fit: batch ${what} ${i} has shape ${shapeStr(a.shape)}, sample 0 has ${shapeStr(first.shape)}; only dim 0 may differ`);
    n += a.shape[0]!;
    size += a.data.length;
  });
  const data = new Float32Array(size);
  let at = 0;
  for (const a of arrays) {
    data.set(a.data, at);
    at += a.data.length;
  }
  return { data, shape: [n, ...rest] };
}

function stackSamples(samples: readonly Sample[]): Sample {
  return { input: stackHost(samples.map((s) => s.input), "input"), target: stackHost(samples.map((s) => s.target), "target") };
}

/** mulberry32: a small seeded 32-bit generator of numbers in [0, 1) (also the phantom's). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seeded order of epoch `epoch` (Fisher-Yates). */
export function shuffledOrder(n: number, seed: number, epoch: number): number[] {
  const r = rng(Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

interface EpochBatches {
  batches: Iterable<Sample>;
  /** number of batches when known up front */
  count?: number;
}

function epochBatches(src: SampleSource, epoch: number, batchSize: number, dropLast: boolean, shuffle: boolean, seed: number): EpochBatches {
  let list: Iterable<Sample> = typeof src === "function" ? src(epoch) : src;
  if (shuffle) {
    const arr = Array.isArray(list) ? (list as readonly Sample[]) : [...list];
    list = shuffledOrder(arr.length, seed, epoch).map((i) => arr[i]!);
  }
  const n = Array.isArray(list) ? list.length : undefined;
  const count = n === undefined ? undefined : dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  function* gen(): Generator<Sample> {
    let group: Sample[] = [];
    for (const s of list) {
      group.push(s);
      if (group.length === batchSize) {
        yield stackSamples(group);
        group = [];
      }
    }
    if (group.length && !dropLast) yield stackSamples(group);
  }
  return { batches: gen(), count };
}

// ---------------------------------------------------------------------------------------------
// Dice of thresholded predictions (host)

function dice(tp: number, fp: number, fn: number): number {
  const d = 2 * tp + fp + fn;
  return d === 0 ? 1 : (2 * tp) / d;
}

/** Per-sample Dice of thresholded network outputs (logits [N, C, ...spatial]) against targets:
 * "sigmoid": prediction logit > 0 (sigmoid > 0.5) against target > 0.5, same shape, Dice averaged
 * over the C channels; "softmax": argmax over C against class indices ([N, ...spatial] or
 * [N, 1, ...spatial]) or a one-hot/probability target of the output's shape (argmax too), Dice of
 * the foreground classes 1..C-1 averaged. A class empty in both prediction and target scores 1. */
export function segmentationDice(
  output: Float32Array,
  outShape: readonly number[],
  target: Float32Array,
  targetShape: readonly number[],
  activation: "sigmoid" | "softmax",
): number[] {
  if (outShape.length < 2) throw new PulmoError(`fit: output must be [N, C, ...], got ${shapeStr(outShape)}`);
  const n = outShape[0]!, c = outShape[1]!;
  const s = output.length / (n * c);
  const sameShape = targetShape.length === outShape.length && targetShape.every((d, i) => d === outShape[i]);
  const out: number[] = [];
  if (activation === "sigmoid") {
    if (!sameShape)
      throw new PulmoError(`fit: Dice needs a target of the output's shape ${shapeStr(outShape)} for sigmoid outputs, got ${shapeStr(targetShape)}`);
    for (let b = 0; b < n; b++) {
      let sum = 0;
      for (let ch = 0; ch < c; ch++) {
        let tp = 0, fp = 0, fn = 0;
        const base = (b * c + ch) * s;
        for (let i = base; i < base + s; i++) {
          const p = output[i]! > 0, g = target[i]! > 0.5;
          if (p && g) tp++;
          else if (p) fp++;
          else if (g) fn++;
        }
        sum += dice(tp, fp, fn);
      }
      out.push(sum / c);
    }
    return out;
  }
  if (c < 2) throw new PulmoError(`fit: softmax Dice needs at least 2 output channels, got ${shapeStr(outShape)}`);
  if (!sameShape && target.length !== n * s)
    throw new PulmoError(`fit: Dice target ${shapeStr(targetShape)} is neither class indices for output ${shapeStr(outShape)} nor of its shape`);
  const argmax = (data: Float32Array, b: number, i: number): number => {
    let best = 0, bv = data[b * c * s + i]!;
    for (let ch = 1; ch < c; ch++) {
      const v = data[(b * c + ch) * s + i]!;
      if (v > bv || Number.isNaN(bv)) (best = ch), (bv = v);
    }
    return best;
  };
  const tp = new Float64Array(c), fp = new Float64Array(c), fn = new Float64Array(c);
  for (let b = 0; b < n; b++) {
    tp.fill(0), fp.fill(0), fn.fill(0);
    for (let i = 0; i < s; i++) {
      const p = argmax(output, b, i);
      const g = sameShape ? argmax(target, b, i) : Math.round(target[b * s + i]!);
      if (p === g) tp[p]++;
      else {
        fp[p]++;
        if (g >= 0 && g < c) fn[g]++;
      }
    }
    let sum = 0;
    for (let ch = 1; ch < c; ch++) sum += dice(tp[ch]!, fp[ch]!, fn[ch]!);
    out.push(sum / (c - 1));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Progress lines

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const t = Math.max(0, Math.round(seconds));
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
  const mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function bar(done: number, total: number | undefined, width = 20): string {
  if (!total) return "";
  const k = Math.min(width, Math.round((done / total) * width));
  return `[${"#".repeat(k)}${".".repeat(width - k)}] `;
}

const fmt = (v: number | undefined, digits = 4) => (v === undefined ? "-" : v.toFixed(digits));

// ---------------------------------------------------------------------------------------------
// The loop

function cancelled(signal: AbortSignal | undefined, where: string): void {
  if (signal?.aborted) throw new PulmoError(`training cancelled (${where})`);
}

/** Parameters watched for non-finite gradients, in state-dict order (then any optimizer parameter
 * the model does not name). */
function watchedParameters(model: Module, optimizer: Optimizer): { names: string[]; params: Tensor[] } {
  const inOpt = new Set(optimizer.params);
  const names: string[] = [], params: Tensor[] = [];
  for (const [k, t] of model.namedParameters())
    if (inOpt.delete(t)) {
      names.push(k);
      params.push(t);
    }
  for (const t of inOpt) {
    names.push(`optimizer parameter ${optimizer.params.indexOf(t)} ${shapeStr(t.shape)}`);
    params.push(t);
  }
  return { names, params };
}

/**
 * The training loop of issue 4: mini-batches of `batchSize` host samples stacked along N (one
 * upload per step), optional seeded shuffling, per-epoch validation (loss and mean Dice of the
 * thresholded predictions), best-checkpoint keeping through `saveCheckpoint`, early stopping after
 * `patience` epochs without a Dice improvement, progress lines, and cancellation by `signal`.
 *
 * Every step checks the loss and every gradient for NaN/Inf on the GPU (kernels/optim/nonfinite.wgsl
 * writes one flag per parameter) and reads the flags back once, together with the loss, before the
 * optimizer step: a non-finite value stops training with a PulmoError naming the epoch, the step and
 * the first parameter (state-dict order) whose gradient went non-finite, and leaves the weights as
 * they were after the last good step. Checkpoints are only ever replaced whole (the Node writer is
 * atomic), so the last good one survives. Returns the history, one entry per epoch run.
 */
export async function fit(o: FitOptions): Promise<FitEpoch[]> {
  const batchSize = o.batchSize ?? 1;
  const valBatch = o.validationBatchSize ?? batchSize;
  const startEpoch = o.startEpoch ?? 0;
  const isPosInt = (v: number) => Number.isInteger(v) && v > 0;
  if (!isPosInt(o.epochs)) throw new PulmoError(`fit: epochs must be a positive integer, got ${o.epochs}`);
  if (!Number.isInteger(startEpoch) || startEpoch < 0 || startEpoch >= o.epochs)
    throw new PulmoError(`fit: startEpoch must be an integer in [0, ${o.epochs}), got ${startEpoch}`);
  if (!isPosInt(batchSize)) throw new PulmoError(`fit: batchSize must be a positive integer, got ${batchSize}`);
  if (!isPosInt(valBatch)) throw new PulmoError(`fit: validationBatchSize must be a positive integer, got ${valBatch}`);
  if (o.patience !== undefined && !isPosInt(o.patience)) throw new PulmoError(`fit: patience must be a positive integer, got ${o.patience}`);
  if (o.patience !== undefined && !o.validation) throw new PulmoError("fit: early stopping (patience) needs validation samples");
  if (o.activation !== undefined && o.activation !== "sigmoid" && o.activation !== "softmax")
    throw new PulmoError(`fit: activation must be "sigmoid" or "softmax", got ${String(o.activation)}`);
  const minDelta = o.minDelta ?? 0;
  const seed = o.seed ?? 0;
  const { model, optimizer } = o;
  const device: Device = optimizer.params[0]!.device;
  const watched = watchedParameters(model, optimizer);
  const P = watched.params.length;
  // flags[0..P) per parameter, flags[P] the loss's bits: one readback per step.
  const flags = keep(Tensor.empty(device, [P + 1], "u32", "non-finite flags"));

  const history: FitEpoch[] = [];
  let step = 0;
  let best = -Infinity, bestEpoch = -1, sinceBest = 0;
  let lastDice: number | undefined;
  let lastSteps: number | undefined;
  let openLine: string | null = null;
  const show = (line: string, final: boolean) => {
    if (!o.progress) return;
    o.progress(line, final);
    openLine = final ? null : line;
  };

  /** One optimizer step on a stacked batch; returns the loss. */
  const trainStep = async (batch: Sample, epoch: number): Promise<number> => {
    const loss = tidy(device, () => {
      const out = model.forward(Tensor.from(device, batch.input.data, batch.input.shape));
      const l = o.loss(out, Tensor.from(device, batch.target.data, batch.target.shape));
      if (l.size !== 1) throw new PulmoError(`fit: the loss must be a scalar [1] tensor, got ${shapeStr(l.shape)}`);
      backward(l);
      return l;
    });
    device.clear(flags.buffer, flags.byteOffset, flags.bytes);
    watched.params.forEach((p, index) => {
      const grad = p.requiresGrad ? p.grad : null;
      if (!grad) return;
      device.dispatch({
        kernel: "optim/nonfinite",
        bindings: { grad, flags },
        uniforms: { n: grad.size, index },
        workgroups: groups1d(grad.size),
        label: `nonfinite [${grad.shape}]`,
      });
    });
    device.copy(loss.buffer, loss.byteOffset, flags.buffer, flags.byteOffset + 4 * P, 4);
    loss.dispose();
    const bits = (await flags.read()) as Uint32Array;
    const value = new Float32Array(bits.buffer, bits.byteOffset + 4 * P, 1)[0]!;
    const bad = watched.names.filter((_, i) => bits[i] !== 0);
    if (!Number.isFinite(value) || bad.length) {
      optimizer.zeroGrad();
      const where = `at epoch ${epoch}, step ${step}`;
      const grads = bad.length
        ? `the gradient of '${bad[0]}' is non-finite (the first in state-dict order; ${bad.length} of ${P} parameters have non-finite gradients)`
        : "no gradient is non-finite";
      throw new PulmoError(
        Number.isFinite(value)
          ? `fit: non-finite gradient ${where}: ${grads}; loss ${value}. The weights are those of the last good step.`
          : `fit: loss is ${value} ${where}; ${grads}. The weights are those of the last good step.`,
      );
    }
    optimizer.step();
    optimizer.zeroGrad();
    return value;
  };

  const validate = async (epoch: number): Promise<{ loss: number; dice: number }> => {
    model.eval();
    try {
      let lossSum = 0, lossCount = 0;
      const dices: number[] = [];
      const { batches } = epochBatches(o.validation!, epoch, valBatch, false, false, 0);
      for (const batch of batches) {
        cancelled(o.signal, `validation of epoch ${epoch}`);
        const { out, l } = tidy(device, () =>
          noGrad(() => {
            const out = model.forward(Tensor.from(device, batch.input.data, batch.input.shape));
            return { out, l: o.loss(out, Tensor.from(device, batch.target.data, batch.target.shape)) };
          }),
        );
        try {
          lossSum += (await l.read())[0]!;
          lossCount++;
          const data = (await out.read()) as Float32Array;
          const activation = o.activation ?? (out.shape[1] === 1 ? "sigmoid" : "softmax");
          dices.push(...segmentationDice(data, out.shape, batch.target.data, batch.target.shape, activation));
        } finally {
          out.dispose();
          l.dispose();
        }
      }
      if (lossCount === 0) throw new PulmoError(`fit: validation of epoch ${epoch} had no samples`);
      return { loss: lossSum / lossCount, dice: dices.reduce((a, b) => a + b, 0) / dices.length };
    } finally {
      model.train();
    }
  };

  try {
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      const t0 = performance.now();
      if (o.schedule) optimizer.lr = o.schedule.lr;
      model.train();
      const { batches, count } = epochBatches(o.samples, epoch, batchSize, o.dropLast ?? false, o.shuffle ?? false, seed);
      const total = count ?? lastSteps;
      const head = () => `epoch ${epoch + 1}/${o.epochs} `;
      let sum = 0, steps = 0, lastDraw = -Infinity;
      for (const batch of batches) {
        cancelled(o.signal, `epoch ${epoch}, step ${step}`);
        const value = await trainStep(batch, epoch);
        sum += value;
        steps++;
        const info: StepInfo = { epoch, step: step++, loss: value, lr: optimizer.lr };
        o.onStep?.(info);
        const now = performance.now();
        if (o.progress && now - lastDraw >= 100) {
          lastDraw = now;
          const rate = steps / ((now - t0) / 1000);
          const eta = total ? clock((total - steps) / rate) : "--:--";
          show(
            `${head()}${bar(steps, total)}${steps}/${total ?? "?"} loss ${fmt(sum / steps)} dice ${fmt(lastDice)} ${rate.toFixed(1)} it/s ETA ${eta}`,
            false,
          );
        }
      }
      if (steps === 0) throw new PulmoError(`fit: epoch ${epoch} had no training batches`);
      lastSteps = steps;
      const trainSeconds = (performance.now() - t0) / 1000;
      const info: FitEpoch = { epoch, loss: sum / steps, lr: optimizer.lr, seconds: 0 };
      let improved = !o.validation;
      if (o.validation) {
        const v = await validate(epoch);
        info.valLoss = v.loss;
        info.valDice = lastDice = v.dice;
        if (v.dice > best + minDelta || bestEpoch < 0) {
          improved = true;
          best = v.dice;
          bestEpoch = epoch;
          sinceBest = 0;
        } else sinceBest++;
      }
      if (o.schedule) o.schedule.step(info.valLoss ?? info.loss);
      if (improved && o.saveCheckpoint) {
        const config = o.checkpointConfig ?? (model as { config?: unknown }).config;
        const bytes = await checkpointBytes({ model, optimizer, schedule: o.schedule, epoch, config });
        info.seconds = (performance.now() - t0) / 1000;
        await o.saveCheckpoint(bytes, info);
        info.saved = true;
      }
      info.seconds = (performance.now() - t0) / 1000;
      history.push(info);
      show(
        `${head()}${bar(steps, steps)}${steps}/${steps} loss ${fmt(info.loss)}` +
          (o.validation ? ` val_loss ${fmt(info.valLoss)} val_dice ${fmt(info.valDice)}${improved ? " *" : ""}` : "") +
          ` ${(steps / trainSeconds).toFixed(1)} it/s ${info.seconds.toFixed(1)}s lr ${info.lr.toExponential(2)}${info.saved ? " saved" : ""}`,
        true,
      );
      await o.onEpoch?.(info);
      if (o.patience !== undefined && sinceBest >= o.patience) {
        show(`early stopping: no validation Dice improvement for ${sinceBest} epochs (best ${fmt(best)} at epoch ${bestEpoch + 1})`, true);
        break;
      }
    }
  } catch (e) {
    if (openLine !== null) show(openLine, true);
    throw e;
  } finally {
    flags.dispose();
  }
  return history;
}

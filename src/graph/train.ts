import { PulmoError, Tensor, tidy } from "../runtime/index.ts";
import { backward, noGrad } from "./index.ts";
import type { Module, HostArray } from "./module.ts";
import type { Optimizer } from "./optim.ts";
import type { Schedule } from "./schedule.ts";

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

export interface EpochInfo {
  epoch: number;
  meanLoss: number;
  /** validation loss, when validation samples are given */
  validationLoss?: number;
  lr: number;
}

export interface TrainOptions {
  model: Module & { forward(x: Tensor): Tensor };
  optimizer: Optimizer;
  /** scalar loss from the network output and the target */
  loss: (output: Tensor, target: Tensor) => Tensor;
  /** training samples for one epoch (called once per epoch, so it may shuffle or augment) */
  samples: (epoch: number) => Iterable<Sample>;
  epochs: number;
  /** first epoch (resuming from a checkpoint) */
  startEpoch?: number;
  validation?: () => Iterable<Sample>;
  schedule?: Schedule;
  signal?: AbortSignal;
  onStep?: (info: StepInfo) => void;
  /** after each epoch (save a checkpoint here) */
  onEpoch?: (info: EpochInfo) => void | Promise<void>;
}

function cancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new PulmoError("training cancelled");
}

/** The fine-tuning loop: forward, loss, backward, optimizer step per sample; validation and the
 * schedule per epoch. Every intermediate is released each step, so memory stays flat. */
export async function train(o: TrainOptions): Promise<EpochInfo[]> {
  if (!(o.epochs > 0)) throw new PulmoError(`train: epochs must be > 0, got ${o.epochs}`);
  const device = o.optimizer.params[0]!.device;
  const history: EpochInfo[] = [];
  let step = 0;
  for (let epoch = o.startEpoch ?? 0; epoch < o.epochs; epoch++) {
    if (o.schedule) o.optimizer.lr = o.schedule.lr;
    o.model.train();
    let total = 0, count = 0;
    for (const s of o.samples(epoch)) {
      cancelled(o.signal);
      const loss = tidy(device, () => {
        const out = o.model.forward(Tensor.from(device, s.input.data, s.input.shape));
        const l = o.loss(out, Tensor.from(device, s.target.data, s.target.shape));
        backward(l);
        return l;
      });
      o.optimizer.step();
      o.optimizer.zeroGrad();
      const value = (await loss.read())[0]!;
      loss.dispose();
      if (!Number.isFinite(value)) throw new PulmoError(`train: loss is ${value} at epoch ${epoch}, step ${step}`);
      total += value;
      count++;
      o.onStep?.({ epoch, step: step++, loss: value, lr: o.optimizer.lr });
    }
    if (count === 0) throw new PulmoError(`train: epoch ${epoch} had no samples`);
    const info: EpochInfo = { epoch, meanLoss: total / count, lr: o.optimizer.lr };
    if (o.validation) info.validationLoss = await evaluate(o.model, o.loss, o.validation(), o.signal);
    if (o.schedule) o.schedule.step(info.validationLoss ?? info.meanLoss);
    history.push(info);
    await o.onEpoch?.(info);
  }
  return history;
}

/** Mean loss over samples in eval mode, without recording a graph. */
export async function evaluate(model: Module & { forward(x: Tensor): Tensor }, lossFn: TrainOptions["loss"], samples: Iterable<Sample>, signal?: AbortSignal): Promise<number> {
  model.eval();
  let total = 0, count = 0;
  for (const s of samples) {
    cancelled(signal);
    const device = model.device;
    const loss = tidy(device, () =>
      noGrad(() => lossFn(model.forward(Tensor.from(device, s.input.data, s.input.shape)), Tensor.from(device, s.target.data, s.target.shape))),
    );
    total += (await loss.read())[0]!;
    loss.dispose();
    count++;
  }
  model.train();
  return count ? total / count : NaN;
}

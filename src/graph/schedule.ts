import { PulmoError } from "../runtime/index.ts";

/** Learning-rate schedules, stepped once per epoch. `state()` goes into checkpoints. */
export interface Schedule {
  /** learning rate for the current epoch */
  readonly lr: number;
  /** advance one epoch; plateau schedules take the validation metric (lower is better) */
  step(metric?: number): number;
  state(): Record<string, number>;
  loadState(s: Record<string, number>): void;
}

abstract class EpochSchedule implements Schedule {
  epoch = 0;
  constructor(readonly baseLr: number) {
    if (!(baseLr > 0)) throw new PulmoError(`schedule: learning rate must be > 0, got ${baseLr}`);
  }
  abstract get lr(): number;
  step(): number {
    this.epoch++;
    return this.lr;
  }
  state(): Record<string, number> {
    return { epoch: this.epoch };
  }
  loadState(s: Record<string, number>): void {
    this.epoch = s.epoch ?? 0;
  }
}

export class ConstantLR extends EpochSchedule {
  get lr(): number {
    return this.baseLr;
  }
}

/** torch.optim.lr_scheduler.StepLR: lr · gamma^floor(epoch / stepSize). */
export class StepLR extends EpochSchedule {
  constructor(baseLr: number, readonly stepSize: number, readonly gamma = 0.1) {
    super(baseLr);
  }
  get lr(): number {
    return this.baseLr * this.gamma ** Math.floor(this.epoch / this.stepSize);
  }
}

/** nnU-Net's poly schedule: lr · (1 − epoch / maxEpochs)^0.9. */
export class PolyLR extends EpochSchedule {
  constructor(baseLr: number, readonly maxEpochs: number, readonly exponent = 0.9) {
    super(baseLr);
  }
  get lr(): number {
    return this.baseLr * Math.max(0, 1 - this.epoch / this.maxEpochs) ** this.exponent;
  }
}

/** torch.optim.lr_scheduler.ReduceLROnPlateau, mode "min", threshold 1e-4 relative; defaults
 * factor 0.5 and patience 3 as in the Recurrent 3D-DenseUNet paper. */
export class ReduceLROnPlateau implements Schedule {
  lr: number;
  private best = Infinity;
  private bad = 0;
  private cooldownLeft = 0;
  constructor(
    baseLr: number,
    readonly factor = 0.5,
    readonly patience = 3,
    readonly minLr = 0,
    readonly threshold = 1e-4,
    readonly cooldown = 0,
  ) {
    if (!(factor > 0 && factor < 1)) throw new PulmoError(`ReduceLROnPlateau: factor must be in (0, 1), got ${factor}`);
    this.lr = baseLr;
  }
  step(metric?: number): number {
    if (metric === undefined || !Number.isFinite(metric)) throw new PulmoError(`ReduceLROnPlateau.step needs a finite metric, got ${metric}`);
    if (metric < this.best * (1 - this.threshold)) {
      this.best = metric;
      this.bad = 0;
    } else this.bad++;
    if (this.cooldownLeft > 0) {
      this.cooldownLeft--;
      this.bad = 0;
    }
    if (this.bad > this.patience) {
      this.lr = Math.max(this.lr * this.factor, this.minLr);
      this.cooldownLeft = this.cooldown;
      this.bad = 0;
    }
    return this.lr;
  }
  state(): Record<string, number> {
    return { lr: this.lr, best: this.best, bad: this.bad, cooldownLeft: this.cooldownLeft };
  }
  loadState(s: Record<string, number>): void {
    this.lr = s.lr ?? this.lr;
    this.best = s.best ?? Infinity;
    this.bad = s.bad ?? 0;
    this.cooldownLeft = s.cooldownLeft ?? 0;
  }
}

import { keep, PulmoError, Tensor, type Device } from "../runtime/index.ts";
import { groups1d } from "./launch.ts";
import { gridGroups, vec4Launch } from "./ops/activation.ts";

/** One fused dispatch per parameter tensor per step; state lives on the GPU. */
export interface Optimizer {
  readonly params: Tensor[];
  lr: number;
  step(): void;
  zeroGrad(): void;
  /** moments etc. by `<param index>.<name>`, for checkpoints */
  state(): Map<string, Tensor>;
  loadState(state: Map<string, Float32Array>, stepCount: number): void;
  stepCount: number;
  dispose(): void;
}

const GRAD_NORM_ITEMS = 64 * 16; // elements per workgroup in grad_norm.wgsl

abstract class BaseOptimizer implements Optimizer {
  readonly device: Device;
  stepCount = 0;
  /** clip[0]: factor applied to every gradient (1 without clipping), clip[1]: last global norm */
  protected clip: Tensor;
  private clipOn = false;
  private maxNorm = 0;

  constructor(
    readonly params: Tensor[],
    public lr: number,
  ) {
    if (params.length === 0) throw new PulmoError("optimizer: no parameters to optimise");
    this.device = params[0]!.device;
    this.clip = Tensor.from(this.device, [1, 0], [2]);
    keep(this.clip);
  }

  /** Clip gradients by their global L2 norm before each step (torch.nn.utils.clip_grad_norm_). */
  clipGradNorm(maxNorm: number): this {
    if (!(maxNorm > 0)) throw new PulmoError(`clipGradNorm: max norm must be > 0, got ${maxNorm}`);
    this.clipOn = true;
    this.maxNorm = maxNorm;
    return this;
  }

  /** The global gradient norm measured at the last step (a GPU read). */
  async lastGradNorm(): Promise<number> {
    return (await this.clip.read())[1]!;
  }

  private computeClip(grads: Tensor[]): void {
    const counts = grads.map((g) => Math.ceil(g.size / GRAD_NORM_ITEMS));
    const total = counts.reduce((a, b) => a + b, 0);
    const partials = Tensor.empty(this.device, [Math.max(total, 1)]);
    let offset = 0;
    grads.forEach((grad, i) => {
      this.device.dispatch({
        kernel: "optim/grad_norm",
        entry: "partial",
        bindings: { grad, partials, clip: this.clip },
        uniforms: { n: grad.size, offset, count: total, max_norm: this.maxNorm },
        workgroups: counts[i]!,
        label: `clip_grad_norm partial [${grad.shape}]`,
      });
      offset += counts[i]!;
    });
    this.device.dispatch({
      kernel: "optim/grad_norm",
      entry: "finish",
      bindings: { grad: grads[0]!, partials, clip: this.clip },
      uniforms: { n: 0, offset: 0, count: total, max_norm: this.maxNorm },
      workgroups: 1,
      label: "clip_grad_norm finish",
    });
    partials.dispose();
  }

  step(): void {
    const live = this.params.filter((p) => p.requiresGrad && p.grad);
    if (live.length === 0) return;
    for (const p of live)
      if (p.grad!.size !== p.size) throw new PulmoError(`optimizer: gradient of ${p} has ${p.grad!.size} elements`);
    this.stepCount++;
    if (this.clipOn) this.computeClip(live.map((p) => p.grad!));
    for (const p of live) this.update(this.params.indexOf(p), p, p.grad!);
  }

  protected abstract update(index: number, p: Tensor, grad: Tensor): void;

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  abstract state(): Map<string, Tensor>;

  loadState(state: Map<string, Float32Array>, stepCount: number): void {
    const mine = this.state();
    for (const [k, t] of mine) {
      const data = state.get(k);
      if (!data) throw new PulmoError(`optimizer state: missing '${k}'`);
      if (data.length !== t.size) throw new PulmoError(`optimizer state '${k}': ${data.length} values, expected ${t.size}`);
      this.device.upload(t.buffer, t.byteOffset, data);
    }
    this.stepCount = stepCount;
  }

  dispose(): void {
    for (const t of this.state().values()) t.dispose();
    this.clip.dispose();
  }
}


function zerosLike(p: Tensor): Tensor {
  const t = Tensor.zeros(p.device, p.shape);
  keep(t);
  return t;
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/** torch.optim.SGD (dampening 0). */
export class SGD extends BaseOptimizer {
  private velocity: Tensor[];
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  constructor(params: Tensor[], opts: SgdOptions) {
    super(params, opts.lr);
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    if (this.nesterov && this.momentum <= 0) throw new PulmoError("SGD: Nesterov momentum requires momentum > 0");
    this.velocity = params.map(zerosLike);
  }
  protected update(i: number, p: Tensor, grad: Tensor): void {
    vec4Launch({ p, grad, velocity: this.velocity[i]! }, (v4, bindings, n) =>
      this.device.dispatch({
        kernel: "optim/sgd",
        entry: v4 ? "main4" : "main",
        bindings: { ...bindings, clip: this.clip },
        uniforms: { n, lr: this.lr, momentum: this.momentum, weight_decay: this.weightDecay, nesterov: this.nesterov ? 1 : 0 },
        workgroups: v4 ? gridGroups(n) : groups1d(n),
        label: `sgd [${p.shape}]`,
      }),
    );
  }
  state(): Map<string, Tensor> {
    return new Map(this.velocity.map((v, i) => [`${i}.momentum_buffer`, v]));
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** torch.optim.Adam (weight decay added to the gradient) and, with `decoupled`, AdamW. */
export class Adam extends BaseOptimizer {
  private m: Tensor[];
  private v: Tensor[];
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  constructor(
    params: Tensor[],
    opts: AdamOptions = {},
    private readonly decoupled = false,
  ) {
    super(params, opts.lr ?? 1e-3);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? (decoupled ? 1e-2 : 0);
    this.m = params.map(zerosLike);
    this.v = params.map(zerosLike);
  }
  protected update(i: number, p: Tensor, grad: Tensor): void {
    // Bias corrections in f64 on the host: 1 - β^t loses digits in f32 for small t.
    const bc1 = 1 - this.beta1 ** this.stepCount;
    const bc2 = 1 - this.beta2 ** this.stepCount;
    vec4Launch({ p, grad, m: this.m[i]!, v: this.v[i]! }, (v4, bindings, n) =>
      this.device.dispatch({
        kernel: "optim/adam",
        entry: v4 ? "main4" : "main",
        bindings: { ...bindings, clip: this.clip },
        uniforms: {
          n,
          lr: this.lr,
          beta1: this.beta1,
          beta2: this.beta2,
          eps: this.eps,
          weight_decay: this.weightDecay,
          decoupled: this.decoupled ? 1 : 0,
          step_size: this.lr / bc1,
          sqrt_bc2: Math.sqrt(bc2),
        },
        workgroups: v4 ? gridGroups(n) : groups1d(n),
        label: `${this.decoupled ? "adamw" : "adam"} [${p.shape}]`,
      }),
    );
  }
  state(): Map<string, Tensor> {
    const s = new Map<string, Tensor>();
    this.m.forEach((t, i) => s.set(`${i}.exp_avg`, t));
    this.v.forEach((t, i) => s.set(`${i}.exp_avg_sq`, t));
    return s;
  }
}

/** torch.optim.AdamW: decoupled weight decay (default 0.01). */
export class AdamW extends Adam {
  constructor(params: Tensor[], opts: AdamOptions = {}) {
    super(params, opts, true);
  }
}

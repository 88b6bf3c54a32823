import { PulmoError, Tensor, numel, type Device } from "../runtime/index.ts";
import { Module } from "./module.ts";
import { conv2d, conv3d, convTranspose2d, convTranspose3d, type ConvOptions, type ConvTransposeOptions } from "./ops/conv.ts";
import { batchNorm, instanceNorm, layerNorm } from "./ops/norm.ts";
import { linear } from "./ops/matmul.ts";
import { prelu } from "./ops/prelu.ts";
import { Generator, dropout, spatialDropout } from "./ops/dropout.ts";

/** Layers with PyTorch's parameter names, layouts and default initialisation
 * (kaiming-uniform a=√5, i.e. U(±1/√fan_in) for weights and biases), seeded for reproducibility. */

let initState = 0x2545f491;
/** Seeds the host generator used to initialise new layers (mulberry32). */
export function setInitSeed(seed: number): void {
  initState = seed >>> 0;
}
function nextUniform(): number {
  initState = (initState + 0x6d2b79f5) >>> 0;
  let t = initState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function uniformInit(shape: readonly number[], bound: number): Float32Array {
  const n = numel(shape);
  return Float32Array.from({ length: n }, () => (nextUniform() * 2 - 1) * bound);
}

const tuple = (v: number | number[], n: number, what: string): number[] => {
  const t = typeof v === "number" ? new Array(n).fill(v) : v;
  if (t.length !== n) throw new PulmoError(`${what}: expected ${n} values, got [${t}]`);
  return t;
};

export interface ConvLayerOptions extends ConvOptions {
  bias?: boolean;
}

abstract class ConvNd extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(device: Device, readonly dims: 2 | 3, readonly cin: number, readonly cout: number, kernel: number | number[], readonly opts: ConvLayerOptions & ConvTransposeOptions, transposed: boolean) {
    super(device);
    const k = tuple(kernel, dims, "kernel");
    const groups = opts.groups ?? 1;
    const shape = transposed ? [cin, cout / groups, ...k] : [cout, cin / groups, ...k];
    // PyTorch computes fan_in from weight.size(1) * receptive field for both conv and conv-transpose.
    const fanIn = shape[1]! * numel(k);
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = this.param("weight", shape, uniformInit(shape, bound));
    this.bias = opts.bias === false ? null : this.param("bias", [cout], uniformInit([cout], bound));
  }
}

export class Conv3d extends ConvNd {
  constructor(device: Device, cin: number, cout: number, kernel: number | number[], opts: ConvLayerOptions = {}) {
    super(device, 3, cin, cout, kernel, opts, false);
  }
  forward(x: Tensor): Tensor {
    return conv3d(x, this.weight, this.bias, this.opts);
  }
}

export class Conv2d extends ConvNd {
  constructor(device: Device, cin: number, cout: number, kernel: number | number[], opts: ConvLayerOptions = {}) {
    super(device, 2, cin, cout, kernel, opts, false);
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.opts);
  }
}

export class ConvTranspose3d extends ConvNd {
  constructor(device: Device, cin: number, cout: number, kernel: number | number[], opts: ConvLayerOptions & ConvTransposeOptions = {}) {
    super(device, 3, cin, cout, kernel, opts, true);
  }
  forward(x: Tensor): Tensor {
    return convTranspose3d(x, this.weight, this.bias, this.opts);
  }
}

export class ConvTranspose2d extends ConvNd {
  constructor(device: Device, cin: number, cout: number, kernel: number | number[], opts: ConvLayerOptions & ConvTransposeOptions = {}) {
    super(device, 2, cin, cout, kernel, opts, true);
  }
  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.bias, this.opts);
  }
}

/** BatchNorm1d/2d/3d (any rank ≥ 2): batch statistics and running-average update in train mode,
 * running statistics in eval mode. Keras-ported networks pass eps 1e-3, momentum 0.01. */
export class BatchNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  constructor(device: Device, readonly channels: number, readonly opts: { eps?: number; momentum?: number; affine?: boolean } = {}) {
    super(device);
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param("weight", [channels], new Float32Array(channels).fill(1)) : null;
    this.bias = affine ? this.param("bias", [channels]) : null;
    this.runningMean = this.buffer("running_mean", [channels]);
    this.runningVar = this.buffer("running_var", [channels], 1);
  }
  forward(x: Tensor): Tensor {
    return batchNorm(x, this.weight, this.bias, {
      training: this.training,
      eps: this.opts.eps ?? 1e-5,
      momentum: this.opts.momentum ?? 0.1,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
    });
  }
}

/** InstanceNorm (per sample and channel over the spatial dims, biased variance, no running stats). */
export class InstanceNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(device: Device, readonly channels: number, readonly opts: { eps?: number; affine?: boolean } = {}) {
    super(device);
    const affine = opts.affine ?? false; // PyTorch's InstanceNorm3d default; CoTr and Co-ReTr pass affine
    this.weight = affine ? this.param("weight", [channels], new Float32Array(channels).fill(1)) : null;
    this.bias = affine ? this.param("bias", [channels]) : null;
  }
  forward(x: Tensor): Tensor {
    return instanceNorm(x, this.weight, this.bias, { eps: this.opts.eps ?? 1e-5 });
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(device: Device, readonly dim: number, readonly eps = 1e-5) {
    super(device);
    this.weight = this.param("weight", [dim], new Float32Array(dim).fill(1));
    this.bias = this.param("bias", [dim]);
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, { eps: this.eps });
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(device: Device, readonly inFeatures: number, readonly outFeatures: number, { bias = true }: { bias?: boolean } = {}) {
    super(device);
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param("weight", [outFeatures, inFeatures], uniformInit([outFeatures, inFeatures], bound));
    this.bias = bias ? this.param("bias", [outFeatures], uniformInit([outFeatures], bound)) : null;
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export class PReLU extends Module {
  readonly weight: Tensor;
  constructor(device: Device, numParameters = 1, init = 0.25) {
    super(device);
    this.weight = this.param("weight", [numParameters], new Float32Array(numParameters).fill(init));
  }
  forward(x: Tensor): Tensor {
    return prelu(x, this.weight);
  }
}

/** Dropout / channel-wise Dropout3d (SpatialDropout3D): active only in train mode. */
export class Dropout extends Module {
  /** false switches dropout off even in train mode (the whole-model goldens train without it) */
  enabled = true;
  constructor(device: Device, readonly p: number, readonly spatial = false, readonly generator = new Generator(0)) {
    super(device);
  }
  forward(x: Tensor): Tensor {
    return (this.spatial ? spatialDropout : dropout)(x, this.p, this.training && this.enabled, this.generator);
  }
}

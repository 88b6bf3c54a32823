import * as norm from "../../graph/ops/norm.ts";
import { softmax } from "../../graph/ops/softmax.ts";
import { full } from "../../graph/launch.ts";
import { PulmoError, Tensor } from "../../runtime/index.ts";
import type { Adapter } from "./types.ts";

export const normAdapters: Record<string, Adapter> = {
  instance_norm: ({ inputs, attrs }) => ({
    y: norm.instanceNorm(inputs.x!, inputs.weight ?? null, inputs.bias ?? null, { eps: attrs.eps ?? 1e-5 }),
  }),
  batch_norm: ({ device, inputs, attrs }) => {
    const x = inputs.x!;
    const training = attrs.training ?? true;
    const c = x.shape[1]!;
    // Train cases give no running statistics: start them as PyTorch does (zeros, ones); the
    // runner's tidy() disposes them. Eval cases pass them as inputs.
    const runningMean = inputs.running_mean ?? (training ? Tensor.zeros(device, [c]) : undefined);
    const runningVar = inputs.running_var ?? (training ? full(device, [c], 1) : undefined);
    return {
      y: norm.batchNorm(x, inputs.weight ?? null, inputs.bias ?? null, {
        training,
        eps: attrs.eps ?? 1e-5,
        momentum: attrs.momentum ?? 0.1,
        runningMean,
        runningVar,
      }),
    };
  },
  layer_norm: ({ inputs, attrs }) => {
    const x = inputs.x!;
    const ns: number[] = attrs.normalized_shape ?? [x.shape.at(-1)!];
    if (!Array.isArray(ns)) throw new PulmoError(`layer_norm: normalized_shape must be a list, got ${ns}`);
    return { y: norm.layerNorm(x, inputs.weight ?? null, inputs.bias ?? null, { eps: attrs.eps ?? 1e-5, normalizedShape: ns }) };
  },
  softmax: ({ inputs, attrs }) => ({ y: softmax(inputs.x!, attrs.dim ?? -1) }),
};

import * as ops from "../../graph/ops/activation.ts";
import type { Adapter } from "./types.ts";

export const activationAdapters: Record<string, Adapter> = {
  relu: ({ inputs }) => ({ y: ops.relu(inputs.x!) }),
  leaky_relu: ({ inputs, attrs }) => ({ y: ops.leakyRelu(inputs.x!, attrs.negative_slope ?? 0.01) }),
  gelu: ({ inputs }) => ({ y: ops.gelu(inputs.x!) }),
  sigmoid: ({ inputs }) => ({ y: ops.sigmoid(inputs.x!) }),
  hard_sigmoid: ({ inputs }) => ({ y: ops.hardSigmoid(inputs.x!) }),
  tanh: ({ inputs }) => ({ y: ops.tanh(inputs.x!) }),
};

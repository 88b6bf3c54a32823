import * as ops from "../../graph/ops/matmul.ts";
import type { Adapter } from "./types.ts";

export const matmulAdapters: Record<string, Adapter> = {
  matmul: ({ inputs }) => ({ y: ops.matmul(inputs.a!, inputs.b!) }),
  linear: ({ inputs }) => ({ y: ops.linear(inputs.x!, inputs.weight!, inputs.bias ?? null) }),
};

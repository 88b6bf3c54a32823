// One file per op family: forward dispatch and backward rule together.
export * from "./activation.ts";
export * from "./attention.ts";
export * from "./conv.ts";
export * from "./convlstm.ts";
export * from "./elementwise.ts";
export * from "./layout.ts";
export * from "./loss.ts";
export * from "./matmul.ts";
export * from "./norm.ts";
export * from "./pool.ts";
export * from "./prelu.ts";
export * from "./reduce.ts";
export * from "./softmax.ts";
export * from "./upsample.ts";
export * from "./dropout.ts";
export * from "./cast.ts";

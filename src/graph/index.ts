export { backward } from "./autograd.ts";
export { noGrad, isGradEnabled, needsGrad, record, releaseGraph } from "./tape.ts";
export { full } from "./launch.ts";
export * from "./ops/index.ts";
export { SGD, Adam, AdamW, type Optimizer, type SgdOptions, type AdamOptions } from "./optim.ts";
export { Module, type HostArray, type LoadReport } from "./module.ts";
export { ConstantLR, StepLR, PolyLR, ReduceLROnPlateau, type Schedule } from "./schedule.ts";
export { checkpointBytes, loadCheckpoint, type CheckpointParts } from "./checkpoint.ts";
export * as nn from "./nn.ts";

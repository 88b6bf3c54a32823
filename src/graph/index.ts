export { backward } from "./autograd.ts";
export { noGrad, isGradEnabled, needsGrad, record, releaseGraph } from "./tape.ts";
export { full } from "./launch.ts";
export * from "./ops/index.ts";

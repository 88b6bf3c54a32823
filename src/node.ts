// Package entry for Node: installs the Dawn platform, then exposes the library.
import "./platform/node.ts";
export { deprioritizeMainThread } from "./platform/node.ts";
export * from "./index.ts";
export { writeFileAtomic } from "./platform/files.ts";
export { checkpointFile, terminalProgress, fitNode, type ProgressStream, type TerminalProgressOptions, type NodeFitOptions } from "./platform/training.ts";
export { fromKerasH5, fromKerasWeights } from "./models/rdu_keras.ts";

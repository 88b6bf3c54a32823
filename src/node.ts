// Package entry for Node: installs the Dawn platform, then exposes the library.
import "./platform/node.ts";
export * from "./index.ts";
export { writeFileAtomic } from "./platform/files.ts";

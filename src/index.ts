export * from "./runtime/index.ts";
export * from "./graph/index.ts";
export * from "./models/index.ts";

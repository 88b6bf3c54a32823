export * from "./runtime/index.ts";
export * from "./graph/index.ts";

export * from "./activation.ts";

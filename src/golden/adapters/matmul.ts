import type { Adapter } from "./types.ts";

export const matmulAdapters: Record<string, Adapter> = {};

import type { Adapter } from "./types.ts";

export const lossAdapters: Record<string, Adapter> = {};

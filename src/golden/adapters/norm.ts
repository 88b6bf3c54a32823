import type { Adapter } from "./types.ts";

export const normAdapters: Record<string, Adapter> = {};

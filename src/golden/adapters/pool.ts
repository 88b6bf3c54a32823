import type { Adapter } from "./types.ts";

export const poolAdapters: Record<string, Adapter> = {};

import type { Adapter } from "./types.ts";

export const convAdapters: Record<string, Adapter> = {};

import type { Adapter } from "./types.ts";

export const attentionAdapters: Record<string, Adapter> = {};

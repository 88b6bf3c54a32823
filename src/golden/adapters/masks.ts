import type { Adapter } from "./types.ts";

export const masksAdapters: Record<string, Adapter> = {};

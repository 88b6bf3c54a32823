import type { Adapter } from "./types.ts";

export const convlstmAdapters: Record<string, Adapter> = {};

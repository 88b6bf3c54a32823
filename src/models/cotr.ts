import type { ModelFactory } from "./model.ts";

// Not built yet: see issue 5.
export const factory: ModelFactory | null = null;

import type { Adapter } from "./types.ts";
import { activationAdapters } from "./activation.ts";

/** Every golden op the engine supports, by the op name in the case metadata. */
export const ADAPTERS: Record<string, Adapter> = {
  ...activationAdapters,
};

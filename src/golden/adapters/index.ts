import type { Adapter } from "./types.ts";
import { activationAdapters } from "./activation.ts";
import { attentionAdapters } from "./attention.ts";
import { convAdapters } from "./conv.ts";
import { convlstmAdapters } from "./convlstm.ts";
import { lossAdapters } from "./loss.ts";
import { masksAdapters } from "./masks.ts";
import { matmulAdapters } from "./matmul.ts";
import { normAdapters } from "./norm.ts";
import { poolAdapters } from "./pool.ts";

/** Every golden op the engine supports, by the op name in the case metadata. */
export const ADAPTERS: Record<string, Adapter> = {
  ...activationAdapters,
  ...attentionAdapters,
  ...convAdapters,
  ...convlstmAdapters,
  ...lossAdapters,
  ...masksAdapters,
  ...matmulAdapters,
  ...normAdapters,
  ...poolAdapters,
};

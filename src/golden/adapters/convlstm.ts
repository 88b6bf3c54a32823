import * as ops from "../../graph/ops/convlstm.ts";
import { PulmoError } from "../../runtime/index.ts";
import type { Adapter } from "./types.ts";

export const convlstmAdapters: Record<string, Adapter> = {
  convlstm2d: ({ inputs, attrs }) => {
    if ((attrs.gate_order ?? "ifgo") !== "ifgo")
      throw new PulmoError(`convlstm2d: gate_order ${JSON.stringify(attrs.gate_order)} is not supported (only "ifgo")`);
    return {
      y: ops.convLstm2d(inputs.x!, inputs.weight!, inputs.bias ?? null, {
        hidden: attrs.hidden,
        kernel: attrs.kernel,
        recurrentActivation: attrs.recurrent_activation ?? "sigmoid",
      }),
    };
  },
};

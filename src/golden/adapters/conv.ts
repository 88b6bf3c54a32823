import * as ops from "../../graph/ops/conv.ts";
import type { Adapter } from "./types.ts";

/** Case attrs (PyTorch names) → engine options. */
function convOpts(attrs: Record<string, any>): ops.ConvTransposeOptions {
  return {
    stride: attrs.stride,
    padding: attrs.padding,
    dilation: attrs.dilation,
    groups: attrs.groups,
    outputPadding: attrs.output_padding,
  };
}

export const convAdapters: Record<string, Adapter> = {
  conv3d: ({ inputs, attrs }) => ({ y: ops.conv3d(inputs.x!, inputs.weight!, inputs.bias ?? null, convOpts(attrs)) }),
  conv2d: ({ inputs, attrs }) => ({ y: ops.conv2d(inputs.x!, inputs.weight!, inputs.bias ?? null, convOpts(attrs)) }),
  conv_transpose3d: ({ inputs, attrs }) => ({
    y: ops.convTranspose3d(inputs.x!, inputs.weight!, inputs.bias ?? null, convOpts(attrs)),
  }),
  conv_transpose2d: ({ inputs, attrs }) => ({
    y: ops.convTranspose2d(inputs.x!, inputs.weight!, inputs.bias ?? null, convOpts(attrs)),
  }),
};

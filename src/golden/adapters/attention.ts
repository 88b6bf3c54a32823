import * as ops from "../../graph/ops/attention.ts";
import type { Adapter } from "./types.ts";

export const attentionAdapters: Record<string, Adapter> = {
  grid_sample3d: ({ inputs, attrs }) => ({
    y: ops.gridSample3d(inputs.x!, inputs.grid!, {
      mode: attrs.mode ?? "bilinear",
      paddingMode: attrs.padding_mode ?? "zeros",
      alignCorners: attrs.align_corners ?? false,
    }),
  }),
  ms_deform_attn3d: ({ inputs, attrs }) => ({
    y: ops.msDeformAttn3d(inputs.value!, attrs.spatial_shapes, inputs.sampling_locations!, inputs.attention_weights!),
  }),
};

import { maxPool2d, maxPool3d } from "../../graph/ops/pool.ts";
import { upsample, type UpsampleMode } from "../../graph/ops/upsample.ts";
import { prelu } from "../../graph/ops/prelu.ts";
import type { Adapter } from "./types.ts";

const poolOpts = (attrs: Record<string, any>) => ({
  kernel: attrs.kernel,
  stride: attrs.stride ?? null,
  padding: attrs.padding ?? 0,
  dilation: attrs.dilation ?? 1,
  ceilMode: attrs.ceil_mode ?? false,
});

export const poolAdapters: Record<string, Adapter> = {
  max_pool3d: ({ inputs, attrs }) => ({ y: maxPool3d(inputs.x!, poolOpts(attrs)) }),
  max_pool2d: ({ inputs, attrs }) => ({ y: maxPool2d(inputs.x!, poolOpts(attrs)) }),
  // mode "nearest" | "linear" | "bilinear" | "trilinear"; exactly one of scale and size
  upsample: ({ inputs, attrs }) => ({
    y: upsample(inputs.x!, {
      mode: (attrs.mode ?? "nearest") as UpsampleMode,
      scale: attrs.scale,
      size: attrs.size,
      alignCorners: attrs.align_corners ?? false,
    }),
  }),
  prelu: ({ inputs }) => ({ y: prelu(inputs.x!, inputs.weight!) }),
};

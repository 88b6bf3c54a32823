import * as ops from "../../graph/ops/loss.ts";
import type { Adapter } from "./types.ts";

export const lossAdapters: Record<string, Adapter> = {
  loss_bce: ({ inputs }) => ({ y: ops.bceLoss(inputs.p!, inputs.target!) }),
  loss_bce_with_logits: ({ inputs }) => ({ y: ops.bceWithLogitsLoss(inputs.logits!, inputs.target!) }),
  loss_weighted_bce: ({ inputs }) => ({ y: ops.weightedBceLoss(inputs.p!, inputs.target!, { weightFrom: "target" }) }),
  loss_dice: ({ inputs, attrs }) => ({ y: ops.diceLoss(inputs.p!, inputs.target!, { smooth: attrs.smooth ?? 1 }) }),
  loss_tversky: ({ inputs, attrs }) => ({
    y: ops.tverskyLoss(inputs.p!, inputs.target!, { alpha: attrs.alpha ?? 0.7, smooth: attrs.smooth ?? 1 }),
  }),
  loss_iou: ({ inputs, attrs }) => ({ y: ops.iouLoss(inputs.p!, inputs.target!, { smooth: attrs.smooth ?? 1 }) }),
  loss_focal: ({ inputs, attrs }) => ({
    y: ops.focalLoss(inputs.p!, inputs.target!, { alpha: attrs.alpha ?? 0.25, gamma: attrs.gamma ?? 2 }),
  }),
};

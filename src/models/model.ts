import type { Device, Tensor } from "../runtime/index.ts";
import type { Module } from "../graph/module.ts";

/** A segmentation network built from a config object with the same keys as
 * ../shared/reference/models.py PRESETS, with PyTorch state-dict names and layouts. */
export interface SegmentationNet extends Module {
  readonly config: Record<string, any>;
  /** logits (before sigmoid/softmax) */
  forward(x: Tensor): Tensor;
  /** every output for deep supervision, main first (networks without deep supervision omit it) */
  forwardAll?(x: Tensor): Tensor[];
}

export type ModelFactory = (device: Device, config: Record<string, any>) => SegmentationNet;

import { PulmoError, type Device } from "../runtime/index.ts";
import type { ModelFactory, SegmentationNet } from "./model.ts";
import { factory as attention_unet } from "./attention_unet.ts";
import { factory as coretr } from "./coretr.ts";
import { factory as cotr } from "./cotr.ts";
import { factory as ctv_unet } from "./ctv_unet.ts";
import { factory as rdu } from "./rdu.ts";
import { factory as resnet34_fpn } from "./resnet34_fpn.ts";
import { factory as resunet } from "./resunet.ts";
import { factory as unet2d } from "./unet2d.ts";
import { factory as unet3d } from "./unet3d.ts";
import { factory as unetr } from "./unetr.ts";

export type { SegmentationNet, ModelFactory } from "./model.ts";

/** Registry names of MODELS.md; null where the network is not built yet. */
export const MODELS: Record<string, ModelFactory | null> = {
  coretr, cotr, unetr, attention_unet, unet3d, resunet, ctv_unet, resnet34_fpn, unet2d, rdu,
};

export function buildModel(device: Device, name: string, config: Record<string, any>): SegmentationNet {
  if (!(name in MODELS)) throw new PulmoError(`unknown model '${name}' (known: ${Object.keys(MODELS).join(", ")})`);
  const f = MODELS[name];
  if (!f) throw new PulmoError(`model '${name}' is not implemented yet`);
  return f(device, config);
}

import type { Device } from "../runtime/index.ts";
import type { ModelFactory } from "./model.ts";
import { UNET3D_PAPER, UNet3dFamily, unet3dFamilyFunctions } from "./unet_family.ts";

/** Padded Çiçek 3D U-Net (MODELS.md §4b; shared/reference/models.py `UNetPlain` with the `_U3`
 * preset): 4 levels, (conv k3 p1 no bias → BN → ReLU) × 2, MaxPool 2, ConvT k2 s2 (no bias) that
 * keeps its width, cat([up, skip]), 1³ head with bias; 2-class softmax logits by default.
 * Config keys left out take the paper preset's values. */
export class UNet3d extends UNet3dFamily {
  constructor(device: Device, config: Record<string, any> = {}) {
    super(device, "unet3d", config, UNET3D_PAPER);
  }
}

/** Config-only functions (unet_family.ts unet3dFamilyFunctions): resolveConfig (throws a PulmoError
 * if invalid), parameterCount (BN running statistics excluded), forwardMacs, stateDictKeys.
 * parameterCount: 19,070,498 at the paper preset; forwardMacs: 824.3 G at the paper's 1×1×96³. */
export const { resolveConfig, parameterCount, forwardMacs, stateDictKeys } = unet3dFamilyFunctions("unet3d", UNET3D_PAPER);

export const factory: ModelFactory = (device, config) => new UNet3d(device, config);

import type { Device } from "../runtime/index.ts";
import type { ModelFactory } from "./model.ts";
import { CTV_UNET_PAPER, UNet3dFamily, unet3dFamilyFunctions } from "./unet_family.ts";

/** CTV 3D U-Net (MODELS.md §5; shared/reference/models.py `UNetPlain` with the `_CTV` preset):
 * input 2 channels (planning CT, iGTV mask), 5 levels of (conv k3 p1 no bias → BN → ReLU) × 2,
 * widths 32..512, MaxPool 2, ConvT k3 s2 p1 output_padding 1 (no bias) to the skip width,
 * cat([up, skip]), 1³ head with bias → 1 logit (sigmoid gives the CTV mask).
 * Config keys left out take the paper preset's values. */
export class CtvUNet extends UNet3dFamily {
  constructor(device: Device, config: Record<string, any> = {}) {
    super(device, "ctv_unet", config, CTV_UNET_PAPER);
  }
}

/** Config-only functions (unet_family.ts unet3dFamilyFunctions): resolveConfig (throws a PulmoError
 * if invalid), parameterCount (BN running statistics excluded), forwardMacs, stateDictKeys.
 * parameterCount: 25,886,177 at the paper preset; forwardMacs: 3630.9 G at the paper crop 1×2×128×288×416 (209.5 G at 96³). */
export const { resolveConfig, parameterCount, forwardMacs, stateDictKeys } = unet3dFamilyFunctions("ctv_unet", CTV_UNET_PAPER);

export const factory: ModelFactory = (device, config) => new CtvUNet(device, config);

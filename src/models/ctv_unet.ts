import type { Device } from "../runtime/index.ts";
import type { ModelFactory } from "./model.ts";
import {
  CTV_UNET_PAPER,
  UNet3dFamily,
  stateDictSpec,
  unet3dFamilyForwardMacs,
  unet3dFamilyParameterCount,
  validateUNet3dConfig,
  type KeySpec,
} from "./unet_family.ts";

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

/** The config with every key filled in from the paper preset (throws a PulmoError if invalid). */
export const resolveConfig = (config: Record<string, any> = {}) => validateUNet3dConfig("ctv_unet", config, CTV_UNET_PAPER);

/** Trainable parameters (BN running statistics excluded); 25,886,177 at the paper preset. */
export const parameterCount = (config: Record<string, any> = {}): number => unet3dFamilyParameterCount(resolveConfig(config));

/** Forward MACs of the convs and transposed convs for `inputShape` (default: config.input_shape,
 * then the paper crop 1×2×128×288×416); 3630.9 G there (209.5 G at 96³). */
export function forwardMacs(config: Record<string, any> = {}, inputShape?: readonly number[]): number {
  const cfg = resolveConfig(config);
  const fallback = [1, cfg.in_channels, ...CTV_UNET_PAPER.input_shape!.slice(2)];
  return unet3dFamilyForwardMacs("ctv_unet", cfg, inputShape ?? cfg.input_shape ?? fallback);
}

/** State-dict keys and shapes (PyTorch order, without num_batches_tracked) from the config alone. */
export const stateDictKeys = (config: Record<string, any> = {}): KeySpec[] => stateDictSpec(resolveConfig(config));

export const factory: ModelFactory = (device, config) => new CtvUNet(device, config);

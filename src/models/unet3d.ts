import type { Device } from "../runtime/index.ts";
import type { ModelFactory } from "./model.ts";
import {
  UNET3D_PAPER,
  UNet3dFamily,
  stateDictSpec,
  unet3dFamilyForwardMacs,
  unet3dFamilyParameterCount,
  validateUNet3dConfig,
  type KeySpec,
} from "./unet_family.ts";

/** Padded Çiçek 3D U-Net (MODELS.md §4b; shared/reference/models.py `UNetPlain` with the `_U3`
 * preset): 4 levels, (conv k3 p1 no bias → BN → ReLU) × 2, MaxPool 2, ConvT k2 s2 (no bias) that
 * keeps its width, cat([up, skip]), 1³ head with bias; 2-class softmax logits by default.
 * Config keys left out take the paper preset's values. */
export class UNet3d extends UNet3dFamily {
  constructor(device: Device, config: Record<string, any> = {}) {
    super(device, "unet3d", config, UNET3D_PAPER);
  }
}

/** The config with every key filled in from the paper preset (throws a PulmoError if invalid). */
export const resolveConfig = (config: Record<string, any> = {}) => validateUNet3dConfig("unet3d", config, UNET3D_PAPER);

/** Trainable parameters (BN running statistics excluded); 19,070,498 at the paper preset. */
export const parameterCount = (config: Record<string, any> = {}): number => unet3dFamilyParameterCount(resolveConfig(config));

/** Forward MACs of the convs and transposed convs for `inputShape` (default: config.input_shape,
 * then the paper's 1×1×96³); 824.3 G at the paper preset. */
export function forwardMacs(config: Record<string, any> = {}, inputShape?: readonly number[]): number {
  const cfg = resolveConfig(config);
  const fallback = [1, cfg.in_channels, ...UNET3D_PAPER.input_shape!.slice(2)];
  return unet3dFamilyForwardMacs("unet3d", cfg, inputShape ?? cfg.input_shape ?? fallback);
}

/** State-dict keys and shapes (PyTorch order, without num_batches_tracked) from the config alone. */
export const stateDictKeys = (config: Record<string, any> = {}): KeySpec[] => stateDictSpec(resolveConfig(config));

export const factory: ModelFactory = (device, config) => new UNet3d(device, config);

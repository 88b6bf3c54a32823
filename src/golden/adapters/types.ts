import type { Device, Tensor } from "../../runtime/index.ts";
import type { GoldenCase, HostTensor } from "../case.ts";

/** Maps one golden op onto the engine: GPU inputs (those in `grads` have requiresGrad set),
 * their host copies, and the case's attrs; returns every output by name. */
export type Adapter = (ctx: {
  device: Device;
  inputs: Record<string, Tensor>;
  host: Record<string, HostTensor>;
  attrs: Record<string, any>;
  case: GoldenCase;
}) => Record<string, Tensor | HostTensor>;

export { createDevice, setGpuProvider, Device, NO_ADAPTER_MESSAGE } from "./device.ts";
export type { DeviceOptions, DeviceLimits, KernelCall, Binding, Bindable } from "./device.ts";
export { Tensor, tidy, keep, numel } from "./tensor.ts";
export type { DType, TypedArray } from "./tensor.ts";
export { PulmoError, fail, shapeStr, checkFinite } from "./errors.ts";
export { setKernelSourceLoader, kernelInfo } from "./kernels.ts";
export { sizeClass } from "./pool.ts";

// Package entry for browsers: WGSL inlined by the bundler, WebGPU from navigator.gpu.
import "./inlined_kernels.ts";

export * from "./index.ts";

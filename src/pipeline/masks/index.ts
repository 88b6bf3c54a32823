// Host-side (CPU) binary-mask operations for the segmentation pipeline: exact EDT, CTV margin
// expansion, per-slice disk dilation, connected components and evaluation metrics.
// Conventions: docs/ops/masks.md.
export * from "./volume.ts";
export { squaredDistanceTransform, distanceTransform, type Axes3 } from "./edt.ts";
export { expandMargin, dilateSlicesDisk, diskFootprint, diskRadius, erode6 } from "./morphology.ts";
export { maskMetrics, surface, surfaceDistances, percentileSorted, type MaskMetrics } from "./metrics.ts";
export { connectedComponents, largestComponent, type Connectivity, type Components } from "./components.ts";

// Golden adapters for the host-side mask operations (src/pipeline/masks). They run on the CPU,
// so they read the host copies of the inputs and return HostTensors.
import * as masks from "../../pipeline/masks/index.ts";
import { PulmoError } from "../../runtime/errors.ts";
import type { HostTensor } from "../case.ts";
import type { Adapter } from "./types.ts";

function volume(h: HostTensor | undefined, name: string): masks.Volume {
  if (!h) throw new PulmoError(`masks adapter: missing input '${name}'`);
  if (h.shape.length !== 3) throw new PulmoError(`masks adapter: '${name}' must be [D, H, W], got [${h.shape.join(", ")}]`);
  return { data: h.data, shape: [h.shape[0]!, h.shape[1]!, h.shape[2]!] };
}

const out = (m: masks.Mask): HostTensor => ({ data: Float32Array.from(m.data), shape: [...m.shape] });
const scalar = (v: number): HostTensor => ({ data: Float32Array.of(v), shape: [1] });

export const masksAdapters: Record<string, Adapter> = {
  metrics: ({ host, attrs }) => {
    const m = masks.maskMetrics(volume(host.pred, "pred"), volume(host.target, "target"), attrs.spacing);
    return {
      dice: scalar(m.dice),
      jaccard: scalar(m.jaccard),
      precision: scalar(m.precision),
      recall: scalar(m.recall),
      fpr: scalar(m.fpr),
      hausdorff: scalar(m.hausdorff),
      hausdorff95: scalar(m.hausdorff95),
      mean_surface_distance: scalar(m.meanSurfaceDistance),
      median_surface_distance: scalar(m.medianSurfaceDistance),
    };
  },
  expand_margin: ({ host, attrs }) => ({
    y: out(masks.expandMargin(volume(host.mask, "mask"), host.avoid ? volume(host.avoid, "avoid") : null, attrs.spacing, attrs.margin_mm)),
  }),
  dilate_slices_disk: ({ host, attrs }) => ({ y: out(masks.dilateSlicesDisk(volume(host.mask, "mask"), attrs.diameter)) }),
  connected_components: ({ host, attrs }) => {
    const c = masks.connectedComponents(volume(host.mask, "mask"), attrs.connectivity ?? 26);
    return { count: scalar(c.count), largest: out(c.largest) };
  },
};

// Transposed convolutions whose kernel equals their stride (k2 s2: every U-Net decoder's
// up-convolution), no padding, no output padding, f32: every output voxel gets exactly one tap,
// so the forward is one GEMM per (kd, kh) phase over the input channels
// (kernels/conv/conv_transposed_ks.wgsl, conv_transposed_ks_sg.wgsl with the weight reads spread
// over the subgroup where the device has fixed subgroups of >= 8 lanes). conv.ts routes eligible
// forwards here (ksEligible) and keeps its general gather kernel for the rest; the backward stays
// conv.ts's (grad x: conv_direct of dy, grad w: conv_grad_weight): a grad-x twin of this GEMM and a
// split-K grad w did not beat them on lavapipe (docs/ops/conv.md).
import { Tensor } from "../../runtime/index.ts";
import { label, spreadsOverSubgroup } from "../launch.ts";
import { convUniforms } from "./conv_uniforms.ts";

type V3 = [number, number, number];
/** conv.ts's Geometry (spatial dims always 3, D = 1 for 2D). */
export interface KsGeometry {
  batch: number;
  groups: number;
  k: V3;
  stride: V3;
  pad: V3;
  dil: V3;
}

/** Off: every transposed conv takes conv.ts's general gather (tests and A/B timing compare the two). */
export const ksPath = { enabled: true };

/** Accumulators per invocation: OCB channels × KW phases, vec4 each over 4 input columns. */
const MAX_ACC = 32;
const TILE = 64;

/** Whether the forward of this transposed conv runs here: f32, kernel = stride in every dim (dilation
 * irrelevant where the kernel is 1 wide, else 1), no padding, output exactly input × stride (no
 * output padding), kernel width such that 4 channels × KW phases fit the accumulators. */
export function ksEligible(dtype: string, inShape: readonly number[], outShape: readonly number[], g: KsGeometry): boolean {
  if (!ksPath.enabled || dtype !== "f32") return false;
  const isz = inShape.slice(2);
  const osz = outShape.slice(2);
  const is3 = isz.length === 3 ? [isz[0]!, isz[1]!, isz[2]!] : [1, isz[0]!, isz[1]!];
  const os3 = osz.length === 3 ? [osz[0]!, osz[1]!, osz[2]!] : [1, osz[0]!, osz[1]!];
  for (let d = 0; d < 3; d++) {
    if (g.k[d] !== g.stride[d] || g.pad[d] !== 0 || (g.k[d]! > 1 && g.dil[d] !== 1)) return false;
    if (os3[d] !== is3[d]! * g.k[d]!) return false;
  }
  return 4 * g.k[2] <= MAX_ACC;
}

/** Output channels per invocation: the smallest of 4, 8, 16 covering a group's channels, within
 * the accumulators (OCB * KW <= 32). */
function channelBlock(coutG: number, kw: number): number {
  const want = coutG <= 4 ? 4 : coutG <= 8 ? 8 : 16;
  let ocb = want;
  while (ocb > 4 && ocb * kw > MAX_ACC) ocb /= 2;
  return ocb;
}

/** Spatial shapes of x (isz) and y (osz), W tiles of 4 input columns and 64 of them per workgroup. */
function shapes(xShape: readonly number[], g: KsGeometry) {
  const sp = xShape.slice(2);
  const isz: V3 = sp.length === 3 ? [sp[0]!, sp[1]!, sp[2]!] : [1, sp[0]!, sp[1]!];
  const osz: V3 = [isz[0] * g.k[0], isz[1] * g.k[1], isz[2] * g.k[2]];
  const wtiles = Math.ceil(isz[2] / 4);
  const tiles = Math.ceil((isz[0] * isz[1] * wtiles) / TILE);
  return { wtiles, tiles, isz, osz, vecW: isz[2] % 4 === 0 };
}

const kernelFor = (t: Tensor) => (spreadsOverSubgroup(t.device) ? "conv/conv_transposed_ks_sg" : "conv/conv_transposed_ks");

/** y [batch, cout, ...outShape] = the kernel-equals-stride transposed conv of x with w [Cin, Cout/g, k]. */
export function launchTransposeKs(x: Tensor, w: Tensor, bias: Tensor | null, cout: number, outShape: number[], g: KsGeometry, name: string): Tensor {
  const device = x.device;
  const y = Tensor.empty(device, outShape, "f32", name);
  const cin = x.shape[1]!;
  const coutG = cout / g.groups;
  const { wtiles, tiles, isz, osz, vecW } = shapes(x.shape, g);
  const ocb = channelBlock(coutG, g.k[2]);
  const nblk = Math.ceil(coutG / ocb);
  const vec = vecW && x.byteOffset % 16 === 0 && y.byteOffset % 16 === 0;
  device.dispatch({
    kernel: kernelFor(x),
    entry: vec ? "main4" : "main",
    constants: { OCB: ocb, KW: g.k[2] },
    bindings: vec ? { x4: x, w, bias: bias ?? w, y4: y } : { x, w, bias: bias ?? w, y },
    uniforms: convUniforms({ batch: g.batch, cin, cout, groups: g.groups, nblk, tiles, wtiles, hasBias: bias !== null, isz, osz, k: g.k, stride: g.k, pad: [0, 0, 0], dil: [1, 1, 1] }),
    workgroups: g.batch * g.groups * nblk * g.k[0] * g.k[1] * tiles,
    label: label(name, x, w, bias),
  });
  return y;
}


// The uniform block of kernels/conv/conv_io.wgsl, shared by every conv gather kernel
// (conv_direct, conv_direct_sg, conv_transposed, conv_transposed_ks, conv_transposed_ks_sg): one
// builder, so the struct and what fills it change together.
import { numel } from "../../runtime/index.ts";

type V3 = [number, number, number];

export interface ConvBlock {
  batch: number;
  cin: number;
  cout: number;
  groups: number;
  /** output-channel blocks per group: ceil(cout / groups / OCB) */
  nblk: number;
  /** workgroups of 64 (d, h, W tile) cells per plane */
  tiles: number;
  /** W tiles per (d, h) row; what a tile is, each kernel's header says */
  wtiles: number;
  hasBias: boolean;
  /** spatial sizes (D, H, W; D = 1 for 2D) of the kernel's input, its output and the conv kernel */
  isz: V3;
  osz: V3;
  k: V3;
  stride: V3;
  pad: V3;
  dil: V3;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
/** A spatial size as the kernels' vec4: D, H, W and their product. */
export const withVolume = (v: readonly number[]) => [v[0]!, v[1]!, v[2]!, numel(v)];
/** conv_transposed's tap period per dim: stride / gcd(stride, dil) (its loops step over the taps
 * that land on the stride grid). */
export const tapPeriod = (stride: V3, dil: V3) => stride.map((s, i) => s / gcd(s, dil[i]!));

export function convUniforms(c: ConvBlock): Record<string, number | number[]> {
  return {
    batch: c.batch,
    cin: c.cin,
    cout: c.cout,
    cin_g: c.cin / c.groups,
    cout_g: c.cout / c.groups,
    groups: c.groups,
    nblk: c.nblk,
    tiles: c.tiles,
    wtiles: c.wtiles,
    use_bias: c.hasBias ? 1 : 0,
    isz: withVolume(c.isz),
    osz: withVolume(c.osz),
    ksz: withVolume(c.k),
    stride: c.stride,
    pad: c.pad,
    dil: c.dil,
    kstep: tapPeriod(c.stride, c.dil),
  };
}

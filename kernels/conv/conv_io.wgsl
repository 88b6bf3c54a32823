// Declarations shared by the conv gather kernels, conv_direct(_sg).wgsl, conv_transposed.wgsl and
// conv_transposed_ks(_sg).wgsl (spliced in with `// #include "conv/conv_io"`): the element type,
// uniforms (filled by src/graph/ops/conv_uniforms.ts), bindings and the tap-range helper; the
// includer declares its overrides and loops, and says what one of its W tiles is.
const MAXWIN = 24u;
alias elem = f32;
struct Params {
  batch: u32,
  cin: u32,     // channels of x
  cout: u32,    // channels of y
  cin_g: u32,   // cin / groups
  cout_g: u32,  // cout / groups
  groups: u32,
  nblk: u32,    // ceil(cout_g / OCB): channel blocks per group
  tiles: u32,   // ceil(D * H * wtiles / 64)
  wtiles: u32,  // W tiles per (d, h) row (each kernel's header says what a tile is)
  use_bias: u32,
  isz: vec4<u32>,  // input D, H, W, D*H*W
  osz: vec4<u32>,  // output D, H, W, D*H*W
  ksz: vec4<u32>,  // kernel D, H, W, D*H*W
  stride: vec4<u32>,
  pad: vec4<u32>,
  dil: vec4<u32>,
  kstep: vec4<u32>,  // stride / gcd(stride, dil) per dim (conv_transposed's tap period)
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<elem>;
@group(0) @binding(2) var<storage, read> w: array<elem>;
@group(0) @binding(3) var<storage, read> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> y: array<elem>;

// Taps k in [lo, hi) with 0 <= start + k*d < size (start may be negative).
fn tap_range(start: i32, d: i32, k: i32, size: i32) -> vec2<i32> {
  var lo = 0;
  if (start < 0) { lo = (-start + d - 1) / d; }
  var hi = 0;
  if (size - 1 - start >= 0) { hi = min(k, (size - 1 - start) / d + 1); }
  return vec2<i32>(lo, max(hi, lo));
}

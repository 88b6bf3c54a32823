// Normalisation y = (x - mean) / sqrt(var + eps) * weight + bias (`main`) and its input gradient
// (`backward`), one thread per element, shared by instance, batch and layer norm.
// Bindings: 0 uniforms, 1 x, 2 mean ([groups]), 3 var_ ([groups], biased), 4 weight (HAS_W; else a
// dummy), 5 bias (HAS_B; else a dummy), 6 dy (backward; dummy in forward), 7 sums (backward with
// batch statistics: [2, groups] = sum(g), sum(g * xhat) per group, g = dy or dy*weight), 8 out.
// Element i belongs to statistics group (i / sdiv) % smod and affine slot (i / adiv) % amod, which
// covers (n,c) instances, channels across the batch, and rows with a per-feature affine.
// Trick (backward with batch statistics): dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with
// the means over the group; MODE 0 sums dy and applies the per-group-constant weight outside,
// MODE 1 (layer norm, weight varies inside the row) has it inside the sums, MODE 2 (fixed running
// statistics) is a per-channel scale dy * weight * rstd.
override HAS_W: bool = true;
override HAS_B: bool = true;
override MODE: u32 = 0u;

struct Params { n: u32, groups: u32, sdiv: u32, smod: u32, adiv: u32, amod: u32, eps: f32, inv_count: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> var_: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read> dy: array<f32>;
@group(0) @binding(7) var<storage, read> sums: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let g = (i / p.sdiv) % p.smod;
  let a = (i / p.adiv) % p.amod;
  // 1/sqrt rather than inverseSqrt: the builtin may be a low-precision approximation.
  var v = (x[i] - mean[g]) * (1.0 / sqrt(var_[g] + p.eps));
  if (HAS_W) { v *= weight[a]; }
  if (HAS_B) { v += bias[a]; }
  out[i] = v;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let g = (i / p.sdiv) % p.smod;
  let a = (i / p.adiv) % p.amod;
  let rstd = 1.0 / sqrt(var_[g] + p.eps);
  var w = 1.0;
  if (HAS_W) { w = weight[a]; }
  if (MODE == 2u) {
    out[i] = dy[i] * w * rstd;
    return;
  }
  let xh = (x[i] - mean[g]) * rstd;
  let s1 = sums[g] * p.inv_count;
  let s2 = sums[p.groups + g] * p.inv_count;
  if (MODE == 1u) {
    out[i] = rstd * (dy[i] * w - s1 - xh * s2);
  } else {
    out[i] = w * rstd * (dy[i] - s1 - xh * s2);
  }
}

// Normalisation statistics, pass 2: merges the per-chunk (count, mean, M2) of stats_partial.wgsl
// into each group's mean and biased variance, one workgroup per group.
// `small` instead computes short groups (count <= 64) straight from x, one thread per group
// (mean, then the centred sum of squares), skipping stats_partial.wgsl.
// Bindings: 0 uniforms, 1 src (`main`: part [groups, splits, 3]; `small`: x), 2 mean ([groups]),
// 3 var_ ([groups], biased: M2/n).
// Trick: Chan et al.'s pairwise update, n = na+nb, d = mb-ma, mean = ma + d*nb/n,
// M2 = M2a + M2b + d^2*na*nb/n, is exact in exact arithmetic and stable in f32 for any split.
// gstride, seglen, segstride, count: `small` only, group addressing as in stats_partial.wgsl
struct Params { groups: u32, splits: u32, count: u32, gstride: u32, seglen: u32, segstride: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> var_: array<f32>;

var<workgroup> sn: array<f32, 64>;
var<workgroup> sm: array<f32, 64>;
var<workgroup> sq: array<f32, 64>;

// #include "common/welford"

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.groups) { return; } // uniform per workgroup
  var a = Acc(0.0, 0.0, 0.0);
  for (var s = lid; s < p.splits; s += 64u) {
    let k = (g * p.splits + s) * 3u;
    a = merge(a, Acc(src[k], src[k + 1u], src[k + 2u]));
  }
  sn[lid] = a.n;
  sm[lid] = a.m;
  sq[lid] = a.q;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      let r = merge(Acc(sn[lid], sm[lid], sq[lid]), Acc(sn[lid + k], sm[lid + k], sq[lid + k]));
      sn[lid] = r.n;
      sm[lid] = r.m;
      sq[lid] = r.q;
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    mean[g] = sm[0];
    var_[g] = sq[0] / sn[0];
  }
}

@compute @workgroup_size(64)
fn small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * 64u;
  if (g >= p.groups) { return; }
  let base = g * p.gstride;
  var s = 0.0;
  for (var j = 0u; j < p.count; j++) { s += src[base + (j / p.seglen) * p.segstride + j % p.seglen]; }
  let m = s / f32(p.count);
  var q = 0.0;
  for (var j = 0u; j < p.count; j++) {
    let d = src[base + (j / p.seglen) * p.segstride + j % p.seglen] - m;
    q += d * d;
  }
  mean[g] = m;
  var_[g] = q / f32(p.count);
}

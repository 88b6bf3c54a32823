// Per-group sums for normalisation backward: sum(g) and sum(g * xhat) over each group's elements,
// g = dy * weight (WSUM, layer-norm rows) or dy, one workgroup per (group, chunk).
// Bindings: 0 uniforms, 1 x, 2 mean, 3 var_ (statistics of the forward), 4 weight (read when
// WSUM; else a dummy), 5 dy, 6 part ([2, groups, splits]: the sums of g, then of g * xhat).
// The summed group (addressing as in stats_partial.wgsl) need not be the statistics group: an
// element's statistics sit at (addr / sdiv) % smod and its weight at (addr / adiv) % amod, so the
// same kernel gives per-(n,c) and per-channel sums and layer norm's per-feature (column) sums.
// `small`: one thread per group for short groups (count <= 64, splits = 1).
// Trick: no float atomics; TypeScript reduces the `splits` partials with reduce/reduce.wgsl.
override WSUM: bool = false;

struct Params {
  groups: u32, splits: u32, chunk: u32, count: u32, gstride: u32, seglen: u32, segstride: u32,
  sdiv: u32, smod: u32, adiv: u32, amod: u32, eps: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> var_: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

var<workgroup> ra: array<f32, 64>;
var<workgroup> rb: array<f32, 64>;

// (g, g * xhat) for element j of group grp
fn term(grp: u32, j: u32) -> vec2<f32> {
  let e = grp * p.gstride + (j / p.seglen) * p.segstride + j % p.seglen;
  let sg = (e / p.sdiv) % p.smod;
  let xh = (x[e] - mean[sg]) * (1.0 / sqrt(var_[sg] + p.eps));
  var g = dy[e];
  if (WSUM) { g *= weight[(e / p.adiv) % p.amod]; }
  return vec2<f32>(g, g * xh);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.groups * p.splits) { return; } // uniform per workgroup
  let grp = w / p.splits;
  let j0 = (w % p.splits) * p.chunk;
  let j1 = min(p.count, j0 + p.chunk);
  var sa = 0.0;
  var sb = 0.0;
  for (var j = j0 + lid; j < j1; j += 64u) {
    let t = term(grp, j);
    sa += t.x;
    sb += t.y;
  }
  ra[lid] = sa;
  rb[lid] = sb;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      ra[lid] += ra[lid + k];
      rb[lid] += rb[lid + k];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    part[grp * p.splits + w % p.splits] = ra[0];
    part[(p.groups + grp) * p.splits + w % p.splits] = rb[0];
  }
}

@compute @workgroup_size(64)
fn small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let grp = gid.x + gid.y * nwg.x * 64u;
  if (grp >= p.groups) { return; }
  var s = vec2<f32>(0.0, 0.0);
  for (var j = 0u; j < p.count; j++) { s += term(grp, j); }
  part[grp] = s.x;
  part[p.groups + grp] = s.y;
}

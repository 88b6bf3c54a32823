// Normalisation statistics, pass 1: count, mean and centred sum of squares (M2) of one chunk of
// one group, one workgroup per (group, chunk).
// Bindings: 0 uniforms, 1 x, 2 part ([groups, splits, 3]: count, mean, M2 per chunk).
// Group g's element j lives at g*gstride + (j / seglen)*segstride + j % seglen: one contiguous run
// for instance/layer norm, N runs of the spatial size strided by C*S for batch norm, so no permute.
// Trick: the chunk's mean is reduced first and M2 is then summed around it (two-pass, not
// E[x^2]-E[x]^2, which cancels catastrophically in f32); chunks are merged with Chan's formula
// in stats_merge.wgsl.
struct Params { groups: u32, splits: u32, chunk: u32, count: u32, gstride: u32, seglen: u32, segstride: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;

var<workgroup> red: array<f32, 64>;

fn addr(g: u32, j: u32) -> u32 {
  return g * p.gstride + (j / p.seglen) * p.segstride + j % p.seglen;
}

fn tree_sum(lid: u32, v: f32) -> f32 {
  workgroupBarrier(); // earlier readers of red[0] are done
  red[lid] = v;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k = k >> 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.groups * p.splits) { return; } // uniform per workgroup
  let g = w / p.splits;
  let j0 = (w % p.splits) * p.chunk;
  let j1 = min(p.count, j0 + p.chunk);
  let n = f32(j1 - j0);
  var s = 0.0;
  for (var j = j0 + lid; j < j1; j += 64u) { s += x[addr(g, j)]; }
  let m = tree_sum(lid, s) / n;
  var q = 0.0;
  for (var j = j0 + lid; j < j1; j += 64u) {
    let d = x[addr(g, j)] - m;
    q += d * d;
  }
  let m2 = tree_sum(lid, q);
  if (lid == 0u) {
    part[w * 3u] = n;
    part[w * 3u + 1u] = m;
    part[w * 3u + 2u] = m2;
  }
}

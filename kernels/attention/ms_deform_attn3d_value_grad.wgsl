// Multi-scale deformable attention (3D): grad value as a gather over samples sorted by the base
// voxel of their corner cell (keys from ms_deform_attn3d_backward.wgsl, stably sorted, segment
// bounds from segments.wgsl):
//   grad_value[n, s, h, c] = sum_{k < 8} sum_{samples e with base = voxel(s) - offset(k)}
//                              attn_e * trilinear weight of corner k * dy[n, q_e, h*Dh + c]
// summed in a fixed order (k, then sample id): deterministic, no float atomics.
// Entries: `permute` writes the sorted samples' geometry and dy rows contiguously (sorted_geo,
// sorted_q), so the gather reads them in order; `main` (scalar) and `main4` (Dh % 4 == 0, vec4)
// gather, one invocation per value row (n, s, h) and block of CPI channels.
// Bindings: 0 uniforms, 1 order [samples] (sample ids in key order), 2 sample_geo [samples]
// (frac xyz, attn), 3 sorted_geo, 4 sorted_q [samples] (dy row (n*Lq + q)*nH + h), 5 offsets
// [num_keys + 1], 6 dy / 8 dy4 [N, Lq, nH*Dh], 7 grad / 9 grad4 [N, S, nH, Dh].
// Trick: the sample-sorted list has one entry per sample (not per corner), so the sort moves 8×
// fewer entries; each row visits its 8 neighbouring base cells instead.
override CPI: u32 = 8u; // channels per invocation (main4: a multiple of 4), at most 16
const MAX_CPI: u32 = 16u;
struct Params { total: u32, n: u32, nA: u32, S: u32, nH: u32, Dh: u32, nL: u32, Sp: u32,
                levels: array<vec4<u32>, 16>, pad_starts: array<vec4<u32>, 4> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read> sample_geo: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> sorted_geo: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> sorted_q: array<u32>;
@group(0) @binding(5) var<storage, read> offsets: array<u32>;
@group(0) @binding(6) var<storage, read> dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> grad: array<f32>;
@group(0) @binding(8) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> grad4: array<vec4<f32>>;

// one invocation per sorted entry j: sorted_geo[j] = sample_geo[order[j]], sorted_q[j] = its dy row
@compute @workgroup_size(64)
fn permute(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = gid.x + gid.y * nwg.x * 64u;
  if (j >= p.n) { return; }
  let e = order[j];
  sorted_geo[j] = sample_geo[e];
  sorted_q[j] = e / p.nA; // sample (qh * nL + l) * nP + pt → qh
}

struct Row { n: u32, h: u32, l: u32, x: i32, y: i32, z: i32 }

fn decode_row(r: u32) -> Row {
  var o: Row;
  o.h = r % p.nH;
  let ns = r / p.nH;
  o.n = ns / p.S;
  let sv = ns % p.S;
  o.l = 0u;
  for (var l = 1u; l < p.nL; l++) { if (sv >= p.levels[l].w) { o.l = l; } }
  let lv = p.levels[o.l];
  let vox = sv - lv.w;
  o.x = i32(vox % lv.z);
  o.y = i32((vox / lv.z) % lv.y);
  o.z = i32(vox / (lv.z * lv.y));
  return o;
}

// key of the base cell whose corner k is this row's voxel
fn cell_key(o: Row, k: u32) -> u32 {
  let lv = p.levels[o.l];
  let bit = vec3<i32>(i32(k & 1u), i32((k >> 1u) & 1u), i32(k >> 2u));
  let b = vec3<u32>(vec3<i32>(o.x, o.y, o.z) - bit + vec3<i32>(1)); // padded, in [0, size]
  let pstart = p.pad_starts[o.l / 4u][o.l % 4u];
  return (o.n * p.Sp + pstart + (b.z * (lv.y + 1u) + b.y) * (lv.z + 1u) + b.x) * p.nH + o.h;
}

fn corner_weight(g: vec4<f32>, k: u32) -> f32 {
  let one = vec3<u32>(k & 1u, (k >> 1u) & 1u, k >> 2u) == vec3<u32>(1u);
  let w3 = select(1.0 - g.xyz, g.xyz, one);
  return g.w * (w3.x * w3.y * w3.z);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.total) { return; }
  let ncb = (p.Dh + CPI - 1u) / CPI;
  let c0 = (i % ncb) * CPI;
  let r = i / ncb;
  let o = decode_row(r);
  var acc: array<f32, MAX_CPI>;
  for (var j = 0u; j < CPI; j++) { acc[j] = 0.0; }
  for (var k = 0u; k < 8u; k++) {
    let key = cell_key(o, k);
    let end = offsets[key + 1u];
    for (var e = offsets[key]; e < end; e++) {
      let w = corner_weight(sorted_geo[e], k);
      let base = sorted_q[e] * p.Dh + c0;
      // channels past Dh (last block) read a neighbour or a clamped address: never written
      for (var j = 0u; j < CPI; j++) { acc[j] += w * dy[base + j]; }
    }
  }
  for (var j = 0u; j < CPI; j++) {
    if (c0 + j < p.Dh) { grad[r * p.Dh + c0 + j] = acc[j]; }
  }
}

@compute @workgroup_size(64)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.total) { return; }
  let V = CPI / 4u;
  let dh4 = p.Dh / 4u;
  let ncb = (dh4 + V - 1u) / V;
  let c0 = (i % ncb) * V;
  let r = i / ncb;
  let o = decode_row(r);
  var acc: array<vec4<f32>, 4>;
  for (var j = 0u; j < V; j++) { acc[j] = vec4<f32>(0.0); }
  for (var k = 0u; k < 8u; k++) {
    let key = cell_key(o, k);
    let end = offsets[key + 1u];
    for (var e = offsets[key]; e < end; e++) {
      let w = corner_weight(sorted_geo[e], k);
      let base = sorted_q[e] * dh4 + c0;
      for (var j = 0u; j < V; j++) { acc[j] += w * dy4[base + j]; }
    }
  }
  for (var j = 0u; j < V; j++) {
    if (c0 + j < dh4) { grad4[r * dh4 + c0 + j] = acc[j]; }
  }
}

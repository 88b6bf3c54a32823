// Multi-scale deformable attention (3D) forward, fused: one invocation per output row (n, q, h)
// and block of CPI consecutive channels loops over levels and points, samples value trilinearly
// and weights it:
//   y[n, q, h*Dh + c] = sum_{l,p} a[n,q,h,l,p] * trilinear(value level l, head h, channel c,
//                                                          at loc[n,q,h,l,p] * size - 0.5)
// Bindings: 0 uniforms (levels[l] = (D, H, W, level start along S)), 1 value [N, S, nH, Dh],
// 2 loc [N, Lq, nH, nL, nP, 3] (x→W, y→H, z→D, in [0, 1]), 3 attn [N, Lq, nH, nL, nP],
// 4 y [N, Lq, nH * Dh]; total = N * Lq * nH * ceil(Dh / CPI).
// Trick: the sample position, its bounds tests, corner weights and value row are computed once
// per CPI channels instead of once per channel (on a SIMD-over-invocations device they were the
// bulk of the work); value keeps Dh innermost, so a corner's CPI reads are contiguous.
override CPI: u32 = 8u; // channels per invocation, 1..16
const MAX_CPI: u32 = 16u;
struct Params { total: u32, Lq: u32, S: u32, nH: u32, Dh: u32, nL: u32, nP: u32, _pad: u32,
                levels: array<vec4<u32>, 16> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> value: array<f32>;
@group(0) @binding(2) var<storage, read> loc: array<f32>;
@group(0) @binding(3) var<storage, read> attn: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
// main4 (Dh % 4 == 0, CPI % 4 == 0): the same buffers seen as vec4 (one 16-byte load per 4 channels)
@group(0) @binding(5) var<storage, read> value4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.total) { return; }
  let ncb = (p.Dh + CPI - 1u) / CPI;
  let c0 = (i % ncb) * CPI; // first channel of this invocation
  let qh = i / ncb; // (n * Lq + q) * nH + h
  let h = qh % p.nH;
  let n = qh / p.nH / p.Lq;
  var acc: array<f32, MAX_CPI>;
  for (var j = 0u; j < CPI; j++) { acc[j] = 0.0; }
  for (var l = 0u; l < p.nL; l++) {
    let lv = p.levels[l];
    let size = vec3<i32>(i32(lv.z), i32(lv.y), i32(lv.x)); // (W, H, D) to match loc's (x, y, z)
    let fsize = vec3<f32>(size);
    for (var pt = 0u; pt < p.nP; pt++) {
      let s = (qh * p.nL + l) * p.nP + pt;
      // align_corners=False: grid_sample at 2*loc-1 is voxel coordinate loc*size - 0.5
      let pos = vec3<f32>(loc[3u * s], loc[3u * s + 1u], loc[3u * s + 2u]) * fsize - 0.5;
      if (!(all(pos >= vec3<f32>(-1.0)) && all(pos <= fsize))) { continue; }
      let f0 = floor(pos);
      let fr = pos - f0;
      let cc0 = vec3<i32>(f0);
      let a = attn[s];
      for (var k = 0u; k < 8u; k++) {
        let bit = vec3<u32>(k & 1u, (k >> 1u) & 1u, k >> 2u);
        let cc = cc0 + vec3<i32>(bit);
        if (all(cc >= vec3<i32>(0)) && all(cc < size)) {
          let w3 = select(1.0 - fr, fr, bit == vec3<u32>(1u));
          let w = a * w3.x * w3.y * w3.z;
          let row = (n * p.S + lv.w + (u32(cc.z) * lv.y + u32(cc.y)) * lv.z + u32(cc.x)) * p.nH + h;
          let base = row * p.Dh + c0;
          // channels past Dh (last block) read a neighbour or a clamped address: never written
          for (var j = 0u; j < CPI; j++) { acc[j] += w * value[base + j]; }
        }
      }
    }
  }
  for (var j = 0u; j < CPI; j++) {
    if (c0 + j < p.Dh) { y[qh * p.Dh + c0 + j] = acc[j]; }
  }
}

@compute @workgroup_size(64)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.total) { return; }
  let V = CPI / 4u; // vec4s per invocation
  let dh4 = p.Dh / 4u;
  let ncb = (dh4 + V - 1u) / V;
  let c0 = (i % ncb) * V; // first vec4 of this invocation
  let qh = i / ncb;
  let h = qh % p.nH;
  let n = qh / p.nH / p.Lq;
  var acc: array<vec4<f32>, 4>;
  for (var j = 0u; j < V; j++) { acc[j] = vec4<f32>(0.0); }
  for (var l = 0u; l < p.nL; l++) {
    let lv = p.levels[l];
    let size = vec3<i32>(i32(lv.z), i32(lv.y), i32(lv.x));
    let fsize = vec3<f32>(size);
    for (var pt = 0u; pt < p.nP; pt++) {
      let s = (qh * p.nL + l) * p.nP + pt;
      let pos = vec3<f32>(loc[3u * s], loc[3u * s + 1u], loc[3u * s + 2u]) * fsize - 0.5;
      if (!(all(pos >= vec3<f32>(-1.0)) && all(pos <= fsize))) { continue; }
      let f0 = floor(pos);
      let fr = pos - f0;
      let cc0 = vec3<i32>(f0);
      let a = attn[s];
      for (var k = 0u; k < 8u; k++) {
        let bit = vec3<u32>(k & 1u, (k >> 1u) & 1u, k >> 2u);
        let cc = cc0 + vec3<i32>(bit);
        if (all(cc >= vec3<i32>(0)) && all(cc < size)) {
          let w3 = select(1.0 - fr, fr, bit == vec3<u32>(1u));
          let w = a * w3.x * w3.y * w3.z;
          let row = (n * p.S + lv.w + (u32(cc.z) * lv.y + u32(cc.y)) * lv.z + u32(cc.x)) * p.nH + h;
          let base = row * dh4 + c0;
          for (var j = 0u; j < V; j++) { acc[j] += w * value4[base + j]; }
        }
      }
    }
  }
  for (var j = 0u; j < V; j++) {
    if (c0 + j < dh4) { y4[qh * dh4 + c0 + j] = acc[j]; }
  }
}

// Multi-scale deformable attention (3D) forward, fused: one invocation per output element
// (n, q, h, c) loops over levels and points, samples value trilinearly and weights it:
//   y[n, q, h*Dh + c] = sum_{l,p} a[n,q,h,l,p] * trilinear(value level l, head h, channel c,
//                                                          at loc[n,q,h,l,p] * size - 0.5)
// Bindings: 0 uniforms (levels[l] = (D, H, W, level start along S)), 1 value [N, S, nH, Dh],
// 2 loc [N, Lq, nH, nL, nP, 3] (x→W, y→H, z→D, in [0, 1]), 3 attn [N, Lq, nH, nL, nP],
// 4 y [N, Lq, nH * Dh].
// Trick: consecutive invocations are consecutive channels of one head, so the 8 corner reads
// of a sample are contiguous across the workgroup (value keeps Dh innermost).
struct Params { total: u32, Lq: u32, S: u32, nH: u32, Dh: u32, nL: u32, nP: u32, _pad: u32,
                levels: array<vec4<u32>, 16> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> value: array<f32>;
@group(0) @binding(2) var<storage, read> loc: array<f32>;
@group(0) @binding(3) var<storage, read> attn: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.total) { return; }
  let c = i % p.Dh;
  let qh = i / p.Dh; // (n * Lq + q) * nH + h
  let h = qh % p.nH;
  let n = qh / p.nH / p.Lq;
  var acc = 0.0;
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
      let c0 = vec3<i32>(f0);
      var v = 0.0;
      for (var k = 0u; k < 8u; k++) {
        let bit = vec3<u32>(k & 1u, (k >> 1u) & 1u, k >> 2u);
        let cc = c0 + vec3<i32>(bit);
        if (all(cc >= vec3<i32>(0)) && all(cc < size)) {
          let w3 = select(1.0 - fr, fr, bit == vec3<u32>(1u));
          let row = (n * p.S + lv.w + (u32(cc.z) * lv.y + u32(cc.y)) * lv.z + u32(cc.x)) * p.nH + h;
          v += w3.x * w3.y * w3.z * value[row * p.Dh + c];
        }
      }
      acc += attn[s] * v;
    }
  }
  y[i] = acc;
}

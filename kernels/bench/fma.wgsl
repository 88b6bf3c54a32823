// Ceiling probe: arithmetic only. Each invocation runs 8 independent vec4 FMA chains for
// `iters` rounds (8 · 4 · 2 FLOP per round) and writes one value so nothing is optimised away.
// Bindings: 0 uniforms, 1 out.
struct Params { iters: u32, seed: f32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let s = f32(i) * 1e-7 + u.seed;
  var a0 = vec4<f32>(s, s + 1.0, s + 2.0, s + 3.0);
  var a1 = a0 + 0.1; var a2 = a0 + 0.2; var a3 = a0 + 0.3;
  var a4 = a0 + 0.4; var a5 = a0 + 0.5; var a6 = a0 + 0.6; var a7 = a0 + 0.7;
  let m = vec4<f32>(0.999999);
  let c = vec4<f32>(1e-6);
  for (var k = 0u; k < u.iters; k++) {
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
  }
  let r = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
  out[i] = r.x + r.y + r.z + r.w;
}

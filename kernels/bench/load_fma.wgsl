// Roofline probe for gather-shaped kernels: the conv inner loop with nothing else around it.
// Each invocation walks `iters` consecutive x values starting at its own index (a per-lane load,
// as an implicit-GEMM / direct conv reads its input) and does 16 FMAs per value:
//   MODE 0: against 16 weights read at workgroup-uniform addresses each step (conv_direct's loop)
//   MODE 1: against 16 weights held in registers (the best any per-lane-load kernel can do)
//   MODE 2: 4 per-lane values per 16 uniform weights (a 4-voxel × 16-channel register tile)
// Bindings: 0 uniforms, 1 x, 2 w, 3 out.
override MODE: u32 = 0u;
struct Params { iters: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  let c0 = w[0]; let c1 = w[1]; let c2 = w[2]; let c3 = w[3];
  var xi = i % u.n;
  for (var k = 0u; k < u.iters; k++) {
    let xv = x[xi];
    if (MODE == 2u) {
      // k advances by 4: four x values share each weight read (64 FMAs per 4 weight vec4s)
      let x1 = x[(xi + 1u) % u.n]; let x2 = x[(xi + 2u) % u.n]; let x3 = x[(xi + 3u) % u.n];
      let wi = (k % 64u) * 4u;
      let v0 = w[wi]; let v1 = w[wi + 1u]; let v2 = w[wi + 2u]; let v3 = w[wi + 3u];
      a0 += xv * v0 + x1 * v1; a1 += xv * v1 + x2 * v2; a2 += x2 * v2 + x3 * v3; a3 += x3 * v3 + x1 * v0;
      a0 += x2 * v0 + x3 * v1; a1 += x3 * v1 + xv * v2; a2 += xv * v2 + x1 * v3; a3 += x1 * v3 + x2 * v0;
      k += 3u;
      xi += 3u;
    } else if (MODE == 0u) {
      let wi = (k % 64u) * 4u;
      a0 += xv * w[wi]; a1 += xv * w[wi + 1u]; a2 += xv * w[wi + 2u]; a3 += xv * w[wi + 3u];
    } else {
      a0 += xv * c0; a1 += xv * c1; a2 += xv * c2; a3 += xv * c3;
    }
    xi += 1u;
    if (xi >= u.n) { xi = 0u; }
  }
  let r = a0 + a1 + a2 + a3;
  out[i] = r.x + r.y + r.z + r.w;
}

// Roofline probe for register-tiled conv / GEMM loops on this adapter: each invocation keeps a
// P × Q tile of accumulators; every step it loads P values at per-lane addresses (the input, as a
// direct conv reads it) and Q weights from SOURCE, then does P·Q FMAs. Sweeping P, Q and SOURCE
// shows where such a loop tops out, i.e. the best a conv kernel of that shape can do here.
//   SOURCE 0: weights from a storage buffer at workgroup-uniform addresses (conv_direct today)
//   SOURCE 1: weights from a uniform buffer
//   SOURCE 2: weights from workgroup memory (filled once per workgroup)
//   SOURCE 3: weights held in registers (loaded once before the loop)
// Bindings: 0 uniforms, 1 x, 2 w, 3 wu, 4 out.
override P: u32 = 4u;
override Q: u32 = 8u;
override SOURCE: u32 = 0u;
const MAXP = 8u;
const MAXQ = 16u;
const WN = 1024u; // weight vectors available to each source (16 KiB)
struct Params { iters: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<uniform> wu: array<vec4<f32>, 256>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
var<workgroup> ws: array<f32, WN>;

fn weight(i: u32) -> f32 {
  if (SOURCE == 1u) { return wu[(i >> 2u) & 255u][i & 3u]; }
  if (SOURCE == 2u) { return ws[i & (WN - 1u)]; }
  return w[i & (WN - 1u)];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  if (SOURCE == 2u) {
    for (var j = li; j < WN; j += 64u) { ws[j] = w[j]; }
    workgroupBarrier();
  }
  let i = gid.x + gid.y * nwg.x * 64u;
  var acc: array<f32, 128>; // MAXP · MAXQ
  var held: array<f32, MAXQ>;
  for (var q = 0u; q < Q; q++) { held[q] = weight(q); }
  var xi = (i * P) % (u.n - MAXP * u.iters);
  var wi = 0u;
  for (var k = 0u; k < u.iters; k++) {
    var xv: array<f32, MAXP>;
    for (var p = 0u; p < P; p++) { xv[p] = x[xi + p]; }
    var wv: array<f32, MAXQ>;
    for (var q = 0u; q < Q; q++) {
      if (SOURCE == 3u) { wv[q] = held[q]; } else { wv[q] = weight(wi + q); }
    }
    for (var p = 0u; p < P; p++) {
      for (var q = 0u; q < Q; q++) { acc[p * MAXQ + q] = fma(xv[p], wv[q], acc[p * MAXQ + q]); }
    }
    xi += P;
    wi += Q;
  }
  var r = 0.0;
  for (var p = 0u; p < P; p++) { for (var q = 0u; q < Q; q++) { r += acc[p * MAXQ + q]; } }
  out[i] = r;
}

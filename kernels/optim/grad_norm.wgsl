// Global gradient norm for clipping, without a readback:
//   entry `partial`: each workgroup writes the sum of squares of its 64·ITEMS slice of one
//   gradient into partials[offset + workgroup] (tree reduction in shared memory);
//   entry `finish`: one workgroup sums every partial and writes clip[0] = min(1, max_norm / (norm + 1e-6))
//   and clip[1] = norm (PyTorch's clip_grad_norm_ factor).
// Bindings: 0 uniforms, 1 grad, 2 partials (read_write), 3 clip (read_write).
struct Params { n: u32, offset: u32, count: u32, max_norm: f32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> clip: array<f32>;

const ITEMS: u32 = 16u;
var<workgroup> acc: array<f32, 64>;

fn reduce(lid: u32) {
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) { acc[lid] = acc[lid] + acc[lid + s]; }
    workgroupBarrier();
  }
}

@compute @workgroup_size(64)
fn partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let group = wid.x + wid.y * nwg.x;
  // A split launch may round up to extra workgroups: they must not write past this gradient's slots.
  if (group * 64u * ITEMS >= u.n) { return; }
  var s = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = group * 64u * ITEMS + k * 64u + lid;
    if (i < u.n) { let g = grad[i]; s = s + g * g; }
  }
  acc[lid] = s;
  reduce(lid);
  if (lid == 0u) { partials[u.offset + group] = acc[0]; }
}

@compute @workgroup_size(64)
fn finish(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < u.count; i = i + 64u) { s = s + partials[i]; }
  acc[lid] = s;
  reduce(lid);
  if (lid == 0u) {
    let norm = sqrt(acc[0]);
    clip[0] = min(1.0, u.max_norm / (norm + 1e-6));
    clip[1] = norm;
  }
}

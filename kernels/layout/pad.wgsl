// Constant padding as a gather: each output element reads x at its coordinate minus `before`,
// or writes `value` where that falls outside x. Negative `before`/after crop, so the same kernel
// is slice (negative pads), slice's backward and pad's backward (zero-padding dy back out).
// Bindings: 0 uniforms, 1 x, 2 y.
// Trick: writing as a gather means every output element is written once, no zero-fill pass.
struct Params {
  n: u32, // output elements
  rank: u32,
  value: f32,
  oshape: array<vec4<u32>, 2>,
  ishape: array<vec4<u32>, 2>,
  before: array<vec4<i32>, 2>,
  istr: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  var rem = i;
  var ix = 0u;
  var inside = true;
  for (var d = p.rank; d > 0u; d--) {
    let k = d - 1u;
    let e = p.oshape[k / 4u][k % 4u];
    let c = i32(rem % e) - p.before[k / 4u][k % 4u];
    rem = rem / e;
    if (c < 0 || c >= i32(p.ishape[k / 4u][k % 4u])) { inside = false; }
    ix += u32(max(c, 0)) * p.istr[k / 4u][k % 4u];
  }
  if (inside) { y[i] = x[ix]; } else { y[i] = p.value; }
}

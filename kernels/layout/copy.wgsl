// Strided copy of a region: y[obase + sum c_d*ostr_d] = x[ibase + sum c_d*istr_d] for every
// coordinate c of `shape`. Serves permute (x strides permuted, y contiguous) and concat/stack
// (each input written into its region of the output with the output's strides).
// Bindings: 0 uniforms, 1 x, 2 y.
// Trick: every output element is written by exactly one invocation of exactly one dispatch, so
// concat needs neither a zero-fill nor atomics; dims are coalesced in TypeScript (rank <= 8).
struct Params {
  n: u32, // elements in the region
  rank: u32,
  ibase: u32,
  obase: u32,
  shape: array<vec4<u32>, 2>,
  istr: array<vec4<u32>, 2>,
  ostr: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  var rem = i;
  var ix = p.ibase;
  var iy = p.obase;
  for (var d = p.rank; d > 0u; d--) {
    let k = d - 1u;
    let e = p.shape[k / 4u][k % 4u];
    let c = rem % e;
    rem = rem / e;
    ix += c * p.istr[k / 4u][k % 4u];
    iy += c * p.ostr[k / 4u][k % 4u];
  }
  y[iy] = x[ix];
}

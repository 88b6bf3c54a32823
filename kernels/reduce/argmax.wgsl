// Max and its index over the middle axis of x viewed as [outer, r, inner] (torch.max(x, dim)).
// `small`: one thread per output for short axes (a 64-wide workgroup would mostly idle).
// Bindings: 0 uniforms, 1 x (values), 2 xi (pass >= 2: the partial pass's indices; pass 1: bound
// to x, unused), 3 y (max, [outer, splits, inner]), 4 yi (its index along the axis, u32).
// Trick: (value, index) pairs are combined by one total order so every split and tree shape gives
// the same answer as a sequential scan: NaN beats numbers (PyTorch propagates NaN), a larger value
// beats a smaller one, and on ties the smaller index wins (first occurrence). NaN is tested on the
// bits because compilers may fold `v != v` away.
override FIRST: u32 = 1u; // 1: indices are positions along the axis; 0: read them from xi

struct Params { outer: u32, r: u32, inner: u32, splits: u32, chunk: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> xi: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> yi: array<u32>;

const NONE: u32 = 0xffffffffu;
var<workgroup> bv: array<f32, 64>;
var<workgroup> bi: array<u32, 64>;

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Whether (b, ib) should replace (a, ia).
fn beats(a: f32, ia: u32, b: f32, ib: u32) -> bool {
  if (ib == NONE) { return false; }
  if (ia == NONE) { return true; }
  let an = is_nan(a);
  let bn = is_nan(b);
  if (an || bn) {
    if (an && bn) { return ib < ia; }
    return bn;
  }
  if (b > a) { return true; }
  return b == a && ib < ia;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.outer * p.splits * p.inner) { return; } // uniform per workgroup
  let i = w % p.inner;
  let s = (w / p.inner) % p.splits;
  let o = w / (p.inner * p.splits);
  let j1 = min(p.r, s * p.chunk + p.chunk);
  let base = o * p.r * p.inner + i;
  var v = 0.0;
  var vi = NONE;
  for (var j = s * p.chunk + lid; j < j1; j += 64u) {
    let a = base + j * p.inner;
    var ja = j;
    if (FIRST == 0u) { ja = xi[a]; }
    let c = x[a];
    if (beats(v, vi, c, ja)) { v = c; vi = ja; }
  }
  bv[lid] = v;
  bi[lid] = vi;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k = k >> 1u) {
    if (lid < k && beats(bv[lid], bi[lid], bv[lid + k], bi[lid + k])) {
      bv[lid] = bv[lid + k];
      bi[lid] = bi[lid + k];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    y[w] = bv[0];
    yi[w] = bi[0];
  }
}

// One thread per output (splits must be 1).
@compute @workgroup_size(64)
fn small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.outer * p.inner) { return; }
  let base = (e / p.inner) * p.r * p.inner + e % p.inner;
  var v = 0.0;
  var vi = NONE;
  for (var j = 0u; j < p.r; j++) {
    let a = base + j * p.inner;
    var ja = j;
    if (FIRST == 0u) { ja = xi[a]; }
    let c = x[a];
    if (beats(v, vi, c, ja)) { v = c; vi = ja; }
  }
  y[e] = v;
  yi[e] = vi;
}

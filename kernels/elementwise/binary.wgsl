// Broadcasting binary ops y = a OP b, and their gradients summed back to an input's shape.
// OP codes (keep in step with BINARY in src/graph/ops/elementwise.ts):
//   0 add, 1 sub, 2 mul, 3 div, 4 maximum, 5 minimum, 6 copy a (broadcast_to; grad: plain sum).
// Bindings: 0 uniforms, 1 a, 2 b, 3 dy (grad only; bound to a in forward), 4 y;
// 5 a4, 6 b4, 7 dy4, 8 y4: the same as vec4 arrays for main4 / grad4, the same-shape case (no
// broadcast, no reduction): they grid-stride over the bulk (a multiple of 64 elements, n counts
// vec4s there) while main / grad (rank 1, unit strides) take the scalar tail.
// Strides are per output dim in elements, 0 where an operand is broadcast; dims are coalesced in
// TypeScript so the rank here is usually 1-3.
// Trick (grad): the reduction over broadcast dims is a gather, not a scatter (no float atomics):
// each target element t (of `shape`) loops over the `rshape` positions that broadcast onto it,
// optionally only over one of `split` chunks of them (a two-pass reduction when the target is
// small and the broadcast large). Coordinates are t's over `shape` plus j's over `rshape`:
// every dim is 1 in one of the two, so they never collide.
override OP: u32 = 0u;
override SIDE: u32 = 0u; // grad: 0 = d/da, 1 = d/db

struct Params {
  n: u32, // forward: output elements; grad: target elements times split
  rank: u32,
  count: u32, // grad: broadcast positions per target element
  chunk: u32, // grad: positions per split chunk
  shape: array<vec4<u32>, 2>, // forward: output shape; grad: target shape (1 on reduced dims)
  rshape: array<vec4<u32>, 2>, // grad: reduced extents (1 on kept dims)
  ostr: array<vec4<u32>, 2>, // grad: dy strides
  astr: array<vec4<u32>, 2>,
  bstr: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> y4: array<vec4<f32>>;

fn at(v: array<vec4<u32>, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn apply(x: f32, w: f32) -> f32 {
  switch OP {
    case 0u: { return x + w; }
    case 1u: { return x - w; }
    case 2u: { return x * w; }
    case 3u: { return x / w; }
    // max/min propagate NaN like PyTorch (the builtins may not; NaN tested from the bits, since
    // llvmpipe folds 'x != x' to false).
    case 4u: { if (is_nan(x) || is_nan(w)) { return select(w, x, is_nan(x)); } return max(x, w); }
    case 5u: { if (is_nan(x) || is_nan(w)) { return select(w, x, is_nan(x)); } return min(x, w); }
    default: { return x; }
  }
}

// d(a OP b)/d(side) times g. Ties of maximum/minimum split the gradient evenly (PyTorch).
fn partial(g: f32, x: f32, w: f32) -> f32 {
  switch OP {
    case 1u: { return select(g, -g, SIDE == 1u); }
    case 2u: { return select(g * w, g * x, SIDE == 1u); }
    case 3u: { return select(g / w, -g * (x / w) / w, SIDE == 1u); }
    case 4u: {
      let mine = select(x, w, SIDE == 1u);
      let other = select(w, x, SIDE == 1u);
      return select(select(0.0, g, mine > other), 0.5 * g, mine == other);
    }
    case 5u: {
      let mine = select(x, w, SIDE == 1u);
      let other = select(w, x, SIDE == 1u);
      return select(select(0.0, g, mine < other), 0.5 * g, mine == other);
    }
    default: { return g; }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  var rem = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = p.rank; d > 0u; d--) {
    let e = at(p.shape, d - 1u);
    let cd = rem % e;
    rem = rem / e;
    ia += cd * at(p.astr, d - 1u);
    ib += cd * at(p.bstr, d - 1u);
  }
  y[i] = apply(a[ia], b[ib]);
}

@compute @workgroup_size(64)
fn grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  var tn = 1u;
  for (var d = 0u; d < p.rank; d++) { tn *= at(p.shape, d); }
  let t = i % tn;
  let s = i / tn;
  var rem = t;
  var bo = 0u;
  var ba = 0u;
  var bb = 0u;
  for (var d = p.rank; d > 0u; d--) {
    let e = at(p.shape, d - 1u);
    let cd = rem % e;
    rem = rem / e;
    bo += cd * at(p.ostr, d - 1u);
    ba += cd * at(p.astr, d - 1u);
    bb += cd * at(p.bstr, d - 1u);
  }
  let j0 = s * p.chunk;
  let j1 = min(p.count, j0 + p.chunk);
  var acc = 0.0;
  for (var j = j0; j < j1; j++) {
    var r = j;
    var io = bo;
    var ja = ba;
    var jb = bb;
    for (var d = p.rank; d > 0u; d--) {
      let e = at(p.rshape, d - 1u);
      let cd = r % e;
      r = r / e;
      io += cd * at(p.ostr, d - 1u);
      ja += cd * at(p.astr, d - 1u);
      jb += cd * at(p.bstr, d - 1u);
    }
    var x = 0.0;
    var w = 0.0;
    // Only the ops whose partial reads the operands touch them (a, b are dummies for sums).
    if (OP >= 2u && OP <= 5u) { x = a[ja]; w = b[jb]; }
    acc += partial(dy[io], x, w);
  }
  y[i] = acc;
}

fn apply4(x: vec4<f32>, w: vec4<f32>) -> vec4<f32> {
  switch OP {
    case 0u: { return x + w; }
    case 1u: { return x - w; }
    case 2u: { return x * w; }
    case 3u: { return x / w; }
    default: { return vec4<f32>(apply(x.x, w.x), apply(x.y, w.y), apply(x.z, w.z), apply(x.w, w.w)); }
  }
}

@compute @workgroup_size(64)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  for (var i = gid.x + gid.y * nwg.x * 64u; i < p.n; i += stride) {
    y4[i] = apply4(a4[i], b4[i]);
  }
}

@compute @workgroup_size(64)
fn grad4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  for (var i = gid.x + gid.y * nwg.x * 64u; i < p.n; i += stride) {
    let g = dy4[i];
    var x = vec4<f32>(0.0);
    var w = vec4<f32>(0.0);
    if (OP >= 2u && OP <= 5u) { x = a4[i]; w = b4[i]; }
    y4[i] = vec4<f32>(partial(g.x, x.x, w.x), partial(g.y, x.y, w.y), partial(g.z, x.z, w.z), partial(g.w, x.w, w.w));
  }
}

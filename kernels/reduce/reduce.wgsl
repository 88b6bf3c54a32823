// Sum (and mean, via `scale`) over the middle axis of x viewed as [outer, r, inner], and the
// backward of sum/mean/max spreading dy back over that axis.
// Bindings: 0 uniforms, 1 x (forward: input; backward: dy [outer, inner]), 2 idx (backward of max:
// argmax per output, u32; otherwise bound to x as a dummy), 3 y (forward: [outer, splits, inner];
// backward: dx [outer, r, inner]).
// Trick: `main` is a workgroup tree reduction of one (o, chunk s, i) triple per workgroup; a long
// axis is cut into `splits` chunks so there are enough workgroups, and TypeScript reduces the
// [outer, splits, inner] partials again with this same kernel (two or more passes). `small` is a
// plain loop per output for short axes, where a 64-wide workgroup would mostly idle.
override OP: u32 = 0u; // backward: 0 broadcast scale*dy (sum, mean), 1 route dy to the argmax (max)

struct Params { outer: u32, r: u32, inner: u32, splits: u32, chunk: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> acc: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  // w is uniform over the workgroup, so returning before the barriers is allowed.
  if (w >= p.outer * p.splits * p.inner) { return; }
  let i = w % p.inner;
  let s = (w / p.inner) % p.splits;
  let o = w / (p.inner * p.splits);
  let j1 = min(p.r, s * p.chunk + p.chunk);
  let base = o * p.r * p.inner + i;
  var t = 0.0;
  for (var j = s * p.chunk + lid; j < j1; j += 64u) { t += x[base + j * p.inner]; }
  acc[lid] = t;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k = k >> 1u) {
    if (lid < k) { acc[lid] += acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { y[w] = acc[0] * p.scale; }
}

// One thread per output (splits must be 1).
@compute @workgroup_size(64)
fn small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.outer * p.inner) { return; }
  let i = e % p.inner;
  let o = e / p.inner;
  let base = o * p.r * p.inner + i;
  var t = 0.0;
  for (var j = 0u; j < p.r; j++) { t += x[base + j * p.inner]; }
  y[e] = t * p.scale;
}

// One thread per dx element: a gather, so no atomics.
@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.outer * p.r * p.inner) { return; }
  let i = e % p.inner;
  let j = (e / p.inner) % p.r;
  let o = e / (p.inner * p.r);
  let g = x[o * p.inner + i];
  if (OP == 0u) {
    y[e] = g * p.scale;
  } else {
    y[e] = select(0.0, g, idx[o * p.inner + i] == j);
  }
}

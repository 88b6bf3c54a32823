// Softmax over the middle axis of x viewed as [outer, r, inner], and its backward
// dx = y * (dy - sum(dy * y)) over the same axis.
// Bindings: 0 uniforms, 1 x (forward: input; backward: the forward output y), 2 dy (backward only;
// bound to x in forward), 3 y (forward: softmax; backward: dx).
// Trick: numerically stable (exp(x - max)); a row of length r is strided by `inner`, so any axis
// works without a permute. Short rows (`main`, `backward`) get a thread each; long rows
// (`main_wg`, `backward_wg`) a workgroup each with tree reductions for the max and the sums.
struct Params { outer: u32, r: u32, inner: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> red: array<f32, 64>;

fn row_base(row: u32) -> u32 {
  return (row / p.inner) * p.r * p.inner + row % p.inner;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= p.outer * p.inner) { return; }
  let b = row_base(row);
  var m = x[b];
  for (var j = 1u; j < p.r; j++) { m = max(m, x[b + j * p.inner]); }
  var s = 0.0;
  for (var j = 0u; j < p.r; j++) { s += exp(x[b + j * p.inner] - m); }
  let inv = 1.0 / s;
  for (var j = 0u; j < p.r; j++) { y[b + j * p.inner] = exp(x[b + j * p.inner] - m) * inv; }
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= p.outer * p.inner) { return; }
  let b = row_base(row);
  var d = 0.0;
  for (var j = 0u; j < p.r; j++) { d += x[b + j * p.inner] * dy[b + j * p.inner]; }
  for (var j = 0u; j < p.r; j++) {
    let a = b + j * p.inner;
    y[a] = x[a] * (dy[a] - d);
  }
}

// Workgroup tree reduction (max or sum) of one value per invocation; all of them get the result.
fn tree(lid: u32, v: f32, take_max: bool) -> f32 {
  workgroupBarrier(); // earlier readers of red[0] are done
  red[lid] = v;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      if (take_max) { red[lid] = max(red[lid], red[lid + k]); } else { red[lid] += red[lid + k]; }
    }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(64)
fn main_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.outer * p.inner) { return; } // uniform per workgroup
  let b = row_base(row);
  var m = x[b];
  for (var j = lid; j < p.r; j += 64u) { m = max(m, x[b + j * p.inner]); }
  m = tree(lid, m, true);
  var s = 0.0;
  for (var j = lid; j < p.r; j += 64u) { s += exp(x[b + j * p.inner] - m); }
  let inv = 1.0 / tree(lid, s, false);
  for (var j = lid; j < p.r; j += 64u) { y[b + j * p.inner] = exp(x[b + j * p.inner] - m) * inv; }
}

@compute @workgroup_size(64)
fn backward_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.outer * p.inner) { return; } // uniform per workgroup
  let b = row_base(row);
  var d = 0.0;
  for (var j = lid; j < p.r; j += 64u) { d += x[b + j * p.inner] * dy[b + j * p.inner]; }
  d = tree(lid, d, false);
  for (var j = lid; j < p.r; j += 64u) {
    let a = b + j * p.inner;
    y[a] = x[a] * (dy[a] - d);
  }
}

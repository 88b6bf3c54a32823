// PReLU y = x > 0 ? x : w[c] * x, with one slope (channels = 1, inner = all elements) or one per
// channel of dim 1 (x viewed as [outer, channels, inner]).
// Entries: main (forward), backward (dx and per-workgroup partial sums of dw), reduce (dw).
// Bindings: 0 uniforms, 1 x, 2 weight, 3 dy (backward only),
// 4 out (main: y, backward: dx, reduce: dw), 5 partials (backward writes one sum per
// workgroup, reduce reads them).
// Trick: dw[c] = sum over channel c of (x > 0 ? 0 : x * dy) is a two-pass reduction with no
// atomics: `groups` workgroups per channel grid-stride over its elements (writing dx on the
// way, so every element is visited once) and tree-sum in shared memory; reduce then tree-sums
// each channel's partials. Deterministic.
struct Params {
  n: u32,        // elements of x
  inner: u32,    // elements per (outer, channel) run
  channels: u32, // slopes
  count: u32,    // elements per channel: outer * inner
  groups: u32,   // workgroups (partials) per channel
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

const WG: u32 = 128u;
var<workgroup> acc: array<f32, 128>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let v = x[i];
  out[i] = select(weight[(i / p.inner) % p.channels] * v, v, v > 0.0);
}

// Tree sum of acc[0..128) into acc[0]; every invocation of the workgroup must call it.
fn tree(lid: u32) {
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    workgroupBarrier();
    if (lid < s) { acc[lid] += acc[lid + s]; }
  }
  workgroupBarrier();
}

@compute @workgroup_size(128)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  // a launch split over x and y rounds up: surplus workgroups own no slot (uniform per workgroup)
  if (w >= p.channels * p.groups) { return; }
  let c = w / p.groups;
  let g = w % p.groups;
  let slope = weight[c];
  var sum = 0.0;
  for (var k = g * WG + lid; k < p.count; k += p.groups * WG) {
    let e = ((k / p.inner) * p.channels + c) * p.inner + k % p.inner;
    let v = x[e];
    let d = dy[e];
    out[e] = select(slope * d, d, v > 0.0);
    sum += select(v * d, 0.0, v > 0.0);
  }
  acc[lid] = sum;
  tree(lid);
  if (lid == 0u) { partials[w] = acc[0]; }
}

@compute @workgroup_size(128)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= p.channels) { return; }
  var sum = 0.0;
  for (var g = lid; g < p.groups; g += WG) { sum += partials[c * p.groups + g]; }
  acc[lid] = sum;
  tree(lid);
  if (lid == 0u) { out[c] = acc[0]; }
}

// Softmax over contiguous rows of r values (the last axis) that fit one workgroup's registers, and
// its backward dx = y * (dy - sum(dy * y)). Each workgroup takes `rpw` consecutive rows; each
// invocation holds up to K vec4 (`*4` entries: r % 4 == 0, 16-byte aligned) or K*4 scalars (`*1`)
// of a row, so x (forward) or y and dy (backward) are read once and exp is evaluated once.
// Bindings: 0 uniforms, 1 xv/x (forward: input; backward: the forward output y), 2 dyv/dy
// (backward), 3 outv/out (forward: softmax; backward: dx). An entry binds only what it uses.
// Trick: numerically stable (exp(x - max)); each workgroup reduction costs one barrier (see
// allred), and the row and element indices are loop counters, no integer division.
override WG: u32 = 64u; // 32..256; TypeScript picks it so ceil(r/4/WG) <= K
const K = 4u;
const K1 = 16u;

struct Params { rows: u32, r: u32, rpw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dyv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> outv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, 2u * WG>;

// Max (take_max) or sum over the workgroup of one value per invocation; every invocation gets the
// result. One barrier: each invocation reduces all WG slots itself (the same addresses in every
// invocation). Callers alternate `slot` (0, 1) between consecutive reductions, so the barrier of
// one also separates the reads of the one before it from the writes of the one after it.
fn allred(slot: u32, lid: u32, v: f32, take_max: bool) -> f32 {
  let o = slot * WG;
  red[o + lid] = v;
  workgroupBarrier();
  var s = red[o];
  for (var k = 1u; k < WG; k++) {
    if (take_max) { s = max(s, red[o + k]); } else { s += red[o + k]; }
  }
  return s;
}

fn wg_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

@compute @workgroup_size(WG)
fn fwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.r / 4u;
  for (var row = r0; row < r1; row++) {
    let base = row * nv;
    var v: array<vec4<f32>, K>;
    var m = xv[base]; // any element of the row: lanes without data keep it
    for (var k = 0u; k < K; k++) {
      let j = lid + k * WG;
      v[k] = m;
      if (j < nv) { v[k] = xv[base + j]; }
      m = max(m, v[k]);
    }
    let mx = allred(0u, lid, max(max(m.x, m.y), max(m.z, m.w)), true);
    var s = 0.0;
    for (var k = 0u; k < K; k++) {
      if (lid + k * WG < nv) {
        v[k] = exp(v[k] - mx);
        s += dot(v[k], vec4<f32>(1.0));
      }
    }
    let inv = 1.0 / allred(1u, lid, s, false);
    for (var k = 0u; k < K; k++) {
      let j = lid + k * WG;
      if (j < nv) { outv[base + j] = v[k] * inv; }
    }
  }
}

@compute @workgroup_size(WG)
fn fwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  for (var row = r0; row < r1; row++) {
    let base = row * p.r;
    var v: array<f32, K1>;
    var m = x[base];
    for (var k = 0u; k < K1; k++) {
      let j = lid + k * WG;
      v[k] = m;
      if (j < p.r) { v[k] = x[base + j]; }
      m = max(m, v[k]);
    }
    let mx = allred(0u, lid, m, true);
    var s = 0.0;
    for (var k = 0u; k < K1; k++) {
      if (lid + k * WG < p.r) {
        v[k] = exp(v[k] - mx);
        s += v[k];
      }
    }
    let inv = 1.0 / allred(1u, lid, s, false);
    for (var k = 0u; k < K1; k++) {
      let j = lid + k * WG;
      if (j < p.r) { out[base + j] = v[k] * inv; }
    }
  }
}

@compute @workgroup_size(WG)
fn bwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.r / 4u;
  for (var row = r0; row < r1; row++) {
    let base = row * nv;
    var y: array<vec4<f32>, K>;
    var g: array<vec4<f32>, K>;
    var s = 0.0;
    for (var k = 0u; k < K; k++) {
      let j = lid + k * WG;
      y[k] = vec4<f32>(0.0);
      g[k] = vec4<f32>(0.0);
      if (j < nv) {
        y[k] = xv[base + j];
        g[k] = dyv[base + j];
      }
      s += dot(y[k], g[k]);
    }
    let d = allred((row - r0) & 1u, lid, s, false);
    for (var k = 0u; k < K; k++) {
      let j = lid + k * WG;
      if (j < nv) { outv[base + j] = y[k] * (g[k] - d); }
    }
  }
}

@compute @workgroup_size(WG)
fn bwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  for (var row = r0; row < r1; row++) {
    let base = row * p.r;
    var y: array<f32, K1>;
    var g: array<f32, K1>;
    var s = 0.0;
    for (var k = 0u; k < K1; k++) {
      let j = lid + k * WG;
      y[k] = 0.0;
      g[k] = 0.0;
      if (j < p.r) {
        y[k] = x[base + j];
        g[k] = dy[base + j];
      }
      s += y[k] * g[k];
    }
    let d = allred((row - r0) & 1u, lid, s, false);
    for (var k = 0u; k < K1; k++) {
      let j = lid + k * WG;
      if (j < p.r) { out[base + j] = y[k] * (g[k] - d); }
    }
  }
}

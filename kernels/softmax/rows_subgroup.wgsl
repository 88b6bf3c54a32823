enable subgroups;
// Softmax over contiguous rows of r values (the last axis) and its backward
// dx = y * (dy - sum(dy * y)), one subgroup per row: the same entries and bindings as rows.wgsl,
// chosen when the device has 'subgroups' with one fixed subgroup size. A workgroup is exactly one
// subgroup (WG = that size, set by the caller) and walks `rpw` consecutive rows one after
// another; each lane takes every WG-th vec4 (or scalar) of the row.
// Why: no workgroup barrier (on llvmpipe one splits the shader into coroutines and the team
// merge through workgroup memory cost more than the loads; bench/NOTES.md).
// Forward: three walks over the row (the second and third from cache): max (subgroupMax), sum of
// exp(x - max) (subgroupAdd), then exp(x - max) / sum. Two exp per value and no branch: an online
// (max, sum) rescales per value, which llvmpipe runs on every lane (a third exp) since the lanes'
// branches diverge. Backward: sum(dy * y) with subgroupAdd.
override WG: u32 = 8u; // the device's subgroup size

struct Params { rows: u32, r: u32, rpw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dyv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> outv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

fn wg_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

const NEG = -3.402823e38;

@compute @workgroup_size(WG)
fn fwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) t: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.r / 4u;
  for (var row = r0; row < r1; row++) {
    let base = row * nv;
    var mv = vec4<f32>(NEG);
    for (var j = t; j < nv; j += WG) { mv = max(mv, xv[base + j]); }
    let m = subgroupMax(max(max(mv.x, mv.y), max(mv.z, mv.w)));
    var sv = vec4<f32>(0.0);
    for (var j = t; j < nv; j += WG) {
      let e = exp(xv[base + j] - m);
      outv[base + j] = e;
      sv += e;
    }
    let inv = 1.0 / subgroupAdd(dot(sv, vec4<f32>(1.0)));
    for (var j = t; j < nv; j += WG) { outv[base + j] *= inv; }
  }
}

@compute @workgroup_size(WG)
fn fwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) t: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  for (var row = r0; row < r1; row++) {
    let base = row * p.r;
    var mx = NEG;
    for (var j = t; j < p.r; j += WG) { mx = max(mx, x[base + j]); }
    let m = subgroupMax(mx);
    var s = 0.0;
    for (var j = t; j < p.r; j += WG) {
      let e = exp(x[base + j] - m);
      out[base + j] = e;
      s += e;
    }
    let inv = 1.0 / subgroupAdd(s);
    for (var j = t; j < p.r; j += WG) { out[base + j] *= inv; }
  }
}

@compute @workgroup_size(WG)
fn bwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) t: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.r / 4u;
  for (var row = r0; row < r1; row++) {
    let base = row * nv;
    var s = 0.0;
    for (var j = t; j < nv; j += WG) { s += dot(xv[base + j], dyv[base + j]); }
    let d = subgroupAdd(s);
    for (var j = t; j < nv; j += WG) { outv[base + j] = xv[base + j] * (dyv[base + j] - d); }
  }
}

@compute @workgroup_size(WG)
fn bwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) t: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  for (var row = r0; row < r1; row++) {
    let base = row * p.r;
    var s = 0.0;
    for (var j = t; j < p.r; j += WG) { s += x[base + j] * dy[base + j]; }
    let d = subgroupAdd(s);
    for (var j = t; j < p.r; j += WG) { out[base + j] = x[base + j] * (dy[base + j] - d); }
  }
}

// Softmax over contiguous rows of r values (the last axis), and its backward
// dx = y * (dy - sum(dy * y)): the shared body of rows.wgsl and rows_subgroup.wgsl (spliced in
// with `// #include "softmax/rows_body"`; the includer defines the team reductions
// team_softmax(slot, lid, (max, sum)) -> (max, sum), team_max(slot, lid, f32) -> f32 and
// team_sum(slot, lid, f32) -> f32 over the TPR invocations of a row). A workgroup of WG invocations takes `rpw` consecutive rows, WG / TPR
// at a time (one per team of TPR invocations); `*4` entries load vec4 (r % 4 == 0, 16-byte
// aligned), `*1` entries scalars.
// Bindings: 0 uniforms, 1 xv/x (forward: input; backward: the forward output y), 2 dyv/dy
// (backward), 3 outv/out (forward: softmax; backward: dx). An entry binds only what it uses.
// fwd4r (rows of at most 4 * CAP * TPR values): invocation t of a team holds vec4s t, t + TPR, ...
// of its row in a private array (constant indices once the VPL loop is unrolled: registers), takes
// the row max (team_max), then exp(x - max) once per value into the same registers, their sum
// (team_sum) and writes them scaled: one load, one exp and one store per value (fwd4 takes two
// exps per value and reads the row twice). Used on rows_subgroup.wgsl only (in rows.wgsl the
// array would live across barriers).
// Tricks (fwd4, fwd1, bwd): one reduction per row. Forward: each invocation keeps an online (max, sum of exp(x - max))
// over its values, the team merges its TPR pairs after the barrier, then the row is read again
// (from cache) to write exp(x - max) / sum. Backward: sum(dy * y) the same way. Nothing but
// scalars lives across a reduction (on llvmpipe a barrier splits the shader into coroutines, and
// live arrays there cost compile time and spills); no integer division per element.
override TPR: u32 = 8u; // invocations per row, power of two
override WG: u32 = 32u; // a multiple of TPR
override VPL: u32 = 1u; // fwd4r: vec4s per invocation, ceil(r / 4 / TPR) <= CAP
override FULL: bool = false; // fwd4r: r / 4 == VPL * TPR (no column guards)
const CAP = 16u;

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
fn fwd4r(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.r / 4u;
  let t = lid % TPR;
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let row = rb + lid / TPR;
    let live = row < r1; // a team past the last row computes on row r1 - 1 and stores nothing
    let base = min(row, r1 - 1u) * nv;
    var v: array<vec4<f32>, CAP>;
    var mx = vec4<f32>(NEG);
    for (var k = 0u; k < VPL; k++) {
      let j = t + k * TPR;
      if (FULL || j < nv) { v[k] = xv[base + j]; } else { v[k] = vec4<f32>(NEG); }
      mx = max(mx, v[k]);
    }
    let m = team_max(0u, lid, max(max(mx.x, mx.y), max(mx.z, mx.w)));
    var s = vec4<f32>(0.0);
    for (var k = 0u; k < VPL; k++) {
      v[k] = exp(v[k] - m); // the padding (NEG) underflows to 0
      s += v[k];
    }
    let inv = 1.0 / team_sum(1u, lid, dot(s, vec4<f32>(1.0)));
    for (var k = 0u; k < VPL; k++) {
      let j = t + k * TPR;
      if (live && (FULL || j < nv)) { outv[base + j] = v[k] * inv; }
    }
  }
}

@compute @workgroup_size(WG)
fn fwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.r / 4u;
  let t = lid % TPR;
  var it = 0u;
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let row = rb + lid / TPR;
    let n = select(0u, nv, row < r1); // values of this team's row (none past the last row)
    let base = row * nv;
    var m = NEG;
    var s = 0.0;
    for (var j = t; j < n; j += TPR) {
      let v = xv[base + j];
      let mb = max(max(v.x, v.y), max(v.z, v.w));
      if (mb > m) {
        s *= exp(m - mb);
        m = mb;
      }
      s += dot(exp(v - m), vec4<f32>(1.0));
    }
    let ms = team_softmax(it & 1u, lid, vec2<f32>(m, s));
    let inv = 1.0 / ms.y;
    for (var j = t; j < n; j += TPR) { outv[base + j] = exp(xv[base + j] - ms.x) * inv; }
    it++;
  }
}

@compute @workgroup_size(WG)
fn fwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let t = lid % TPR;
  var it = 0u;
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let row = rb + lid / TPR;
    let n = select(0u, p.r, row < r1);
    let base = row * p.r;
    var m = NEG;
    var s = 0.0;
    for (var j = t; j < n; j += TPR) {
      let v = x[base + j];
      if (v > m) {
        s *= exp(m - v);
        m = v;
      }
      s += exp(v - m);
    }
    let ms = team_softmax(it & 1u, lid, vec2<f32>(m, s));
    let inv = 1.0 / ms.y;
    for (var j = t; j < n; j += TPR) { out[base + j] = exp(x[base + j] - ms.x) * inv; }
    it++;
  }
}

// dx = y * (dy - sum(dy * y)) from registers: invocation t of a team holds vec4s t, t + TPR, ... of
// the row's y and dy (as fwd4r), so each is read once (bwd4 reads both twice).
@compute @workgroup_size(WG)
fn bwd4r(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.r / 4u;
  let t = lid % TPR;
  var it = 0u;
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let row = rb + lid / TPR;
    let live = row < r1; // a team past the last row computes on row r1 - 1 and stores nothing
    let base = min(row, r1 - 1u) * nv;
    var yr: array<vec4<f32>, CAP>;
    var gr: array<vec4<f32>, CAP>;
    for (var k = 0u; k < VPL; k++) {
      let j = t + k * TPR;
      if (FULL || j < nv) { yr[k] = xv[base + j]; } else { yr[k] = vec4<f32>(0.0); }
    }
    var s = vec4<f32>(0.0);
    for (var k = 0u; k < VPL; k++) { // one stream after the other: faster than interleaved loads
      let j = t + k * TPR;
      if (FULL || j < nv) { gr[k] = dyv[base + j]; } else { gr[k] = vec4<f32>(0.0); }
      s += yr[k] * gr[k];
    }
    let d = team_sum(it & 1u, lid, dot(s, vec4<f32>(1.0)));
    for (var k = 0u; k < VPL; k++) {
      let j = t + k * TPR;
      if (live && (FULL || j < nv)) { outv[base + j] = yr[k] * (gr[k] - d); }
    }
    it++;
  }
}

@compute @workgroup_size(WG)
fn bwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.r / 4u;
  let t = lid % TPR;
  var it = 0u;
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let row = rb + lid / TPR;
    let n = select(0u, nv, row < r1);
    let base = row * nv;
    var s = 0.0;
    for (var j = t; j < n; j += TPR) { s += dot(xv[base + j], dyv[base + j]); }
    let d = team_sum(it & 1u, lid, s);
    for (var j = t; j < n; j += TPR) { outv[base + j] = xv[base + j] * (dyv[base + j] - d); }
    it++;
  }
}

@compute @workgroup_size(WG)
fn bwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let t = lid % TPR;
  var it = 0u;
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let row = rb + lid / TPR;
    let n = select(0u, p.r, row < r1);
    let base = row * p.r;
    var s = 0.0;
    for (var j = t; j < n; j += TPR) { s += x[base + j] * dy[base + j]; }
    let d = team_sum(it & 1u, lid, s);
    for (var j = t; j < n; j += TPR) { out[base + j] = x[base + j] * (dy[base + j] - d); }
    it++;
  }
}

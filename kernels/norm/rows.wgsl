// Layer norm over contiguous rows of d features that fit one workgroup's registers, statistics and
// apply fused: each workgroup takes `rpw` consecutive rows, each invocation holds up to K vec4
// (`*4` entries, d % 4 == 0, 16-byte aligned) or K*4 scalars (`*1` entries) of a row, so x (and
// dy) are read once per row; invocation `lid` always owns the same features, so the backward
// accumulates the weight/bias column sums of its rows in registers too.
// Entries: fwd4/fwd1 write y and the row statistics (smean, svar: mean and biased variance);
// bwd4/bwd1 read them and write dx (DX) and/or the per-workgroup column partials (COLS:
// part [2, workgroups, d]: sum dy, then sum dy * xhat; TypeScript sums the workgroups).
// Bindings: 0 uniforms, 1 x/xv, 2 weight/wv (HAS_W), 3 bias/bv (HAS_B), 4 dy/dyv, 5 mean, 6 var_,
// 7 smean, 8 svar, 9 out/outv, 10 part/partv. An entry binds only what it uses.
// Trick: two-pass statistics on the register copy (mean, then the centred sum of squares) with a
// workgroup sum each (one barrier, see allsum); row and feature indices are loop counters, no integer division.
override WG: u32 = 64u; // power of two, 32..256; TypeScript picks it so ceil(d/4/WG) <= K
override HAS_W: bool = true;
override HAS_B: bool = true;
override DX: bool = true;
override COLS: bool = false;
const K = 4u;
const K1 = 16u;

struct Params { rows: u32, d: u32, rpw: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> dyv: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> mean: array<f32>;
@group(0) @binding(6) var<storage, read> var_: array<f32>;
@group(0) @binding(7) var<storage, read_write> smean: array<f32>;
@group(0) @binding(8) var<storage, read_write> svar: array<f32>;
@group(0) @binding(9) var<storage, read_write> outv: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> partv: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> x: array<f32>;
@group(0) @binding(12) var<storage, read> weight: array<f32>;
@group(0) @binding(13) var<storage, read> bias: array<f32>;
@group(0) @binding(14) var<storage, read> dy: array<f32>;
@group(0) @binding(15) var<storage, read_write> out: array<f32>;
@group(0) @binding(16) var<storage, read_write> part: array<f32>;

var<workgroup> red: array<vec2<f32>, 2u * WG>;

// Sum over the workgroup of one vec2 per invocation; every invocation gets the result. One
// barrier: each invocation sums all WG slots itself (the same addresses in every invocation).
// Callers alternate `slot` (0, 1) between consecutive sums, so the barrier of one sum also
// separates the reads of the sum before it from the writes of the sum after it.
fn allsum(slot: u32, lid: u32, v: vec2<f32>) -> vec2<f32> {
  let o = slot * WG;
  red[o + lid] = v;
  workgroupBarrier();
  var s = vec2<f32>(0.0);
  for (var k = 0u; k < WG; k++) { s += red[o + k]; }
  return s;
}

fn wg_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

@compute @workgroup_size(WG)
fn fwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.d / 4u;
  let inv_d = 1.0 / f32(p.d);
  for (var r = r0; r < r1; r++) {
    let base = r * nv;
    var v: array<vec4<f32>, K>;
    var s = 0.0;
    for (var k = 0u; k < K; k++) {
      let j = lid + k * WG;
      v[k] = vec4<f32>(0.0);
      if (j < nv) { v[k] = xv[base + j]; }
      s += dot(v[k], vec4<f32>(1.0));
    }
    let m = allsum(0u, lid, vec2<f32>(s, 0.0)).x * inv_d;
    var q = 0.0;
    for (var k = 0u; k < K; k++) {
      if (lid + k * WG < nv) {
        let e = v[k] - m;
        q += dot(e, e);
      }
    }
    let va = allsum(1u, lid, vec2<f32>(q, 0.0)).x * inv_d;
    // 1/sqrt rather than inverseSqrt: the builtin may be a low-precision approximation.
    let rstd = 1.0 / sqrt(va + p.eps);
    for (var k = 0u; k < K; k++) {
      let j = lid + k * WG;
      if (j < nv) {
        var o = (v[k] - m) * rstd;
        if (HAS_W) { o *= wv[j]; }
        if (HAS_B) { o += bv[j]; }
        outv[base + j] = o;
      }
    }
    if (lid == 0u) {
      smean[r] = m;
      svar[r] = va;
    }
  }
}

@compute @workgroup_size(WG)
fn fwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let inv_d = 1.0 / f32(p.d);
  for (var r = r0; r < r1; r++) {
    let base = r * p.d;
    var v: array<f32, K1>;
    var s = 0.0;
    for (var k = 0u; k < K1; k++) {
      let j = lid + k * WG;
      v[k] = 0.0;
      if (j < p.d) { v[k] = x[base + j]; }
      s += v[k];
    }
    let m = allsum(0u, lid, vec2<f32>(s, 0.0)).x * inv_d;
    var q = 0.0;
    for (var k = 0u; k < K1; k++) {
      if (lid + k * WG < p.d) {
        let e = v[k] - m;
        q += e * e;
      }
    }
    let va = allsum(1u, lid, vec2<f32>(q, 0.0)).x * inv_d;
    let rstd = 1.0 / sqrt(va + p.eps);
    for (var k = 0u; k < K1; k++) {
      let j = lid + k * WG;
      if (j < p.d) {
        var o = (v[k] - m) * rstd;
        if (HAS_W) { o *= weight[j]; }
        if (HAS_B) { o += bias[j]; }
        out[base + j] = o;
      }
    }
    if (lid == 0u) {
      smean[r] = m;
      svar[r] = va;
    }
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight, means over the row.
@compute @workgroup_size(WG)
fn bwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let blk = wg_index(wid, nwg);
  let r0 = blk * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.d / 4u;
  let inv_d = 1.0 / f32(p.d);
  var cdb: array<vec4<f32>, K>;
  var cdw: array<vec4<f32>, K>;
  var w: array<vec4<f32>, K>;
  for (var k = 0u; k < K; k++) {
    cdb[k] = vec4<f32>(0.0);
    cdw[k] = vec4<f32>(0.0);
    w[k] = vec4<f32>(1.0);
    let j = lid + k * WG;
    if (HAS_W && j < nv) { w[k] = wv[j]; }
  }
  for (var r = r0; r < r1; r++) {
    let base = r * nv;
    let m = mean[r];
    let rstd = 1.0 / sqrt(var_[r] + p.eps);
    var xh: array<vec4<f32>, K>;
    var g: array<vec4<f32>, K>;
    var s = vec2<f32>(0.0);
    for (var k = 0u; k < K; k++) {
      let j = lid + k * WG;
      xh[k] = vec4<f32>(0.0);
      g[k] = vec4<f32>(0.0);
      if (j < nv) {
        xh[k] = (xv[base + j] - m) * rstd;
        let dyk = dyv[base + j];
        g[k] = dyk * w[k];
        if (COLS) {
          cdb[k] += dyk;
          cdw[k] += dyk * xh[k];
        }
      }
      s += vec2<f32>(dot(g[k], vec4<f32>(1.0)), dot(g[k], xh[k]));
    }
    if (DX) {
      let t = allsum((r - r0) & 1u, lid, s) * inv_d;
      for (var k = 0u; k < K; k++) {
        let j = lid + k * WG;
        if (j < nv) { outv[base + j] = rstd * (g[k] - t.x - xh[k] * t.y); }
      }
    }
  }
  if (COLS) {
    let nb = (p.rows + p.rpw - 1u) / p.rpw;
    for (var k = 0u; k < K; k++) {
      let j = lid + k * WG;
      if (j < nv) {
        partv[blk * nv + j] = cdb[k];
        partv[(nb + blk) * nv + j] = cdw[k];
      }
    }
  }
}

@compute @workgroup_size(WG)
fn bwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let blk = wg_index(wid, nwg);
  let r0 = blk * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let inv_d = 1.0 / f32(p.d);
  var cdb: array<f32, K1>;
  var cdw: array<f32, K1>;
  var w: array<f32, K1>;
  for (var k = 0u; k < K1; k++) {
    cdb[k] = 0.0;
    cdw[k] = 0.0;
    w[k] = 1.0;
    let j = lid + k * WG;
    if (HAS_W && j < p.d) { w[k] = weight[j]; }
  }
  for (var r = r0; r < r1; r++) {
    let base = r * p.d;
    let m = mean[r];
    let rstd = 1.0 / sqrt(var_[r] + p.eps);
    var xh: array<f32, K1>;
    var g: array<f32, K1>;
    var s = vec2<f32>(0.0);
    for (var k = 0u; k < K1; k++) {
      let j = lid + k * WG;
      xh[k] = 0.0;
      g[k] = 0.0;
      if (j < p.d) {
        xh[k] = (x[base + j] - m) * rstd;
        let dyk = dy[base + j];
        g[k] = dyk * w[k];
        if (COLS) {
          cdb[k] += dyk;
          cdw[k] += dyk * xh[k];
        }
      }
      s += vec2<f32>(g[k], g[k] * xh[k]);
    }
    if (DX) {
      let t = allsum((r - r0) & 1u, lid, s) * inv_d;
      for (var k = 0u; k < K1; k++) {
        let j = lid + k * WG;
        if (j < p.d) { out[base + j] = rstd * (g[k] - t.x - xh[k] * t.y); }
      }
    }
  }
  if (COLS) {
    let nb = (p.rows + p.rpw - 1u) / p.rpw;
    for (var k = 0u; k < K1; k++) {
      let j = lid + k * WG;
      if (j < p.d) {
        part[blk * p.d + j] = cdb[k];
        part[(nb + blk) * p.d + j] = cdw[k];
      }
    }
  }
}

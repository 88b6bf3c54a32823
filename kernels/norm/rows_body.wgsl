// Layer norm over contiguous rows of d features: the shared body of rows.wgsl and
// rows_subgroup.wgsl (spliced in with `// #include "norm/rows_body"`; the includer defines the
// team reductions team_stats(slot, lid, Acc) -> (mean, biased variance) and
// team_sum2(slot, lid, vec2) -> vec2 over the TPR invocations of a row). A workgroup of WG invocations takes `rpw`
// consecutive rows, WG / TPR at a time (one per team of TPR invocations); `*4` entries load vec4
// (d % 4 == 0, 16-byte aligned), `*1` entries scalars.
// Entries: fwd4r/fwd4/fwd1 write y and the row statistics (smean, svar: mean and biased variance);
// fwd4r holds the row in registers (VPL vec4 per invocation, at most CAP: rows of up to
// 4 * CAP * TPR features), fwd4/fwd1 loop over any row length and read it twice;
// bwd4/bwd1 read them and write dx; cols4/cols1 (no barriers: an invocation per feature (vec4)
// over a block of `rpw` rows) write the weight/bias column partials part [2, row blocks, d]:
// sum dy, then sum dy * xhat (fold4 sums the vec4 blocks, TypeScript the scalar ones).
// Bindings: 0 uniforms, 1 x/xv, 2 weight/wv (HAS_W), 3 bias/bv (HAS_B), 4 dy/dyv, 5 mean, 6 var_,
// 7 smean, 8 svar, 9 out/outv, 10 part/partv. An entry binds only what it uses.
// Tricks: fwd4r: invocation t of a team holds vec4s t, t + TPR, ... of its row in a private array
// (constant indices once the VPL loop is unrolled: registers, not memory), the weight and bias at
// the same columns once per workgroup, and takes the statistics in two passes over those
// registers (mean, then the mean of squared deviations: exact, no cancellation); per output vec4
// one load and one store (fwd4: x twice, weight and bias: four loads). It is used where nothing
// but shuffles separates its passes (rows_subgroup.wgsl); in rows.wgsl it would hold the arrays
// across barriers. The other entries: one reduction per row. Forward: each invocation folds its values into (count, mean, M2)
// (Chan's update per vec4, Welford per scalar: no E[x^2] - E[x]^2 cancellation), the team merges
// its TPR triples after the barrier, then the row is read again (from cache) to write y.
// Backward: sum(g), sum(g * xhat) the same way. Nothing but scalars lives across a reduction (on
// llvmpipe a barrier splits the shader into coroutines; live arrays there cost compile time and
// spills); row and feature indices are loop counters, no integer division per element.
override TPR: u32 = 8u; // invocations per row, power of two
override WG: u32 = 32u; // a multiple of TPR
override HAS_W: bool = true;
override HAS_B: bool = true;
override VPL: u32 = 1u; // fwd4r: vec4s per invocation, ceil(d / 4 / TPR) <= CAP
override FULL: bool = false; // fwd4r/bwd4r: d / 4 == VPL * TPR (no column guards)
override COLS: bool = false; // bwd4r: also write the workgroup's weight/bias column partials
const CAP = 16u;

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

fn wg_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

// #include "common/welford"

@compute @workgroup_size(WG)
fn fwd4r(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.d / 4u;
  let inv_d = 1.0 / f32(p.d);
  let t = lid % TPR;
  var wr: array<vec4<f32>, CAP>;
  var br: array<vec4<f32>, CAP>;
  for (var k = 0u; k < VPL; k++) {
    let j = t + k * TPR;
    if (FULL || j < nv) {
      if (HAS_W) { wr[k] = wv[j]; }
      if (HAS_B) { br[k] = bv[j]; }
    }
  }
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let r = rb + lid / TPR;
    let live = r < r1; // a team past the last row computes on row r1 - 1 and stores nothing
    let base = min(r, r1 - 1u) * nv;
    var v: array<vec4<f32>, CAP>;
    var s = vec4<f32>(0.0);
    for (var k = 0u; k < VPL; k++) {
      let j = t + k * TPR;
      if (FULL || j < nv) { v[k] = xv[base + j]; } else { v[k] = vec4<f32>(0.0); }
      s += v[k];
    }
    let mu = team_sum2(0u, lid, vec2<f32>(dot(s, vec4<f32>(1.0)), 0.0)).x * inv_d;
    var q = vec4<f32>(0.0);
    for (var k = 0u; k < VPL; k++) {
      let e = v[k] - mu;
      if (FULL || t + k * TPR < nv) { q += e * e; }
    }
    let va = team_sum2(1u, lid, vec2<f32>(dot(q, vec4<f32>(1.0)), 0.0)).x * inv_d;
    let rstd = 1.0 / sqrt(va + p.eps);
    for (var k = 0u; k < VPL; k++) {
      let j = t + k * TPR;
      if (live && (FULL || j < nv)) {
        var o = (v[k] - mu) * rstd;
        if (HAS_W) { o *= wr[k]; }
        if (HAS_B) { o += br[k]; }
        outv[base + j] = o;
      }
    }
    if (t == 0u && live) {
      smean[r] = mu;
      svar[r] = va;
    }
  }
}

@compute @workgroup_size(WG)
fn fwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.d / 4u;
  let t = lid % TPR;
  var it = 0u;
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let r = rb + lid / TPR;
    let n = select(0u, nv, r < r1); // features of this team's row (none past the last row)
    let base = r * nv;
    var a = Acc(0.0, 0.0, 0.0);
    for (var j = t; j < n; j += TPR) {
      a = add4(a, xv[base + j]);
    }
    let st = team_stats(it & 1u, lid, a);
    // 1/sqrt rather than inverseSqrt: the builtin may be a low-precision approximation.
    let rstd = 1.0 / sqrt(st.y + p.eps);
    for (var j = t; j < n; j += TPR) {
      var o = (xv[base + j] - st.x) * rstd;
      if (HAS_W) { o *= wv[j]; }
      if (HAS_B) { o += bv[j]; }
      outv[base + j] = o;
    }
    if (t == 0u && n > 0u) {
      smean[r] = st.x;
      svar[r] = st.y;
    }
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
    let r = rb + lid / TPR;
    let n = select(0u, p.d, r < r1);
    let base = r * p.d;
    var a = Acc(0.0, 0.0, 0.0);
    for (var j = t; j < n; j += TPR) {
      a = add1(a, x[base + j]);
    }
    let st = team_stats(it & 1u, lid, a);
    let rstd = 1.0 / sqrt(st.y + p.eps);
    for (var j = t; j < n; j += TPR) {
      var o = (x[base + j] - st.x) * rstd;
      if (HAS_W) { o *= weight[j]; }
      if (HAS_B) { o += bias[j]; }
      out[base + j] = o;
    }
    if (t == 0u && n > 0u) {
      smean[r] = st.x;
      svar[r] = st.y;
    }
    it++;
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight, means over the row.
@compute @workgroup_size(WG)
fn bwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.d / 4u;
  let inv_d = 1.0 / f32(p.d);
  let t = lid % TPR;
  var it = 0u;
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let r = rb + lid / TPR;
    let n = select(0u, nv, r < r1);
    let base = r * nv;
    let rs = min(r, p.rows - 1u);
    let m = mean[rs];
    let rstd = 1.0 / sqrt(var_[rs] + p.eps);
    var s = vec2<f32>(0.0); // sum g, sum g * (x - mean)
    for (var j = t; j < n; j += TPR) {
      var g = dyv[base + j];
      if (HAS_W) { g *= wv[j]; }
      s += vec2<f32>(dot(g, vec4<f32>(1.0)), dot(g, xv[base + j] - m));
    }
    let u = team_sum2(it & 1u, lid, s) * inv_d;
    let c2 = u.y * rstd * rstd; // mean(g * xhat) * rstd
    for (var j = t; j < n; j += TPR) {
      var g = dyv[base + j];
      if (HAS_W) { g *= wv[j]; }
      outv[base + j] = rstd * (g - u.x - (xv[base + j] - m) * c2);
    }
    it++;
  }
}

// bwd4 from registers: invocation t of a team holds its vec4s of the row's g = dy * weight and
// xhat (recomputed from x and the saved statistics), so x and dy are read once (bwd4: twice);
// the weight is loaded once per workgroup (as fwd4r). COLS: each lane also sums dy and dy * xhat
// of its columns over the workgroup's rows and writes them as cols4's partials (row block =
// workgroup), so the weight/bias gradients need no second pass over x and dy.
@compute @workgroup_size(WG)
fn bwd4r(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.d / 4u;
  let inv_d = 1.0 / f32(p.d);
  let t = lid % TPR;
  var wr: array<vec4<f32>, CAP>;
  if (HAS_W) {
    for (var k = 0u; k < VPL; k++) {
      let j = t + k * TPR;
      if (FULL || j < nv) { wr[k] = wv[j]; }
    }
  }
  var cb: array<vec4<f32>, CAP>; // COLS: this lane's columns summed over the workgroup's rows
  var cw: array<vec4<f32>, CAP>;
  if (COLS) {
    for (var k = 0u; k < VPL; k++) {
      cb[k] = vec4<f32>(0.0);
      cw[k] = vec4<f32>(0.0);
    }
  }
  var it = 0u;
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let r = rb + lid / TPR;
    let live = r < r1; // a team past the last row computes on row r1 - 1 and stores nothing
    let rs = min(r, r1 - 1u);
    let base = rs * nv;
    let m = mean[rs];
    let rstd = 1.0 / sqrt(var_[rs] + p.eps);
    var gr: array<vec4<f32>, CAP>;
    var hr: array<vec4<f32>, CAP>;
    for (var k = 0u; k < VPL; k++) {
      let j = t + k * TPR;
      if (FULL || j < nv) { hr[k] = (xv[base + j] - m) * rstd; } else { hr[k] = vec4<f32>(0.0); }
    }
    var s = vec2<f32>(0.0); // sum g, sum g * xhat
    for (var k = 0u; k < VPL; k++) { // one stream after the other: faster than interleaved loads
      let j = t + k * TPR;
      if (FULL || j < nv) {
        gr[k] = dyv[base + j];
        if (COLS && live) {
          cb[k] += gr[k];
          cw[k] += gr[k] * hr[k];
        }
        if (HAS_W) { gr[k] *= wr[k]; }
      } else {
        gr[k] = vec4<f32>(0.0);
      }
      s += vec2<f32>(dot(gr[k], vec4<f32>(1.0)), dot(gr[k], hr[k]));
    }
    let u = team_sum2(it & 1u, lid, s) * inv_d;
    for (var k = 0u; k < VPL; k++) {
      let j = t + k * TPR;
      if (live && (FULL || j < nv)) { outv[base + j] = rstd * (gr[k] - u.x - hr[k] * u.y); }
    }
    it++;
  }
  if (COLS) { // part [2, workgroups, d]: sum dy, then sum dy * xhat (as cols4, one row block per workgroup)
    let wi = wg_index(wid, nwg);
    let nb = (p.rows + p.rpw - 1u) / p.rpw;
    for (var k = 0u; k < VPL; k++) {
      let j = t + k * TPR;
      if (FULL || j < nv) {
        partv[wi * nv + j] = cb[k];
        partv[(nb + wi) * nv + j] = cw[k];
      }
    }
  }
}

@compute @workgroup_size(WG)
fn bwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let inv_d = 1.0 / f32(p.d);
  let t = lid % TPR;
  var it = 0u;
  for (var rb = r0; rb < r1; rb += WG / TPR) {
    let r = rb + lid / TPR;
    let n = select(0u, p.d, r < r1);
    let base = r * p.d;
    let rs = min(r, p.rows - 1u);
    let m = mean[rs];
    let rstd = 1.0 / sqrt(var_[rs] + p.eps);
    var s = vec2<f32>(0.0);
    for (var j = t; j < n; j += TPR) {
      var g = dy[base + j];
      if (HAS_W) { g *= weight[j]; }
      s += vec2<f32>(g, g * (x[base + j] - m));
    }
    let u = team_sum2(it & 1u, lid, s) * inv_d;
    let c2 = u.y * rstd * rstd;
    for (var j = t; j < n; j += TPR) {
      var g = dy[base + j];
      if (HAS_W) { g *= weight[j]; }
      out[base + j] = rstd * (g - u.x - (x[base + j] - m) * c2);
    }
    it++;
  }
}

// Column partials: workgroup (wid.x, wid.y) = (block of WG features, block of rpw rows).
@compute @workgroup_size(WG)
fn cols4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let nv = p.d / 4u;
  let j = wid.x * WG + lid;
  let r0 = wid.y * p.rpw;
  if (j >= nv || r0 >= p.rows) { return; }
  let r1 = min(p.rows, r0 + p.rpw);
  var sb = vec4<f32>(0.0);
  var sw = vec4<f32>(0.0);
  for (var r = r0; r < r1; r++) {
    let g = dyv[r * nv + j];
    sb += g;
    sw += g * (xv[r * nv + j] - mean[r]) * (1.0 / sqrt(var_[r] + p.eps));
  }
  let nb = (p.rows + p.rpw - 1u) / p.rpw;
  partv[wid.y * nv + j] = sb;
  partv[(nb + wid.y) * nv + j] = sw;
}

@compute @workgroup_size(WG)
fn cols1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = wid.x * WG + lid;
  let r0 = wid.y * p.rpw;
  if (j >= p.d || r0 >= p.rows) { return; }
  let r1 = min(p.rows, r0 + p.rpw);
  var sb = 0.0;
  var sw = 0.0;
  for (var r = r0; r < r1; r++) {
    let g = dy[r * p.d + j];
    sb += g;
    sw += g * (x[r * p.d + j] - mean[r]) * (1.0 / sqrt(var_[r] + p.eps));
  }
  let nb = (p.rows + p.rpw - 1u) / p.rpw;
  part[wid.y * p.d + j] = sb;
  part[(nb + wid.y) * p.d + j] = sw;
}

// The column partials [2, nb, d] (cols4 or bwd4r with COLS; nb = p.rows here) summed over the
// row blocks into [2, d]: an invocation per vec4 column, walking the blocks (coalesced across
// lanes), four accumulators (shorter dependency chains and rounding paths).
@compute @workgroup_size(WG)
fn fold4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let nv = p.d / 4u;
  let c = wg_index(wid, nwg) * WG + lid;
  if (c >= 2u * nv) { return; }
  let nb = p.rows;
  let o = (c / nv) * nb * nv + c % nv; // half c / nv, column c % nv, block 0
  var s0 = vec4<f32>(0.0);
  var s1 = vec4<f32>(0.0);
  var s2 = vec4<f32>(0.0);
  var s3 = vec4<f32>(0.0);
  var b = 0u;
  for (; b + 4u <= nb; b += 4u) {
    s0 += partv[o + b * nv];
    s1 += partv[o + (b + 1u) * nv];
    s2 += partv[o + (b + 2u) * nv];
    s3 += partv[o + (b + 3u) * nv];
  }
  for (; b < nb; b++) { s0 += partv[o + b * nv]; }
  outv[c] = (s0 + s1) + (s2 + s3);
}

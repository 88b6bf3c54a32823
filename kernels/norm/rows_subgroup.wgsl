enable subgroups;
// Layer norm over contiguous rows of d features, one subgroup per row: the same entries and
// bindings as rows.wgsl's fwd/bwd (cols4/cols1 stay there, they have no reduction), chosen when
// the device has 'subgroups' with one fixed subgroup size. A workgroup is exactly one subgroup
// (WG = that size, set by the caller) and walks `rpw` consecutive rows one after another; each
// lane takes every WG-th vec4 (or scalar) of the row.
// Why: on llvmpipe a workgroup barrier splits the shader into coroutines and the per-row team
// merge through workgroup memory cost more than the row's loads (bench/NOTES.md); a subgroup
// shuffle is a register permute, and without barriers nothing is split.
// Forward: each lane folds its values into (count, mean, M2) (Chan's update per vec4, Welford per
// scalar: no E[x^2] - E[x]^2 cancellation), a butterfly of subgroupShuffleXor merges the lanes'
// triples (every lane ends with the row's), then the row is read again (from cache) to write y.
// Backward: sum(g), sum(g * (x - mean)) with subgroupAdd.
override WG: u32 = 8u; // the device's subgroup size
override HAS_W: bool = true;
override HAS_B: bool = true;

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
@group(0) @binding(11) var<storage, read> x: array<f32>;
@group(0) @binding(12) var<storage, read> weight: array<f32>;
@group(0) @binding(13) var<storage, read> bias: array<f32>;
@group(0) @binding(14) var<storage, read> dy: array<f32>;
@group(0) @binding(15) var<storage, read_write> out: array<f32>;

fn wg_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

struct Acc { n: f32, m: f32, q: f32 }

// Chan et al.: n = na+nb, d = mb-ma, mean = ma + d*nb/n, M2 = M2a + M2b + d^2*na*nb/n.
fn merge(a: Acc, b: Acc) -> Acc {
  let n = a.n + b.n;
  if (n == 0.0) { return a; }
  let d = b.m - a.m;
  let f = b.n / n;
  return Acc(n, a.m + d * f, a.q + b.q + d * d * a.n * f);
}

// (mean, biased variance) of the row from every lane's (count, mean, M2).
fn row_stats(a0: Acc) -> vec2<f32> {
  var a = a0;
  for (var k = 1u; k < WG; k <<= 1u) {
    a = merge(a, Acc(subgroupShuffleXor(a.n, k), subgroupShuffleXor(a.m, k), subgroupShuffleXor(a.q, k)));
  }
  return vec2<f32>(a.m, a.q / a.n);
}

@compute @workgroup_size(WG)
fn fwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) t: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.d / 4u;
  for (var r = r0; r < r1; r++) {
    let base = r * nv;
    var a = Acc(0.0, 0.0, 0.0);
    for (var j = t; j < nv; j += WG) {
      let v = xv[base + j];
      let mb = dot(v, vec4<f32>(0.25));
      let e = v - mb;
      let nn = a.n + 4.0;
      let d = mb - a.m;
      let f = 4.0 / nn;
      a = Acc(nn, a.m + d * f, a.q + dot(e, e) + d * d * a.n * f);
    }
    let st = row_stats(a);
    // 1/sqrt rather than inverseSqrt: the builtin may be a low-precision approximation.
    let rstd = 1.0 / sqrt(st.y + p.eps);
    for (var j = t; j < nv; j += WG) {
      var o = (xv[base + j] - st.x) * rstd;
      if (HAS_W) { o *= wv[j]; }
      if (HAS_B) { o += bv[j]; }
      outv[base + j] = o;
    }
    if (t == 0u) {
      smean[r] = st.x;
      svar[r] = st.y;
    }
  }
}

@compute @workgroup_size(WG)
fn fwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) t: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  for (var r = r0; r < r1; r++) {
    let base = r * p.d;
    var a = Acc(0.0, 0.0, 0.0);
    for (var j = t; j < p.d; j += WG) {
      let v = x[base + j];
      let nn = a.n + 1.0;
      let d = v - a.m;
      let m = a.m + d / nn;
      a = Acc(nn, m, a.q + d * (v - m));
    }
    let st = row_stats(a);
    let rstd = 1.0 / sqrt(st.y + p.eps);
    for (var j = t; j < p.d; j += WG) {
      var o = (x[base + j] - st.x) * rstd;
      if (HAS_W) { o *= weight[j]; }
      if (HAS_B) { o += bias[j]; }
      out[base + j] = o;
    }
    if (t == 0u) {
      smean[r] = st.x;
      svar[r] = st.y;
    }
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight, means over the row.
@compute @workgroup_size(WG)
fn bwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) t: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let nv = p.d / 4u;
  let inv_d = 1.0 / f32(p.d);
  for (var r = r0; r < r1; r++) {
    let base = r * nv;
    let m = mean[r];
    let rstd = 1.0 / sqrt(var_[r] + p.eps);
    var s = vec2<f32>(0.0); // sum g, sum g * (x - mean)
    for (var j = t; j < nv; j += WG) {
      var g = dyv[base + j];
      if (HAS_W) { g *= wv[j]; }
      s += vec2<f32>(dot(g, vec4<f32>(1.0)), dot(g, xv[base + j] - m));
    }
    let u = subgroupAdd(s) * inv_d;
    let c2 = u.y * rstd * rstd; // mean(g * xhat) * rstd
    for (var j = t; j < nv; j += WG) {
      var g = dyv[base + j];
      if (HAS_W) { g *= wv[j]; }
      outv[base + j] = rstd * (g - u.x - (xv[base + j] - m) * c2);
    }
  }
}

@compute @workgroup_size(WG)
fn bwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) t: u32) {
  let r0 = wg_index(wid, nwg) * p.rpw;
  if (r0 >= p.rows) { return; } // uniform per workgroup
  let r1 = min(p.rows, r0 + p.rpw);
  let inv_d = 1.0 / f32(p.d);
  for (var r = r0; r < r1; r++) {
    let base = r * p.d;
    let m = mean[r];
    let rstd = 1.0 / sqrt(var_[r] + p.eps);
    var s = vec2<f32>(0.0);
    for (var j = t; j < p.d; j += WG) {
      var g = dy[base + j];
      if (HAS_W) { g *= weight[j]; }
      s += vec2<f32>(g, g * (x[base + j] - m));
    }
    let u = subgroupAdd(s) * inv_d;
    let c2 = u.y * rstd * rstd;
    for (var j = t; j < p.d; j += WG) {
      var g = dy[base + j];
      if (HAS_W) { g *= weight[j]; }
      out[base + j] = rstd * (g - u.x - (x[base + j] - m) * c2);
    }
  }
}

// Instance and batch norm, forward and backward (the shared body of seg.wgsl and
// seg_subgroup.wgsl, spliced in with `// #include "norm/seg_body"`; the includer defines the
// reductions tree_acc(lid, Acc) -> Acc and tree2(lid, vec2) -> vec2, every invocation getting the
// workgroup's result), over groups made of contiguous segments: group
// g's element j lives at g*gstride + (j / seglen)*segstride + j % seglen (one segment per (n, c)
// instance; N segments strided by C*S for batch norm), so no permute. One workgroup per (group,
// chunk of `chunk` elements); it walks the chunk segment by segment, so the statistics slot (g)
// and the affine slot (g % c) are uniform per workgroup and no element needs an integer division.
// V4 (override; TypeScript sets it when gstride, segstride, seglen and chunk are multiples of 4
// and the tensors 16-byte aligned) loads and stores vec4.
// Entries and their bindings (each binds only what it uses):
//   stats        x/xv → part [groups, splits, 3]: count, mean, M2 of each chunk
//   apply4/1     x/xv, spart (the stats' part) or, FIXED, mean/var_ ([groups]), weight, bias → out/outv
//   gsum         x/xv, dy/dyv, spart or (FIXED) mean/var_ → gpart [2, groups, splits]: sum dy,
//                sum dy * xhat per chunk (TypeScript sums the splits for the weight/bias grads)
//   bwd4/1       x/xv, dy/dyv, spart or (FIXED) mean/var_, weight, gsp (gsum's gpart) → out/outv
// Tricks: statistics in one read of x: each invocation folds its vec4 (or value) into a running
// (count, mean, M2) with Chan's pairwise update (Welford for scalars), the invocations and then
// the chunks are merged with the same update, so there is no E[x^2] - E[x]^2 cancellation; the
// consumers (apply, gsum, bwd) merge their group's chunk partials themselves: no merge dispatch.
override WG: u32 = 64u; // power of two (seg_subgroup: the subgroup size)
override V4: bool = false;
override FIXED: bool = false; // eval batch norm: statistics from mean/var_, not the partials
override HAS_W: bool = true;
override HAS_B: bool = true;

struct Params {
  groups: u32, splits: u32, chunk: u32, count: u32, gstride: u32, seglen: u32, segstride: u32,
  c: u32, eps: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> xv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> dyv: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> spart: array<f32>;
@group(0) @binding(6) var<storage, read> mean: array<f32>;
@group(0) @binding(7) var<storage, read> var_: array<f32>;
@group(0) @binding(8) var<storage, read> weight: array<f32>;
@group(0) @binding(9) var<storage, read> bias: array<f32>;
@group(0) @binding(10) var<storage, read> gsp: array<f32>;
@group(0) @binding(11) var<storage, read_write> part: array<f32>;
@group(0) @binding(12) var<storage, read_write> gpart: array<f32>;
@group(0) @binding(13) var<storage, read_write> out: array<f32>;
@group(0) @binding(14) var<storage, read_write> outv: array<vec4<f32>>;

// #include "common/welford"

// Thirty-two values into a running Acc: their own mean and M2 exactly (deviations from their
// mean, in registers), then one Chan update.
fn add32(a: Acc, v: array<vec4<f32>, 8>) -> Acc {
  var t = vec4<f32>(0.0);
  for (var k = 0u; k < 8u; k++) { t += v[k]; }
  let mb = dot(t, vec4<f32>(1.0 / 32.0));
  var q = 0.0;
  for (var k = 0u; k < 8u; k++) { let e = v[k] - mb; q += dot(e, e); }
  let n = a.n + 32.0;
  let d = mb - a.m;
  let f = 32.0 / n;
  return Acc(n, a.m + d * f, a.q + q + d * d * a.n * f);
}

// (mean, biased variance) of group g: fixed, or merged from the stats pass's chunk partials.
fn group_stats(g: u32, lid: u32) -> vec2<f32> {
  if (FIXED) { return vec2<f32>(mean[g], var_[g]); }
  var a = Acc(0.0, 0.0, 0.0);
  for (var s = lid; s < p.splits; s += WG) {
    let k = (g * p.splits + s) * 3u;
    a = merge(a, Acc(spart[k], spart[k + 1u], spart[k + 2u]));
  }
  let r = tree_acc(lid, a);
  return vec2<f32>(r.m, r.q / r.n);
}

// The contiguous run of group g that starts at group element j, cut at j1: (address, length).
fn run_at(g: u32, j: u32, j1: u32) -> vec2<u32> {
  let si = j / p.seglen;
  let off = j - si * p.seglen;
  return vec2<u32>(g * p.gstride + si * p.segstride + off, min(j1 - j, p.seglen - off));
}

struct Work { g: u32, s: u32, j0: u32, j1: u32, ok: bool }

fn work(wid: vec3<u32>, nwg: vec3<u32>) -> Work {
  let w = wid.x + wid.y * nwg.x;
  let g = w / p.splits;
  let s = w - g * p.splits;
  let j0 = s * p.chunk;
  return Work(g, s, j0, min(p.count, j0 + p.chunk), w < p.groups * p.splits);
}

@compute @workgroup_size(WG)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let t = work(wid, nwg);
  if (!t.ok) { return; } // uniform per workgroup
  var a = Acc(0.0, 0.0, 0.0);
  var j = t.j0;
  loop {
    if (j >= t.j1) { break; }
    let rl = run_at(t.g, j, t.j1);
    if (V4) {
      let b = rl.x / 4u;
      let nv = rl.y / 4u;
      var i = lid;
      // eight vectors per step: one Chan update (one division) per 32 values, not per 4
      while (i + 7u * WG < nv) {
        var v: array<vec4<f32>, 8>;
        for (var k = 0u; k < 8u; k++) { v[k] = xv[b + i + k * WG]; }
        a = add32(a, v);
        i += 8u * WG;
      }
      while (i < nv) { a = add4(a, xv[b + i]); i += WG; }
    } else {
      for (var i = lid; i < rl.y; i += WG) { a = add1(a, x[rl.x + i]); }
    }
    j += rl.y;
  }
  let r = tree_acc(lid, a);
  if (lid == 0u) {
    let k = (t.g * p.splits + t.s) * 3u;
    part[k] = r.n;
    part[k + 1u] = r.m;
    part[k + 2u] = r.q;
  }
}

// y = (x - mean) * sc + sh with sc = rstd * weight, sh = bias
fn apply_coef(g: u32, lid: u32) -> vec3<f32> {
  let st = group_stats(g, lid);
  // 1/sqrt rather than inverseSqrt: the builtin may be a low-precision approximation.
  var sc = 1.0 / sqrt(st.y + p.eps);
  var sh = 0.0;
  if (HAS_W) { sc *= weight[g % p.c]; }
  if (HAS_B) { sh = bias[g % p.c]; }
  return vec3<f32>(st.x, sc, sh);
}

@compute @workgroup_size(WG)
fn apply4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let t = work(wid, nwg);
  if (!t.ok) { return; }
  let k = apply_coef(t.g, lid);
  var j = t.j0;
  loop {
    if (j >= t.j1) { break; }
    let rl = run_at(t.g, j, t.j1);
    let b = rl.x / 4u;
    for (var i = lid; i < rl.y / 4u; i += WG) { outv[b + i] = (xv[b + i] - k.x) * k.y + k.z; }
    j += rl.y;
  }
}

@compute @workgroup_size(WG)
fn apply1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let t = work(wid, nwg);
  if (!t.ok) { return; }
  let k = apply_coef(t.g, lid);
  var j = t.j0;
  loop {
    if (j >= t.j1) { break; }
    let rl = run_at(t.g, j, t.j1);
    for (var i = lid; i < rl.y; i += WG) { out[rl.x + i] = (x[rl.x + i] - k.x) * k.y + k.z; }
    j += rl.y;
  }
}

@compute @workgroup_size(WG)
fn gsum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = work(wid, nwg);
  if (!t.ok) { return; }
  let st = group_stats(t.g, lid);
  var s = vec2<f32>(0.0); // sum dy, sum dy * (x - mean)
  var j = t.j0;
  loop {
    if (j >= t.j1) { break; }
    let rl = run_at(t.g, j, t.j1);
    if (V4) {
      let b = rl.x / 4u;
      for (var i = lid; i < rl.y / 4u; i += WG) {
        let d = dyv[b + i];
        s += vec2<f32>(dot(d, vec4<f32>(1.0)), dot(d, xv[b + i] - st.x));
      }
    } else {
      for (var i = lid; i < rl.y; i += WG) {
        let d = dy[rl.x + i];
        s += vec2<f32>(d, d * (x[rl.x + i] - st.x));
      }
    }
    j += rl.y;
  }
  let r = tree2(lid, s);
  if (lid == 0u) {
    gpart[t.g * p.splits + t.s] = r.x;
    gpart[(p.groups + t.g) * p.splits + t.s] = r.y * (1.0 / sqrt(st.y + p.eps));
  }
}

// dx = a*dy + b*(x - mean) + c: a = w*rstd, b = -w*rstd^2*mean(dy*xhat)/... (see below); FIXED:
// dx = a*dy. Returns (mean, a, b, c).
fn bwd_coef(g: u32, lid: u32) -> vec4<f32> {
  let st = group_stats(g, lid);
  let rstd = 1.0 / sqrt(st.y + p.eps);
  var w = 1.0;
  if (HAS_W) { w = weight[g % p.c]; }
  let a = w * rstd;
  if (FIXED) { return vec4<f32>(st.x, a, 0.0, 0.0); }
  // the group's sums over all chunks: sum dy, sum dy * xhat
  var s = vec2<f32>(0.0);
  for (var i = lid; i < p.splits; i += WG) {
    s += vec2<f32>(gsp[g * p.splits + i], gsp[(p.groups + g) * p.splits + i]);
  }
  let t = tree2(lid, s) * (1.0 / f32(p.count));
  // w*rstd*(dy - mean(dy) - xhat*mean(dy*xhat)), xhat = (x - mean)*rstd
  return vec4<f32>(st.x, a, -a * rstd * t.y, -a * t.x);
}

@compute @workgroup_size(WG)
fn bwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = work(wid, nwg);
  if (!t.ok) { return; }
  let k = bwd_coef(t.g, lid);
  var j = t.j0;
  loop {
    if (j >= t.j1) { break; }
    let rl = run_at(t.g, j, t.j1);
    let b = rl.x / 4u;
    for (var i = lid; i < rl.y / 4u; i += WG) {
      if (FIXED) {
        outv[b + i] = k.y * dyv[b + i];
      } else {
        outv[b + i] = k.y * dyv[b + i] + k.z * (xv[b + i] - k.x) + k.w;
      }
    }
    j += rl.y;
  }
}

@compute @workgroup_size(WG)
fn bwd1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = work(wid, nwg);
  if (!t.ok) { return; }
  let k = bwd_coef(t.g, lid);
  var j = t.j0;
  loop {
    if (j >= t.j1) { break; }
    let rl = run_at(t.g, j, t.j1);
    for (var i = lid; i < rl.y; i += WG) {
      if (FIXED) {
        out[rl.x + i] = k.y * dy[rl.x + i];
      } else {
        out[rl.x + i] = k.y * dy[rl.x + i] + k.z * (x[rl.x + i] - k.x) + k.w;
      }
    }
    j += rl.y;
  }
}

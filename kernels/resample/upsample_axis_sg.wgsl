enable subgroups;
// The subgroup reads are in subgroup-uniform control flow (see x2hw4_sg), which the uniformity
// analysis cannot see: every lane computes from a clamped index instead of returning early.
diagnostic(off, subgroup_uniformity);
// x2hw4 (resample/upsample_axis, included whole: same uniforms and bindings) with the two
// neighbouring dy columns of each row quad taken from the lanes beside instead of loaded (subgroups
// of at least 8 lanes; the caller checks Device.subgroupSize; without them x2hw4 runs). Lanes on
// consecutive quads k of one dy row: m = lane k − 1's w.w, r = lane k + 1's v.x; the row's first
// quad clamps m to v.x and its last r to w.w (the edge rule), and only a subgroup's edge lanes
// inside a row load theirs. Lavapipe, 1×32×64³ dy, paired: the two scalar loads were ≈ 15 % of
// x2hw4; the whole backward (this + x2i4) 0.87× the time of x2hw4 + x2i4 before either advanced
// its offsets by addition (≈ 0.92× of x2hw4 + x2i4 with both doing so).
// Assumes a subgroup is consecutive local invocation ids (lane sl + 1 holds invocation e + 1), as
// on llvmpipe; a lane only uses a neighbour's value when that neighbour has the same row.
// #include "resample/upsample_axis"

// b4: the dy row's first vec4; last: k is the row's last quad.
fn wq_sg(b4: u32, k: u32, last: bool, sl: u32, sgn: u32) -> vec4<f32> {
  let v = src4[b4 + 2u * k];
  let w = src4[b4 + 2u * k + 1u];
  var m = select(subgroupShuffleUp(w.w, 1u), v.x, k == 0u);
  var r = select(subgroupShuffleDown(v.x, 1u), w.w, last);
  if (sl == 0u && k != 0u) { m = src[4u * b4 + 8u * k - 1u]; }
  if (sl + 1u == sgn && !last) { r = src[4u * b4 + 8u * k + 8u]; }
  return vec4<f32>(x2_adj(m, v.x, v.y, v.z), x2_adj(v.y, v.z, v.w, w.x), x2_adj(v.w, w.x, w.y, w.z), x2_adj(w.y, w.z, w.w, r));
}

// n: outer × ceil(len_in / SEG) × inner / 4 (inner a multiple of 4). A subgroup walks
// subgroupMax of its lanes' segment lengths in step (lanes past their segment's end or past n
// re-read their last row and store nothing), so the shuffles see every lane at the same row step.
// The dy row and dst offsets advance by addition (paired at 1×32×64³: 0.88× the time of
// recomputing them per row from the indices).
@compute @workgroup_size(64)
fn x2hw4_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(subgroup_invocation_id) sl: u32, @builtin(subgroup_size) sgn: u32) {
  let e0 = gid.x + gid.y * nwg.x * 64u;
  let live = e0 < p.n;
  let e = min(e0, p.n - 1u);
  let wo4 = p.inner / 2u; // a dy row in vec4s
  let quads = p.inner / 4u;
  let sg = seg_of(e, quads);
  let k = sg.k;
  let i0 = sg.i0;
  let o = sg.o;
  let rows = sg.i1 - i0;
  let steps = subgroupMax(rows);
  let last = k + 1u == quads;
  let pb = o * p.len_out * wo4;
  let lastrow = pb + (p.len_out - 1u) * wo4;
  var l = wq_sg(pb + (max(2u * i0, 1u) - 1u) * wo4, k, last, sl, sgn);
  var a = wq_sg(pb + 2u * i0 * wo4, k, last, sl, sgn);
  var rb = pb + (2u * i0 + 1u) * wo4; // dy row 2i + 1
  var db = (o * p.len_in + i0) * quads + k;
  for (var s = 0u; s < steps; s++) {
    let c = wq_sg(rb, k, last, sl, sgn);
    let r = wq_sg(min(rb + wo4, lastrow), k, last, sl, sgn);
    if (live && s < rows) { dst4[db] = X2_OUTER * (l + r) + X2_INNER * (a + c); }
    l = c;
    a = r;
    if (s + 1u < rows) {
      rb += 2u * wo4;
      db += quads;
    }
  }
}

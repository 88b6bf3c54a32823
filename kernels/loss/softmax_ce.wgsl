// Softmax cross-entropy over the channel axis of logits [N, C, S] (S = product of the spatial
// dims) with class-index targets [N, S] stored as f32; MODE 1 adds nnU-Net's batch Dice over the
// foreground classes (DC_and_CE, do_bg = False). Keep MODE in step with src/graph/ops/loss.ts.
// Entries:
//   main     pass 1: one voxel per thread; each workgroup writes one row of `lanes` partial sums
//            at partials[(offset + w) * lanes + k] (a sum over the rows gives the global sums)
//   combine  one thread: the loss y[0] from the global sums
//   backward one voxel per thread: dz for all C classes of that voxel, times dy[0]
// Lanes: 0 sum w[t]*nll, 1 sum w[t], 2 count of invalid targets (loss -> NaN); MODE 1 adds, per
// foreground class c >= 1 at 3 + 3*(c-1): sum p_c*t_c, sum p_c, sum t_c.
// Bindings: 0 uniforms, 1 logits, 2 gt (targets), 3 cw (class weights; aliased to logits when
// has_w = 0), 4 partials, 5 sums (the global lanes), 6 y ([1]), 7 dy ([1]), 8 dz.
// Trick: the per-voxel log-sum-exp is max-subtracted (no exp of a positive number); every lane is
// a fixed-order shared-memory tree (deterministic, no atomics). A chunk's logits/targets/dz views
// start at the 256-byte-aligned element at or before its first sample: zbase/tbase skip to it.
override MODE: u32 = 0u;
struct Params {
  nvox: u32, sp: u32, classes: u32, zbase: u32,
  tbase: u32, groups: u32, offset: u32, lanes: u32,
  has_w: u32, has_ignore: u32, ignore_index: f32, smoothing: f32,
  nan: f32,
}
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> gt: array<f32>;
@group(0) @binding(3) var<storage, read> cw: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<storage, read> sums: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read> dy: array<f32>;
@group(0) @binding(8) var<storage, read_write> dz: array<f32>;

var<workgroup> acc: array<f32, 128>;

// Index of voxel v's class-0 logit in the chunk view.
fn zindex(v: u32) -> u32 {
  return u.zbase + (v / u.sp) * u.classes * u.sp + v % u.sp;
}

// max-subtracted log(sum_c exp(z_c)) of the voxel whose class-0 logit is at zb.
fn lse_at(zb: u32) -> f32 {
  var m = logits[zb];
  for (var c = 1u; c < u.classes; c = c + 1u) { m = max(m, logits[zb + c * u.sp]); }
  var s = 0.0;
  for (var c = 0u; c < u.classes; c = c + 1u) { s = s + exp(logits[zb + c * u.sp] - m); }
  return m + log(s);
}

// The voxel's class: -1 when ignored, -2 when not an integer in [0, C) (NaN included).
fn target_class(g: f32) -> i32 {
  if (u.has_ignore != 0u && g == u.ignore_index) { return -1; }
  // NaN and infinities from the bits: llvmpipe may fold comparisons with a NaN as no-NaN math
  if ((bitcast<u32>(g) & 0x7fffffffu) >= 0x7f800000u) { return -2; }
  if (g < 0.0 || g >= f32(u.classes) || round(g) != g) { return -2; }
  return i32(g);
}

fn class_weight(t: i32) -> f32 {
  if (t < 0) { return 0.0; }
  if (u.has_w == 0u) { return 1.0; }
  return cw[t];
}

// One lane of this workgroup's partial row: fixed-order tree over the 128 threads.
fn tree(v: f32, lid: u32, slot: u32) {
  workgroupBarrier();
  acc[lid] = v;
  workgroupBarrier();
  for (var k = 64u; k > 0u; k = k >> 1u) {
    if (lid < k) { acc[lid] = acc[lid] + acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[slot] = acc[0]; }
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  // A launch split over x and y rounds up: the surplus workgroups own no row.
  if (w >= u.groups) { return; }
  let v = w * 128u + lid;
  let live = v < u.nvox;
  var t = -1;
  var lse = 0.0;
  var zb = 0u;
  var nll = 0.0;
  var wt = 0.0;
  var bad = 0.0;
  if (live) {
    zb = zindex(v);
    t = target_class(gt[u.tbase + v]);
    lse = lse_at(zb);
    if (t >= 0) {
      wt = class_weight(t);
      nll = lse - logits[zb + u32(t) * u.sp];
    } else if (t == -2) {
      bad = 1.0;
    }
  }
  let row = (u.offset + w) * u.lanes;
  tree(wt * nll, lid, row);
  tree(wt, lid, row + 1u);
  tree(bad, lid, row + 2u);
  if (MODE == 1u) {
    for (var c = 1u; c < u.classes; c = c + 1u) {
      var p = 0.0;
      var tc = 0.0;
      if (live) {
        p = exp(logits[zb + c * u.sp] - lse);
        tc = select(0.0, 1.0, t == i32(c));
      }
      let at = row + 3u + 3u * (c - 1u);
      tree(p * tc, lid, at);
      tree(p, lid, at + 1u);
      tree(tc, lid, at + 2u);
    }
  }
}

fn dice_coef(c: u32) -> f32 {
  let at = 3u + 3u * (c - 1u);
  return (2.0 * sums[at] + u.smoothing) / (sums[at + 1u] + sums[at + 2u] + u.smoothing);
}

@compute @workgroup_size(1)
fn combine() {
  var loss = sums[0] / sums[1];
  if (MODE == 1u) {
    var d = 0.0;
    for (var c = 1u; c < u.classes; c = c + 1u) { d = d + dice_coef(c); }
    loss = loss + 1.0 - d / f32(u.classes - 1u);
  }
  // PyTorch: every voxel ignored gives 0/0 = NaN; an invalid class index is an error there.
  if (sums[1] == 0.0 || sums[2] > 0.0) { loss = u.nan; }
  y[0] = loss;
}

// d(1 - mean_c Dice_c)/d p_c of one voxel with target class t (0 for the background).
fn dice_grad(c: u32, t: i32) -> f32 {
  if (c == 0u) { return 0.0; }
  let at = 3u + 3u * (c - 1u);
  let den = sums[at + 1u] + sums[at + 2u] + u.smoothing;
  let tc = select(0.0, 1.0, t == i32(c));
  return -(2.0 * tc * den - (2.0 * sums[at] + u.smoothing)) / (den * den) / f32(u.classes - 1u);
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let v = gid.x + gid.y * nwg.x * 64u;
  if (v >= u.nvox) { return; }
  let zb = zindex(v);
  let t = target_class(gt[u.tbase + v]);
  let lse = lse_at(zb);
  let scale = dy[0];
  let ce = class_weight(t) / sums[1];
  // Through the softmax: dz_c = p_c * (g_c - sum_k p_k g_k) for the Dice part g.
  var sg = 0.0;
  if (MODE == 1u) {
    for (var c = 1u; c < u.classes; c = c + 1u) { sg = sg + exp(logits[zb + c * u.sp] - lse) * dice_grad(c, t); }
  }
  for (var c = 0u; c < u.classes; c = c + 1u) {
    let p = exp(logits[zb + c * u.sp] - lse);
    var d = ce * (p - select(0.0, 1.0, t == i32(c)));
    if (MODE == 1u) { d = d + p * (dice_grad(c, t) - sg); }
    dz[zb + c * u.sp] = scale * d;
  }
}

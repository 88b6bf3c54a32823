// Backward of resample/upsample along one axis: the adjoint of the 1-D resampling of a tensor
// viewed as [outer, len, inner], dx[o, i, k] = sum over outputs j that read input i of
// w(j, i) * dy[o, j, k]. The op chains it over W, H and D (trilinear weights are a product of
// per-dim weights, so the adjoint factors the same way), each pass shrinking the tensor.
// MODE, tap and the ratio follow resample/upsample exactly (keep in step).
// Bindings: 0 uniforms, 1 src (dy, or the previous pass's result), 2 dst, 3 dst4 (dst as vec4s),
// 4 src4 (src as vec4s; x2w4, x2hw4 / x2hw, x2i4).
// Trick: one invocation per block of VB consecutive inputs along the axis walks the outputs that
// can read the block once, in order, keeping two open sums (taps never move backwards), so each
// dy element is read about once per pass (≈ 2 reads per input at ×2) and no tap is evaluated
// twice; no atomics, every dst element written once.
override VB: u32 = 16u;
override MODE: u32 = 0u;
struct Params {
  inner: u32,  // elements after the axis
  len_in: u32, // axis length of dst (the forward's input)
  len_out: u32, // axis length of src (the forward's output)
  ratio: f32,  // source pixels per destination pixel
  align: u32,  // 1: align_corners=True
  n: u32,      // threads: outer × blocks of VB along the axis × inner
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

struct Tap { i0: u32, i1: u32, l0: f32, l1: f32 }

fn tap(o: u32, size: u32, r: f32) -> Tap {
  if (MODE == 0u) {
    let j = min(u32(floor(f32(o) * r)), size - 1u);
    return Tap(j, j, 1.0, 0.0);
  }
  var s = r * f32(o);
  if (p.align == 0u) { s = max(r * (f32(o) + 0.5) - 0.5, 0.0); }
  let i0 = min(u32(s), size - 1u);
  let l1 = s - f32(i0);
  return Tap(i0, min(i0 + 1u, size - 1u), 1.0 - l1, l1);
}

// Outputs that may read input i: as resample/upsample's candidates().
fn candidates(i: u32, size: u32, osize: u32, r: f32) -> vec2<u32> {
  let last = f32(osize - 1u);
  if (r <= 0.0) { return vec2<u32>(0u, osize - 1u); }
  var lo = (f32(i) - 1.0) / r;
  var hi = (f32(i) + 1.0) / r;
  if (MODE == 1u && p.align == 0u) {
    lo = (f32(i) - 0.5) / r - 0.5;
    hi = (f32(i) + 1.5) / r - 0.5;
  }
  var a = clamp(floor(lo) - 1.0, 0.0, last);
  var b = clamp(ceil(hi) + 1.0, 0.0, last);
  if (i + 1u >= size) { b = last; }
  return vec2<u32>(u32(a), u32(b));
}

// dst[o, i, k] for i in one block: `cur` is the lowest input whose sum is still open (a0), a1
// the next one's; an output column only ever touches cur and cur + 1 once all lower inputs are
// written, since its taps never move backwards. Unread inputs get 0.
fn flush(o: u32, k: u32, i: u32, end: u32, v: f32) {
  if (i < end) { dst[(o * p.len_in + i) * p.inner + k] = v; }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.n) { return; }
  let k = e % p.inner;
  let t = e / p.inner;
  let blocks = (p.len_in + VB - 1u) / VB;
  let blk = t % blocks;
  let o = t / blocks;
  let first = blk * VB;
  let end = min(first + VB, p.len_in);
  let jlo = candidates(first, p.len_in, p.len_out, p.ratio).x;
  let jhi = candidates(end - 1u, p.len_in, p.len_out, p.ratio).y;
  let base = o * p.len_out * p.inner + k;
  var cur = first;
  var a0 = 0.0;
  var a1 = 0.0;
  for (var j = jlo; j <= jhi; j++) {
    let tj = tap(j, p.len_in, p.ratio);
    if (tj.i0 >= end) { break; }
    if (tj.i1 < cur) { continue; }
    // close every input below this output's first tap
    while (cur < tj.i0) {
      flush(o, k, cur, end, a0);
      cur++;
      a0 = a1;
      a1 = 0.0;
    }
    let v = src[base + j * p.inner];
    if (tj.i0 == tj.i1) {
      // the clamped edge: both taps on one input
      a0 += (tj.l0 + tj.l1) * v;
    } else {
      if (tj.i0 == cur) { a0 += tj.l0 * v; }
      if (tj.i1 == cur) { a0 += tj.l1 * v; } else { a1 += tj.l1 * v; }
    }
  }
  flush(o, k, cur, end, a0);
  flush(o, k, cur + 1u, end, a1);
  for (var i = cur + 2u; i < end; i++) { flush(o, k, i, end, 0.0); }
}

// ×2 fast path (linear, align_corners=False, len_out = 2 len_in): input i is read by outputs
// 2i − 1 .. 2i + 2 with weights 0.25, 0.75, 0.75, 0.25, so dx[i] = 0.25 dy[2i − 1] + 0.75 dy[2i]
// + 0.75 dy[2i + 1] + 0.25 dy[2i + 2]; clamping the outer two indices into [0, len_out) gives the
// edges (input 0 takes output 0 whole, input len_in − 1 the last output whole), as the forward's
// clamped taps do. No tap evaluation, no branches; on llvmpipe the loads (per-lane gathers) are
// the cost, so consecutive invocations take neighbouring memory.
// Nearest ×2 (MODE 0) is the same walk with weights 0, 1, 1, 0 (input i is outputs 2i and 2i + 1).
override X2_OUTER: f32 = select(0.0, 0.25, MODE == 1u);
override X2_INNER: f32 = select(1.0, 0.75, MODE == 1u);

fn x2_adj(l: f32, a: f32, b: f32, r: f32) -> f32 {
  return X2_OUTER * (l + r) + X2_INNER * (a + b);
}

// The W pass (inner = 1): one invocation per 4 consecutive inputs 4k .. 4k + 3 of row o (10 loads,
// dy 8k − 1 .. 8k + 8); x2w4 stores them as one vec4 (len_in a multiple of 4), x2w one by one.
// n: outer × ceil(len_in / 4).
fn x2_quad(e: u32) -> vec4<f32> {
  let quads = (p.len_in + 3u) / 4u;
  return x2_wq((e / quads) * p.len_out, e % quads, p.len_out);
}

// The W adjoint of inputs 4k .. 4k + 3 from the dy row at b of length wo (= 2 × the input's).
fn x2_wq(b: u32, k: u32, wo: u32) -> vec4<f32> {
  let last = wo - 1u;
  let j = 8u * k;
  let m = src[b + max(j, 1u) - 1u];
  let v0 = src[b + min(j, last)];
  let v1 = src[b + min(j + 1u, last)];
  let v2 = src[b + min(j + 2u, last)];
  let v3 = src[b + min(j + 3u, last)];
  let v4 = src[b + min(j + 4u, last)];
  let v5 = src[b + min(j + 5u, last)];
  let v6 = src[b + min(j + 6u, last)];
  let v7 = src[b + min(j + 7u, last)];
  let v8 = src[b + min(j + 8u, last)];
  return vec4<f32>(x2_adj(m, v0, v1, v2), x2_adj(v1, v2, v3, v4), x2_adj(v3, v4, v5, v6), x2_adj(v5, v6, v7, v8));
}

@group(0) @binding(3) var<storage, read_write> dst4: array<vec4<f32>>;
// src as vec4s (the *4 entries whose dy rows are a multiple of 8 long)
@group(0) @binding(4) var<storage, read> src4: array<vec4<f32>>;

// x2_wq from two vec4 loads (dy 8k .. 8k + 7, lanes on consecutive k: contiguous) and the two
// neighbouring columns; b a multiple of 4.
fn x2_wq4(b: u32, k: u32, wo: u32) -> vec4<f32> {
  let j = 8u * k;
  let m = src[b + max(j, 1u) - 1u];
  let v = src4[b / 4u + 2u * k];
  let w = src4[b / 4u + 2u * k + 1u];
  let r = src[b + min(j + 8u, wo - 1u)];
  return vec4<f32>(x2_adj(m, v.x, v.y, v.z), x2_adj(v.y, v.z, v.w, w.x), x2_adj(v.w, w.x, w.y, w.z), x2_adj(w.y, w.z, w.w, r));
}


@compute @workgroup_size(64)
fn x2w4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.n) { return; }
  let quads = p.len_in / 4u;
  dst4[e] = x2_wq4((e / quads) * p.len_out, e % quads, p.len_out);
}

@compute @workgroup_size(64)
fn x2w(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.n) { return; }
  let v = x2_quad(e);
  let quads = (p.len_in + 3u) / 4u;
  let i = 4u * (e % quads);
  let d = (e / quads) * p.len_in + i;
  dst[d] = v.x;
  if (i + 1u < p.len_in) { dst[d + 1u] = v.y; }
  if (i + 2u < p.len_in) { dst[d + 2u] = v.z; }
  if (i + 3u < p.len_in) { dst[d + 3u] = v.w; }
}

// The H and D passes (any inner): one invocation per inner element k and segment of SEG inputs
// along the axis, consecutive invocations on consecutive k; input i + 1 reads dy rows 2i + 1 ..
// 2i + 4, two of them input i's, so each step loads 2 rows. n: outer × ceil(len_in / SEG) × inner.
override SEG: u32 = 8u;

// An invocation's segment: lane k of the per_row lanes across the inner axis, input rows
// i0 .. i1 of outer o (invocations ordered k fastest, then segment, then outer).
struct Seg { k: u32, o: u32, i0: u32, i1: u32 }

fn seg_of(e: u32, per_row: u32) -> Seg {
  let segs = (p.len_in + SEG - 1u) / SEG;
  let t = e / per_row;
  let i0 = (t % segs) * SEG;
  return Seg(e % per_row, t / segs, i0, min(i0 + SEG, p.len_in));
}

@compute @workgroup_size(64)
fn x2i(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.n) { return; }
  let sg = seg_of(e, p.inner);
  let last = p.len_out - 1u;
  let b = sg.o * p.len_out * p.inner + sg.k;
  var l = src[b + (max(2u * sg.i0, 1u) - 1u) * p.inner];
  var a = src[b + 2u * sg.i0 * p.inner];
  for (var i = sg.i0; i < sg.i1; i++) {
    let c = src[b + (2u * i + 1u) * p.inner];
    let r = src[b + min(2u * i + 2u, last) * p.inner];
    dst[(sg.o * p.len_in + i) * p.inner + sg.k] = x2_adj(l, a, c, r);
    l = c;
    a = r;
  }
}

// The H and W passes fused, both ×2: [outer, len_out, 2 inner] → [outer, len_in, inner] (here
// the axis is H and inner is the input W). One invocation per W quad k (4 inputs) and segment of
// SEG input rows, sliding along H as x2i does, each dy row W-adjointed on load (x2_wq): no
// intermediate tensor, and lanes consecutive along W. n: outer × ceil(len_in / SEG) × ceil(inner / 4).
// x2hw4 stores vec4s (inner a multiple of 4), x2hw one by one.
// An invocation's walk: its quad k, rows i0 .. i1 of outer o, and the two dy rows (W-adjointed)
// the next step reuses.
// dy rows a multiple of 8 long (x2hw4): vec4 loads (x2_wq4)
fn wq(b: u32, k: u32, wo: u32) -> vec4<f32> {
  if (wo % 8u == 0u) { return x2_wq4(b, k, wo); }
  return x2_wq(b, k, wo);
}

// rb: the offset of dy row 2i + 1 for the next step i, last: of the outer's last dy row (the
// offsets advance by addition: paired ≈ 0.9× the time of recomputing them per row)
struct HW { o: u32, k: u32, i0: u32, i1: u32, l: vec4<f32>, a: vec4<f32>, rb: u32, last: u32 }

fn hw_begin(e: u32) -> HW {
  let wo = 2u * p.inner;
  let sg = seg_of(e, (p.inner + 3u) / 4u);
  let b = sg.o * p.len_out;
  return HW(sg.o, sg.k, sg.i0, sg.i1, wq((b + max(2u * sg.i0, 1u) - 1u) * wo, sg.k, wo), wq((b + 2u * sg.i0) * wo, sg.k, wo),
            (b + 2u * sg.i0 + 1u) * wo, (b + p.len_out - 1u) * wo);
}

// dx row i's quad (4 inputs along W); slides the walk on.
fn hw_next(h: ptr<function, HW>) -> vec4<f32> {
  let wo = 2u * p.inner;
  let c = wq((*h).rb, (*h).k, wo);
  let r = wq(min((*h).rb + wo, (*h).last), (*h).k, wo);
  let v = X2_OUTER * ((*h).l + r) + X2_INNER * ((*h).a + c);
  (*h).l = c;
  (*h).a = r;
  (*h).rb += 2u * wo;
  return v;
}

@compute @workgroup_size(64)
fn x2hw4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.n) { return; }
  var h = hw_begin(e);
  let row4 = p.inner / 4u;
  var d = (h.o * p.len_in + h.i0) * row4 + h.k;
  for (var i = h.i0; i < h.i1; i++) {
    dst4[d] = hw_next(&h);
    d += row4;
  }
}

@compute @workgroup_size(64)
fn x2hw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.n) { return; }
  var h = hw_begin(e);
  let w = 4u * h.k;
  for (var i = h.i0; i < h.i1; i++) {
    let v = hw_next(&h);
    let d = (h.o * p.len_in + i) * p.inner + w;
    dst[d] = v.x;
    if (w + 1u < p.inner) { dst[d + 1u] = v.y; }
    if (w + 2u < p.inner) { dst[d + 2u] = v.z; }
    if (w + 3u < p.inner) { dst[d + 3u] = v.w; }
  }
}

// Linear ×S for an integer S > 2 (align_corners=False, len_out = S len_in, ratio 1 / S): input i
// is read by the outputs S i − floor(S / 2) + t, t in [0, 2S) (2S − 1 for an odd S), with the
// triangle weight 1 − |t + a − S| / S (a = 0.5 for an even S, 1 for an odd one). At the edges the
// forward clamps the source position, which folds the taps of inputs −1 and len_in into inputs 0
// and len_in − 1: the same sums over the outputs that exist. One invocation per dx element
// (consecutive along inner); no tap evaluation. n: outer × len_in × inner.
override S: u32 = 4u;

fn xs_sum(b: u32, i: i32) -> f32 {
  let a = select(1.0, 0.5, S % 2u == 0u);
  let taps = 2u * S - select(1u, 0u, S % 2u == 0u);
  let j0 = i32(S) * i - i32(S / 2u);
  var acc = 0.0;
  for (var t = 0u; t < taps; t++) {
    let j = j0 + i32(t);
    if (j >= 0 && j < i32(p.len_out)) {
      acc += (1.0 - abs(f32(t) + a - f32(S)) / f32(S)) * src[b + u32(j) * p.inner];
    }
  }
  return acc;
}

@compute @workgroup_size(64)
fn xs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.n) { return; }
  let k = e % p.inner;
  let t = e / p.inner;
  let i = t % p.len_in;
  let b = (t / p.len_in) * p.len_out * p.inner + k;
  var acc = xs_sum(b, i32(i));
  if (i == 0u) { acc += xs_sum(b, -1); }
  if (i + 1u == p.len_in) { acc += xs_sum(b, i32(p.len_in)); }
  dst[e] = acc;
}

// x2i for an inner a multiple of 4: vec4 loads and stores (lanes on consecutive inner quads).
// n: outer × ceil(len_in / SEG) × inner / 4.
@compute @workgroup_size(64)
fn x2i4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= p.n) { return; }
  let in4 = p.inner / 4u;
  let sg = seg_of(e, in4);
  let last = p.len_out - 1u;
  let b = sg.o * p.len_out * in4 + sg.k;
  var l = src4[b + (max(2u * sg.i0, 1u) - 1u) * in4];
  var a = src4[b + 2u * sg.i0 * in4];
  // offsets advance by addition (src row 2i + 1, dst row i)
  var rb = b + (2u * sg.i0 + 1u) * in4;
  let lastb = b + last * in4;
  var d = (sg.o * p.len_in + sg.i0) * in4 + sg.k;
  for (var i = sg.i0; i < sg.i1; i++) {
    let c = src4[rb];
    let r = src4[min(rb + in4, lastb)];
    dst4[d] = X2_OUTER * (l + r) + X2_INNER * (a + c);
    l = c;
    a = r;
    rb += 2u * in4;
    d += in4;
  }
}

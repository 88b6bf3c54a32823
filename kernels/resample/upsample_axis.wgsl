// Backward of resample/upsample along one axis: the adjoint of the 1-D resampling of a tensor
// viewed as [outer, len, inner], dx[o, i, k] = sum over outputs j that read input i of
// w(j, i) * dy[o, j, k]. The op chains it over W, H and D (trilinear weights are a product of
// per-dim weights, so the adjoint factors the same way), each pass shrinking the tensor.
// MODE, tap and the ratio follow resample/upsample exactly (keep in step).
// Bindings: 0 uniforms, 1 src (dy, or the previous pass's result), 2 dst.
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

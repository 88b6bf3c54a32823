// Nearest / (bi,tri)linear resampling of a tensor viewed as [NC, D, H, W] (2D passes D = 1 and
// 1D D = H = 1: a size-1 dim maps onto itself in every mode), F.interpolate semantics.
// MODE 0 nearest: src = min(floor(dst * r), in - 1) (PyTorch 'nearest', not nearest-exact).
// MODE 1 linear: src = r * (dst + 0.5) - 0.5 clamped at 0 (align = 0) or src = r * dst
// (align = 1, align_corners=True); taps floor(src) and the next one, clamped at the edge.
// r is the source-per-destination ratio per dim, computed by the op as PyTorch does.
// Bindings: 0 uniforms, 1 src (x), 2 dst (y), 3 dst4 (main4: y as vec4s).
// Forward only: the backward is upsample_axis.wgsl (one adjoint pass per axis).
override MODE: u32 = 0u;
struct Params {
  ind: vec4<u32>,   // input D, H, W
  outd: vec4<u32>,  // output D, H, W
  ratio: vec4<f32>, // source pixels per destination pixel along D, H, W
  align: u32,       // 1: align_corners=True
  n: u32,           // threads: output rows × W blocks
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst4: array<vec4<f32>>;

// The two input taps of output o along one dim and their weights (nearest: one tap, weight 1).
struct Tap { i0: u32, i1: u32, l0: f32, l1: f32 }

fn tap(o: u32, size: u32, r: f32) -> Tap {
  if (MODE == 0u) {
    let j = min(u32(floor(f32(o) * r)), size - 1u);
    return Tap(j, j, 1.0, 0.0);
  }
  var s = r * f32(o);
  if (p.align == 0u) { s = max(r * (f32(o) + 0.5) - 0.5, 0.0); }
  let i0 = min(u32(s), size - 1u); // s >= 0, so the cast floors
  let l1 = s - f32(i0);
  return Tap(i0, min(i0 + 1u, size - 1u), 1.0 - l1, l1);
}

// Weight with which output tap t reads input i (both taps may be i at the edge).
fn weight(t: Tap, i: u32) -> f32 {
  return select(0.0, t.l0, t.i0 == i) + select(0.0, t.l1, t.i1 == i);
}

// Forward: one invocation per VW consecutive outputs of one output row (nc, od, oh): the D and H
// taps and row offsets once, then along W a sliding pair of input columns blended over D and H
// (4 loads each). Taps never move backwards along W, so each column is blended once per block:
// for ×2 upsampling ≈ 2 loads per output instead of 8.
override VW: u32 = 16u;

// The D/H blend of one output row and the W block an invocation owns.
struct Row { td: Tap, th: Tap, r00: u32, r01: u32, r10: u32, r11: u32, obase: u32, ow0: u32, ow1: u32 }

fn row_of(i: u32) -> Row {
  let blocks = (p.outd.z + VW - 1u) / VW;
  let wb = i % blocks;
  let row = i / blocks;
  let oh = row % p.outd.y;
  let t2 = row / p.outd.y;
  let od = t2 % p.outd.x;
  let nc = t2 / p.outd.x;
  let base = nc * p.ind.x * p.ind.y * p.ind.z;
  let td = tap(od, p.ind.x, p.ratio.x);
  let th = tap(oh, p.ind.y, p.ratio.y);
  let ow0 = wb * VW;
  return Row(td, th,
    base + (td.i0 * p.ind.y + th.i0) * p.ind.z, base + (td.i0 * p.ind.y + th.i1) * p.ind.z,
    base + (td.i1 * p.ind.y + th.i0) * p.ind.z, base + (td.i1 * p.ind.y + th.i1) * p.ind.z,
    row * p.outd.z, ow0, min(ow0 + VW, p.outd.z));
}

fn blend(r: Row, w: u32) -> f32 {
  if (MODE == 0u) { return src[r.r00 + w]; }
  return r.td.l0 * (r.th.l0 * src[r.r00 + w] + r.th.l1 * src[r.r01 + w]) +
         r.td.l1 * (r.th.l0 * src[r.r10 + w] + r.th.l1 * src[r.r11 + w]);
}

// Sliding pair of blended input columns (ia: va, ib: vb): taps never move backwards along W.
struct Slide { ia: u32, ib: u32, va: f32, vb: f32 }

fn output(r: Row, ow: u32, st: ptr<function, Slide>) -> f32 {
  let tw = tap(ow, p.ind.z, p.ratio.z);
  if (tw.i0 != (*st).ia) {
    if (tw.i0 == (*st).ib) { (*st).ia = (*st).ib; (*st).va = (*st).vb; } else { (*st).ia = tw.i0; (*st).va = blend(r, tw.i0); }
  }
  if (tw.i1 != (*st).ib) {
    (*st).ib = tw.i1;
    if (tw.i1 == (*st).ia) { (*st).vb = (*st).va; } else { (*st).vb = blend(r, tw.i1); }
  }
  if (MODE == 0u) { return (*st).va; }
  return tw.l0 * (*st).va + tw.l1 * (*st).vb;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let r = row_of(i);
  var st = Slide(0xffffffffu, 0xffffffffu, 0.0, 0.0);
  for (var ow = r.ow0; ow < r.ow1; ow++) { dst[r.obase + ow] = output(r, ow, &st); }
}

// main with 16-byte stores: for an output W that is a multiple of 4 (VW is one too), every
// block starts and ends on a vec4.
@compute @workgroup_size(64)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let r = row_of(i);
  var st = Slide(0xffffffffu, 0xffffffffu, 0.0, 0.0);
  for (var ow = r.ow0; ow < r.ow1; ow += 4u) {
    let v0 = output(r, ow, &st);
    let v1 = output(r, ow + 1u, &st);
    let v2 = output(r, ow + 2u, &st);
    let v3 = output(r, ow + 3u, &st);
    dst4[(r.obase + ow) / 4u] = vec4<f32>(v0, v1, v2, v3);
  }
}

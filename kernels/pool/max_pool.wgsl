// Max pooling over the last three dims of a tensor viewed as [NC, D, H, W] (2D pools pass
// D = 1 with kernel 1, stride 1, padding 0). PyTorch semantics: padded positions never win
// (they count as -inf), ties go to the first maximum in (d, h, w) scan order, NaN propagates.
// Bindings: 0 uniforms, 1 src (forward: x, backward: dy), 2 idx (u32 argmax per output, the
// flat d*H*W + h*W + w within its [D, H, W] slice; written forward, read backward),
// 3 dst (forward: y, backward: dx), 4 src4 (main_w2, main_q: x as vec4s; scatter_q: dy), 5 dst4
// (main_q: y as vec4s; scatter_q: dx), 6 idx4 (main_q, scatter_q: the argmax as vec4s).
// Trick: the backward is a gather, not a scatter: each input element visits the (at most
// kd*kh*kw) windows that can contain it and sums dy where that window's argmax is itself, so
// overlapping windows need no atomics and every dx element is written exactly once.
// When no two windows share an input (stride >= dilation * (kernel - 1) + 1 in every dim, the
// default stride = kernel among them) the op zero-fills dx and runs `scatter` instead: one
// invocation per output writes dy into its argmax, as PyTorch does; no write can collide.
// Where main_q ran, `scatter_q` writes whole windows instead (dy at the argmax, 0 elsewhere).
// main_q: the D kernel (= D stride), a constant so the tap loops unroll.
override KD: u32 = 2u;

struct Params {
  ind: vec4<u32>,  // input D, H, W
  outd: vec4<u32>, // output D, H, W
  k: vec4<u32>,    // kernel
  s: vec4<u32>,    // stride
  pad: vec4<u32>,  // padding
  dil: vec4<u32>,  // dilation
  n: u32,          // threads: outputs (forward, scatter) or inputs (backward); main_q: quads
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> idx4: array<vec4<u32>>;

const NO_INDEX: u32 = 0xffffffffu;

// From the bits: llvmpipe compiles 'v != v' as false (no-NaN float math), so a NaN after the
// first element of a window was lost.
fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let ow = i % p.outd.z;
  let t = i / p.outd.z;
  let oh = t % p.outd.y;
  let t2 = t / p.outd.y;
  let od = t2 % p.outd.x;
  let nc = t2 / p.outd.x;
  let base = nc * p.ind.x * p.ind.y * p.ind.z;
  let start = vec3<i32>(vec3<u32>(od, oh, ow) * p.s.xyz) - vec3<i32>(p.pad.xyz);
  let extent = vec3<i32>(p.ind.xyz);
  var found = false;
  var best = 0.0;
  var arg = NO_INDEX;
  for (var kd = 0u; kd < p.k.x; kd++) {
    let id = start.x + i32(kd * p.dil.x);
    if (id < 0 || id >= extent.x) { continue; }
    for (var kh = 0u; kh < p.k.y; kh++) {
      let ih = start.y + i32(kh * p.dil.y);
      if (ih < 0 || ih >= extent.y) { continue; }
      for (var kw = 0u; kw < p.k.z; kw++) {
        let iw = start.z + i32(kw * p.dil.z);
        if (iw < 0 || iw >= extent.z) { continue; }
        let j = (u32(id) * p.ind.y + u32(ih)) * p.ind.z + u32(iw);
        let v = src[base + j];
        // strict '>' keeps the first maximum; a NaN always wins, as in PyTorch
        if (!found || v > best || is_nan(v)) {
          found = true;
          best = v;
          arg = j;
        }
      }
    }
  }
  if (!found) {
    // unreachable for the paddings the op accepts (pad <= kernel / 2); -inf like PyTorch
    var bits = 0xff800000u;
    best = bitcast<f32>(bits);
  }
  dst[i] = best;
  idx[i] = arg;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let slice = p.ind.x * p.ind.y * p.ind.z;
  let j = i % slice; // this element's flat index within its slice, as the forward stored it
  let nc = i / slice;
  let iw = j % p.ind.z;
  let ih = (j / p.ind.z) % p.ind.y;
  let id = j / (p.ind.z * p.ind.y);
  let obase = nc * p.outd.x * p.outd.y * p.outd.z;
  // output o contains input i along a dim iff o*s - pad + kk*dil == i for some tap kk < k;
  // that kk is unique per (o, i), so no window is counted twice. Per dim the candidates are
  // the o with pos - (k-1)*dil <= o*s <= pos, walked from the highest (tap 0 first, the old
  // scan order, so sums of several windows keep their rounding); a dilated dim also needs
  // dil | pos - o*s.
  let pos = vec3<i32>(vec3<u32>(id, ih, iw) + p.pad.xyz);
  let s = vec3<i32>(p.s.xyz);
  let dil = vec3<i32>(p.dil.xyz);
  let lo_num = pos - (vec3<i32>(p.k.xyz) - vec3<i32>(1)) * dil;
  let lo = select((lo_num + s - vec3<i32>(1)) / s, vec3<i32>(0), lo_num <= vec3<i32>(0));
  let hi = min(pos / s, vec3<i32>(p.outd.xyz) - vec3<i32>(1));
  var acc = 0.0;
  for (var od = hi.x; od >= lo.x; od--) {
    if (dil.x != 1 && (pos.x - od * s.x) % dil.x != 0) { continue; }
    for (var oh = hi.y; oh >= lo.y; oh--) {
      if (dil.y != 1 && (pos.y - oh * s.y) % dil.y != 0) { continue; }
      let orow = obase + (u32(od) * p.outd.y + u32(oh)) * p.outd.z;
      for (var ow = hi.z; ow >= lo.z; ow--) {
        if (dil.z != 1 && (pos.z - ow * s.z) % dil.z != 0) { continue; }
        let o = orow + u32(ow);
        if (idx[o] == j) { acc += src[o]; }
      }
    }
  }
  dst[i] = acc;
}

@compute @workgroup_size(64)
fn scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let j = idx[i];
  if (j == NO_INDEX) { return; }
  let nc = i / (p.outd.x * p.outd.y * p.outd.z);
  dst[nc * p.ind.x * p.ind.y * p.ind.z + j] = src[i];
}

// The keep-the-first-maximum step of main (strict '>', a NaN wins), for one candidate.
fn take(found: ptr<function, bool>, best: ptr<function, f32>, arg: ptr<function, u32>, v: f32, j: u32) {
  if (!*found || v > *best || is_nan(v)) {
    *found = true;
    *best = v;
    *arg = j;
  }
}

// main for the common W window (kernel 2, stride 2, no padding or dilation along W) on an input
// W that is a multiple of 4: one invocation per pair of outputs along W, whose two windows are
// one aligned vec4 of each (d, h) input row. D and H keep any kernel, stride, padding, dilation.
@compute @workgroup_size(64)
fn main_w2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let pairs = p.outd.z / 2u;
  let q = i % pairs;
  let t = i / pairs;
  let oh = t % p.outd.y;
  let t2 = t / p.outd.y;
  let od = t2 % p.outd.x;
  let nc = t2 / p.outd.x;
  let base4 = nc * p.ind.x * p.ind.y * (p.ind.z / 4u);
  let start = vec2<i32>(vec2<u32>(od, oh) * p.s.xy) - vec2<i32>(p.pad.xy);
  var f0 = false;
  var f1 = false;
  var b0 = 0.0;
  var b1 = 0.0;
  var a0 = NO_INDEX;
  var a1 = NO_INDEX;
  for (var kd = 0u; kd < p.k.x; kd++) {
    let id = start.x + i32(kd * p.dil.x);
    if (id < 0 || id >= i32(p.ind.x)) { continue; }
    for (var kh = 0u; kh < p.k.y; kh++) {
      let ih = start.y + i32(kh * p.dil.y);
      if (ih < 0 || ih >= i32(p.ind.y)) { continue; }
      let row = u32(id) * p.ind.y + u32(ih);
      let v = src4[base4 + row * (p.ind.z / 4u) + q];
      let j = row * p.ind.z + 4u * q;
      take(&f0, &b0, &a0, v.x, j);
      take(&f0, &b0, &a0, v.y, j + 1u);
      take(&f1, &b1, &a1, v.z, j + 2u);
      take(&f1, &b1, &a1, v.w, j + 3u);
    }
  }
  var ninf = 0xff800000u;
  let o = t * p.outd.z + 2u * q;
  dst[o] = select(bitcast<f32>(ninf), b0, f0);
  dst[o + 1u] = select(bitcast<f32>(ninf), b1, f1);
  idx[o] = a0;
  idx[o + 1u] = a1;
}

fn nan4(v: vec4<f32>) -> vec4<bool> {
  return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

// (w quad, oh, od, nc) of quad index i, quads counted row-major over [NC, OD, OH, OW / 4]
fn quad_coords(i: u32) -> vec4<u32> {
  let qw = p.outd.z / 4u;
  let r = i / qw;
  let ncod = r / p.outd.y;
  return vec4<u32>(i % qw, r % p.outd.y, ncod % p.outd.x, ncod / p.outd.x);
}

// A quad walk: the invocation's (w quad, oh, od, nc), advanced by the grid stride with a
// mixed-radix add (each digit of the stride is below its limit, so one carry per digit).
struct QuadWalk { c: vec4<u32>, dc: vec4<u32>, lim: vec3<u32> }

fn quad_walk(i0: u32, stride: u32) -> QuadWalk {
  return QuadWalk(quad_coords(i0), quad_coords(stride), vec3<u32>(p.outd.z / 4u, p.outd.y, p.outd.x));
}

fn quad_advance(w: ptr<function, QuadWalk>) {
  var c = (*w).c + (*w).dc;
  var k = u32(c.x >= (*w).lim.x);
  c.x -= k * (*w).lim.x;
  c.y += k;
  k = u32(c.y >= (*w).lim.y);
  c.y -= k * (*w).lim.y;
  c.z += k;
  k = u32(c.z >= (*w).lim.z);
  c.z -= k * (*w).lim.z;
  c.w += k;
  (*w).c = c;
}

// The quad's window origin: b4, the vec4 index of tap (0, 0)'s two input vec4s; j0, the four
// outputs' tap (0, 0) flat input indices (what idx stores).
struct QuadWindow { b4: u32, j0: vec4<u32> }

fn quad_window(c: vec4<u32>) -> QuadWindow {
  let iw4 = p.ind.z / 4u;
  let row = c.z * KD * p.ind.y + 2u * c.y; // tap (0, 0)'s input row within the [D, H] slice
  return QuadWindow((c.w * p.ind.x * p.ind.y + row) * iw4 + 2u * c.x,
                    vec4<u32>(row * p.ind.z + 8u * c.x) + vec4<u32>(0u, 2u, 4u, 6u));
}

// Windows of KD x 2 x 2 at stride KD x 2 x 2 without padding or dilation (2³ and 2D 2x2 pools,
// the U-Nets' downsampling) on an input W that is a multiple of 8, so every output row is whole
// quads: each iteration makes 4 consecutive outputs along W (one vec4 of y and one of idx) from
// 2 aligned vec4s of each of the KD x 2 input rows, the even and odd columns compared as vec4s
// (`take`'s rule: strict '>', a NaN wins, per lane with select). Lanes take consecutive quads,
// so one workgroup's loads and stores are contiguous; the invocation grid-strides (launched with
// about 8 quads per invocation) and walks its (quad, oh, od, nc) by a mixed-radix add of the
// stride instead of dividing per quad. D floors like the general kernel (od * KD + kd < D).
@compute @workgroup_size(64)
fn main_q(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  let iw4 = p.ind.z / 4u;
  let plane4 = p.ind.y * iw4;
  let i0 = gid.x + gid.y * nwg.x * 64u;
  var walk = quad_walk(i0, stride);
  for (var i = i0; i < p.n; i += stride) {
    let win = quad_window(walk.c);
    var best = vec4<f32>(0.0);
    var arg = vec4<u32>(0u);
    for (var kd = 0u; kd < KD; kd++) {
      for (var kh = 0u; kh < 2u; kh++) {
        let off = kd * plane4 + kh * iw4;
        let a = src4[win.b4 + off];
        let b = src4[win.b4 + off + 1u];
        let e = vec4<f32>(a.x, a.z, b.x, b.z); // column 0 of each output's window
        let o = vec4<f32>(a.y, a.w, b.y, b.w); // column 1
        let je = win.j0 + vec4<u32>(off * 4u);
        let ce = vec4<bool>(kd == 0u && kh == 0u) | (e > best) | nan4(e);
        best = select(best, e, ce);
        arg = select(arg, je, ce);
        let co = (o > best) | nan4(o);
        best = select(best, o, co);
        arg = select(arg, je + vec4<u32>(1u), co);
      }
    }
    dst4[i] = best;
    idx4[i] = arg;
    quad_advance(&walk);
  }
}

// The backward of main_q's windows: per output quad (dy as a vec4, its argmaxes as a vec4<u32>)
// writes every vec4 of its KD x 2 window rows, dy where the argmax is that column and 0
// elsewhere, so dx needs no zero-fill unless D or H has a floored tail no window covers (the op
// clears dx then). Same launch and carry walk as main_q.
@compute @workgroup_size(64)
fn scatter_q(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  let iw4 = p.ind.z / 4u;
  let plane4 = p.ind.y * iw4;
  let i0 = gid.x + gid.y * nwg.x * 64u;
  var walk = quad_walk(i0, stride);
  for (var i = i0; i < p.n; i += stride) {
    let win = quad_window(walk.c);
    let g = src4[i];
    let a = idx4[i];
    for (var kd = 0u; kd < KD; kd++) {
      for (var kh = 0u; kh < 2u; kh++) {
        let off = kd * plane4 + kh * iw4;
        let je = win.j0 + vec4<u32>(off * 4u);
        let e = select(vec4<f32>(0.0), g, a == je);              // column 0 of each window
        let o = select(vec4<f32>(0.0), g, a == je + vec4<u32>(1u)); // column 1
        dst4[win.b4 + off] = vec4<f32>(e.x, o.x, e.y, o.y);
        dst4[win.b4 + off + 1u] = vec4<f32>(e.z, o.z, e.w, o.w);
      }
    }
    quad_advance(&walk);
  }
}

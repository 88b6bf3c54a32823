// Winograd F(MT×MT, 3×3) transforms for a 3×3, stride-1 2-D convolution (Lavin & Gray 2015),
// MT = 2 (4×4 input tiles, 16 products per 4 outputs) or MT = 4 (6×6 tiles, 36 per 16), AL = MT + 2:
//   U = G g Gᵀ     per (ic, oc)              U [AL², Cin, Cout]
//   V = Bᵀ d B     per (tile, ic)            V [AL², P, Cin], P = N * th * tw tiles of AL×AL inputs
//   M[e] = V[e] @ U[e]                       (the batched GEMM, matmul.wgsl)
//   y = Aᵀ m A + bias per (tile, oc)         y [N, Cout, OH, OW], cropped at the last tile
// e = AL * row + col of the transformed tile. Tile (ty, tx) covers output rows MT*ty .. MT*ty+MT-1
// and reads input rows MT*ty - pad_h .. MT*ty - pad_h + AL - 1 (zero outside the input: the
// padding and the overhang of a cropped last tile).
// Each transform is linear, so its backward is its adjoint (the transposed matrices):
//   filter_adj: dg = Gᵀ dU G;  output_adj: dm = A dy Aᵀ (dy zero where cropped);
//   input_adj:  dx[pixel] = sum over the (up to 2×2) tiles containing it of (B dV Bᵀ)[r, c],
//               a gather (one invocation per input element, no atomics).
// Bindings: 0 p (uniforms), 1 src, 2 bias (output_fwd only), 3 dst.
// Trick: in input_fwd / input_adj the channel is the fastest index, so the AL² V values of one
// invocation are read/written lane-contiguous (the big side), and in input_adj a workgroup's
// lanes share (h, w) almost always, so the tap position (r, c) and the zero-coefficient skips
// are uniform.
override MT: u32 = 2u;       // output tile: 2 = F(2×2,3×3), 4 = F(4×4,3×3)
override AL: u32 = MT + 2u;  // input tile
struct Params {
  count: u32,  // invocations that do work
  cin: u32,
  cout: u32,
  tiles: u32,  // P = batch * th * tw
  th: u32,     // tile rows, ceil(OH / MT)
  tw: u32,     // tile columns, ceil(OW / MT)
  ih: u32,     // input H, W
  iw: u32,
  oh: u32,     // output H, W
  ow: u32,
  pad_h: u32,
  pad_w: u32,
  use_bias: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// F(2,3): Bᵀ (4×4), G (4×3), Aᵀ (2×4); F(4,3): Bᵀ (6×6), G (6×3), Aᵀ (4×6); row-major.
const BT4 = array<f32, 16>(1.0, 0.0, -1.0, 0.0,  0.0, 1.0, 1.0, 0.0,  0.0, -1.0, 1.0, 0.0,  0.0, 1.0, 0.0, -1.0);
const G4 = array<f32, 12>(1.0, 0.0, 0.0,  0.5, 0.5, 0.5,  0.5, -0.5, 0.5,  0.0, 0.0, 1.0);
const AT4 = array<f32, 8>(1.0, 1.0, 1.0, 0.0,  0.0, 1.0, -1.0, -1.0);
const BT6 = array<f32, 36>(
  4.0, 0.0, -5.0, 0.0, 1.0, 0.0,
  0.0, -4.0, -4.0, 1.0, 1.0, 0.0,
  0.0, 4.0, -4.0, -1.0, 1.0, 0.0,
  0.0, -2.0, -1.0, 2.0, 1.0, 0.0,
  0.0, 2.0, -1.0, -2.0, 1.0, 0.0,
  0.0, 4.0, 0.0, -5.0, 0.0, 1.0);
const G6 = array<f32, 18>(
  0.25, 0.0, 0.0,
  -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0,
  -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0,
  1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0,
  1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0,
  0.0, 0.0, 1.0);
const AT6 = array<f32, 24>(
  1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
  0.0, 1.0, -1.0, 2.0, -2.0, 0.0,
  0.0, 1.0, 1.0, 4.0, 4.0, 0.0,
  0.0, 1.0, -1.0, 8.0, -8.0, 1.0);
// Entries of the selected transform (MT is an override, so the branch folds at pipeline creation).
fn bt(r: u32, c: u32) -> f32 {
  if (MT == 4u) { return BT6[r * 6u + c]; }
  return BT4[r * 4u + c];
}
fn gm(r: u32, c: u32) -> f32 {
  if (MT == 4u) { return G6[r * 3u + c]; }
  return G4[r * 3u + c];
}
fn at(r: u32, c: u32) -> f32 {
  if (MT == 4u) { return AT6[r * 6u + c]; }
  return AT4[r * 4u + c];
}

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// U[e, ic, oc] = (G g Gᵀ)[e], g = w[oc, ic, :, :]. Invocation i = ic * Cout + oc.
@compute @workgroup_size(64)
fn filter_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.count) { return; }
  let ic = i / p.cout;
  let oc = i % p.cout;
  let wb = (oc * p.cin + ic) * 9u;
  var g: array<f32, 9>;
  for (var k = 0u; k < 9u; k++) { g[k] = src[wb + k]; }
  var t: array<f32, 18>;  // G g: AL×3
  for (var r = 0u; r < AL; r++) {
    for (var c = 0u; c < 3u; c++) {
      t[r * 3u + c] = gm(r, 0u) * g[c] + gm(r, 1u) * g[3u + c] + gm(r, 2u) * g[6u + c];
    }
  }
  let cc = p.cin * p.cout;
  for (var r = 0u; r < AL; r++) {
    for (var c = 0u; c < AL; c++) {
      dst[(r * AL + c) * cc + i] = t[r * 3u] * gm(c, 0u) + t[r * 3u + 1u] * gm(c, 1u) + t[r * 3u + 2u] * gm(c, 2u);
    }
  }
}

// Uᵀ[e, oc, ic] = (G g Gᵀ)[e] (the layout the backward's dV = dM @ Uᵀ reads). Invocation
// i = oc * Cin + ic.
@compute @workgroup_size(64)
fn filter_fwd_t(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.count) { return; }
  var g: array<f32, 9>;
  for (var k = 0u; k < 9u; k++) { g[k] = src[i * 9u + k]; }
  var t: array<f32, 18>;  // G g: AL×3
  for (var r = 0u; r < AL; r++) {
    for (var c = 0u; c < 3u; c++) {
      t[r * 3u + c] = gm(r, 0u) * g[c] + gm(r, 1u) * g[3u + c] + gm(r, 2u) * g[6u + c];
    }
  }
  let cc = p.cin * p.cout;
  for (var r = 0u; r < AL; r++) {
    for (var c = 0u; c < AL; c++) {
      dst[(r * AL + c) * cc + i] = t[r * 3u] * gm(c, 0u) + t[r * 3u + 1u] * gm(c, 1u) + t[r * 3u + 2u] * gm(c, 2u);
    }
  }
}

// dw[oc, ic, :, :] = Gᵀ dU[:, ic, oc] G. Invocation i = ic * Cout + oc, dU's own order, so the
// AL² reads are lane-contiguous and the 9 writes strided (~6× faster than the other way round
// on lavapipe).
@compute @workgroup_size(64)
fn filter_adj(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.count) { return; }
  let ic = i / p.cout;
  let oc = i % p.cout;
  let cc = p.cin * p.cout;
  let wb = (oc * p.cin + ic) * 9u;
  var u: array<f32, 36>;
  for (var e = 0u; e < AL * AL; e++) { u[e] = src[e * cc + i]; }
  var t: array<f32, 18>;  // Gᵀ dU: 3×AL
  for (var r = 0u; r < 3u; r++) {
    for (var c = 0u; c < AL; c++) {
      var s = 0.0;
      for (var k = 0u; k < AL; k++) { s += gm(k, r) * u[k * AL + c]; }
      t[r * AL + c] = s;
    }
  }
  for (var r = 0u; r < 3u; r++) {
    for (var c = 0u; c < 3u; c++) {
      var s = 0.0;
      for (var k = 0u; k < AL; k++) { s += t[r * AL + k] * gm(k, c); }
      dst[wb + r * 3u + c] = s;
    }
  }
}

// V[e, tile, ic] = (Bᵀ d B)[e], d the tile's AL×AL input window. Invocation i = tile * Cin + ic.
@compute @workgroup_size(64)
fn input_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.count) { return; }
  let tile = i / p.cin;
  let ic = i % p.cin;
  let tx = tile % p.tw;
  let ty = (tile / p.tw) % p.th;
  let n = tile / (p.tw * p.th);
  let h0 = i32(MT * ty) - i32(p.pad_h);
  let w0 = i32(MT * tx) - i32(p.pad_w);
  let base = (n * p.cin + ic) * p.ih * p.iw;
  var d: array<f32, 36>;
  for (var r = 0u; r < AL; r++) {
    let h = h0 + i32(r);
    for (var c = 0u; c < AL; c++) {
      let w = w0 + i32(c);
      let ok = h >= 0 && h < i32(p.ih) && w >= 0 && w < i32(p.iw);
      // masked loads read element 0 of the plane (always in bounds)
      let v = src[base + select(0u, u32(h) * p.iw + u32(w), ok)];
      d[r * AL + c] = select(0.0, v, ok);
    }
  }
  var t: array<f32, 36>;  // Bᵀ d
  for (var r = 0u; r < AL; r++) {
    for (var c = 0u; c < AL; c++) {
      var s = 0.0;
      for (var k = 0u; k < AL; k++) { s += bt(r, k) * d[k * AL + c]; }
      t[r * AL + c] = s;
    }
  }
  let stride = p.tiles * p.cin;
  for (var r = 0u; r < AL; r++) {
    for (var c = 0u; c < AL; c++) {
      var s = 0.0;
      for (var k = 0u; k < AL; k++) { s += t[r * AL + k] * bt(c, k); }
      dst[(r * AL + c) * stride + i] = s;
    }
  }
}

// dx[n, ic, h, w] = sum over tiles (ty, tx) with 0 <= h + pad_h - MT*ty <= AL - 1 (same for w)
// of (B dV Bᵀ)[r, c] = sum_{a,b} Bᵀ[a, r] Bᵀ[b, c] dV[AL*a + b, tile, ic].
// Invocation i = ((n * IH + h) * IW + w) * Cin + ic.
@compute @workgroup_size(64)
fn input_adj(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.count) { return; }
  let ic = i % p.cin;
  let pix = i / p.cin;
  let w = pix % p.iw;
  let h = (pix / p.iw) % p.ih;
  let n = pix / (p.iw * p.ih);
  let hp = h + p.pad_h;
  let wp = w + p.pad_w;
  // tiles whose window [MT*t, MT*t + AL - 1] holds hp: t in [ceil((hp - AL + 1) / MT), floor(hp / MT)],
  // the lower bound being (hp - 2) / MT for hp >= 2 (AL = MT + 2)
  let ty0 = select(0u, (hp - 2u) / MT, hp >= 2u);
  let ty1 = min(p.th, hp / MT + 1u);
  let tx0 = select(0u, (wp - 2u) / MT, wp >= 2u);
  let tx1 = min(p.tw, wp / MT + 1u);
  let stride = p.tiles * p.cin;
  var acc = 0.0;
  for (var ty = ty0; ty < ty1; ty++) {
    let r = hp - MT * ty;
    for (var tx = tx0; tx < tx1; tx++) {
      let c = wp - MT * tx;
      let vi = ((n * p.th + ty) * p.tw + tx) * p.cin + ic;
      for (var a = 0u; a < AL; a++) {
        let ba = bt(a, r);
        if (ba == 0.0) { continue; }
        var s = 0.0;
        for (var b = 0u; b < AL; b++) {
          let bb = bt(b, c);
          if (bb == 0.0) { continue; }
          s += bb * src[(a * AL + b) * stride + vi];
        }
        acc += ba * s;
      }
    }
  }
  dst[((n * p.cin + ic) * p.ih + h) * p.iw + w] = acc;
}

// y[n, oc, MT*ty + r, MT*tx + c] = (Aᵀ m A)[r, c] + bias[oc] for the rows/columns inside the
// output. Invocation i = tile * Cout + oc.
@compute @workgroup_size(64)
fn output_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.count) { return; }
  let tile = i / p.cout;
  let oc = i % p.cout;
  let tx = tile % p.tw;
  let ty = (tile / p.tw) % p.th;
  let n = tile / (p.tw * p.th);
  let stride = p.tiles * p.cout;
  var m: array<f32, 36>;
  for (var e = 0u; e < AL * AL; e++) { m[e] = src[e * stride + i]; }
  var t: array<f32, 24>;  // Aᵀ m: MT×AL
  for (var r = 0u; r < MT; r++) {
    for (var c = 0u; c < AL; c++) {
      var s = 0.0;
      for (var k = 0u; k < AL; k++) { s += at(r, k) * m[k * AL + c]; }
      t[r * AL + c] = s;
    }
  }
  var b = 0.0;
  if (p.use_bias != 0u) { b = bias[oc]; }
  let base = (n * p.cout + oc) * p.oh * p.ow;
  for (var r = 0u; r < MT; r++) {
    let oh = MT * ty + r;
    for (var c = 0u; c < MT; c++) {
      let ow = MT * tx + c;
      if (oh < p.oh && ow < p.ow) {
        var s = b;
        for (var k = 0u; k < AL; k++) { s += t[r * AL + k] * at(c, k); }
        dst[base + oh * p.ow + ow] = s;
      }
    }
  }
}

// dM[e, tile, oc] = (A dy Aᵀ)[e], dy the tile's MT×MT output gradient (zero where cropped).
// Invocation i = tile * Cout + oc.
@compute @workgroup_size(64)
fn output_adj(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.count) { return; }
  let tile = i / p.cout;
  let oc = i % p.cout;
  let tx = tile % p.tw;
  let ty = (tile / p.tw) % p.th;
  let n = tile / (p.tw * p.th);
  let base = (n * p.cout + oc) * p.oh * p.ow;
  var g: array<f32, 16>;
  for (var r = 0u; r < MT; r++) {
    let oh = MT * ty + r;
    for (var c = 0u; c < MT; c++) {
      let ow = MT * tx + c;
      let ok = oh < p.oh && ow < p.ow;
      let v = src[base + select(0u, oh * p.ow + ow, ok)];
      g[r * MT + c] = select(0.0, v, ok);
    }
  }
  var t: array<f32, 24>;  // A dy: AL×MT, (A dy)[a, c] = sum_r Aᵀ[r, a] dy[r, c]
  for (var a = 0u; a < AL; a++) {
    for (var c = 0u; c < MT; c++) {
      var s = 0.0;
      for (var r = 0u; r < MT; r++) { s += at(r, a) * g[r * MT + c]; }
      t[a * MT + c] = s;
    }
  }
  let stride = p.tiles * p.cout;
  for (var a = 0u; a < AL; a++) {
    for (var b = 0u; b < AL; b++) {
      var s = 0.0;
      for (var c = 0u; c < MT; c++) { s += t[a * MT + c] * at(c, b); }
      dst[(a * AL + b) * stride + i] = s;
    }
  }
}

// Winograd F(2×2, 3×3) transforms for a 3×3, stride-1 2-D convolution (Lavin & Gray 2015):
//   U = G g Gᵀ     per (ic, oc)              U [16, Cin, Cout]
//   V = Bᵀ d B     per (tile, ic)            V [16, P, Cin], P = N * th * tw tiles of 4×4 inputs
//   M[e] = V[e] @ U[e]                       (the batched GEMM, src/graph/ops/matmul.ts)
//   y = Aᵀ m A + bias per (tile, oc)         y [N, Cout, OH, OW], cropped at odd OH / OW
// e = 4 * row + col of the 4×4 transformed tile. Tile (ty, tx) covers output rows 2ty, 2ty + 1
// and reads input rows 2ty - pad_h .. 2ty - pad_h + 3 (zero outside the input: the padding and
// the overhang of a cropped last tile).
// Each transform is linear, so its backward is its adjoint (the transposed matrices):
//   filter_adj: dg = Gᵀ dU G;  output_adj: dm = A dy Aᵀ (dy zero where cropped);
//   input_adj:  dx[pixel] = sum over the (up to 2×2) tiles containing it of (B dV Bᵀ)[r, c],
//               a gather (one invocation per input element, no atomics).
// Bindings: 0 p (uniforms), 1 src, 2 bias (output_fwd only), 3 dst.
// Trick: in input_fwd / input_adj the channel is the fastest index, so the 16 V values of one
// invocation are read/written lane-contiguous (the big side), and in input_adj a workgroup's
// lanes share (h, w) almost always, so the tap position (r, c) and the zero-coefficient skips
// are uniform: ~4 of the 16 (a, b) terms per tile are non-zero.
struct Params {
  count: u32,  // invocations that do work
  cin: u32,
  cout: u32,
  tiles: u32,  // P = batch * th * tw
  th: u32,     // tile rows, ceil(OH / 2)
  tw: u32,     // tile columns, ceil(OW / 2)
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

// Bᵀ (4×4), G (4×3), Aᵀ (2×4), row-major.
const BT = array<f32, 16>(1.0, 0.0, -1.0, 0.0,  0.0, 1.0, 1.0, 0.0,  0.0, -1.0, 1.0, 0.0,  0.0, 1.0, 0.0, -1.0);
const GM = array<f32, 12>(1.0, 0.0, 0.0,  0.5, 0.5, 0.5,  0.5, -0.5, 0.5,  0.0, 0.0, 1.0);
const AT = array<f32, 8>(1.0, 1.0, 1.0, 0.0,  0.0, 1.0, -1.0, -1.0);

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
  var t: array<f32, 12>;  // G g: 4×3
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < 3u; c++) {
      t[r * 3u + c] = GM[r * 3u] * g[c] + GM[r * 3u + 1u] * g[3u + c] + GM[r * 3u + 2u] * g[6u + c];
    }
  }
  let cc = p.cin * p.cout;
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < 4u; c++) {
      dst[(r * 4u + c) * cc + i] = t[r * 3u] * GM[c * 3u] + t[r * 3u + 1u] * GM[c * 3u + 1u] + t[r * 3u + 2u] * GM[c * 3u + 2u];
    }
  }
}

// dw[oc, ic, :, :] = Gᵀ dU[:, ic, oc] G. Invocation i = ic * Cout + oc, dU's own order, so the 16
// reads are lane-contiguous and the 9 writes strided (~6× faster than the other way round on lavapipe).
@compute @workgroup_size(64)
fn filter_adj(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.count) { return; }
  let ic = i / p.cout;
  let oc = i % p.cout;
  let cc = p.cin * p.cout;
  let wb = (oc * p.cin + ic) * 9u;
  var u: array<f32, 16>;
  for (var e = 0u; e < 16u; e++) { u[e] = src[e * cc + i]; }
  var t: array<f32, 12>;  // Gᵀ dU: 3×4
  for (var r = 0u; r < 3u; r++) {
    for (var c = 0u; c < 4u; c++) {
      t[r * 4u + c] = GM[r] * u[c] + GM[3u + r] * u[4u + c] + GM[6u + r] * u[8u + c] + GM[9u + r] * u[12u + c];
    }
  }
  for (var r = 0u; r < 3u; r++) {
    for (var c = 0u; c < 3u; c++) {
      dst[wb + r * 3u + c] = t[r * 4u] * GM[c] + t[r * 4u + 1u] * GM[3u + c] + t[r * 4u + 2u] * GM[6u + c] + t[r * 4u + 3u] * GM[9u + c];
    }
  }
}

// V[e, tile, ic] = (Bᵀ d B)[e], d the tile's 4×4 input window. Invocation i = tile * Cin + ic.
@compute @workgroup_size(64)
fn input_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = index(gid, nwg);
  if (i >= p.count) { return; }
  let tile = i / p.cin;
  let ic = i % p.cin;
  let tx = tile % p.tw;
  let ty = (tile / p.tw) % p.th;
  let n = tile / (p.tw * p.th);
  let h0 = i32(2u * ty) - i32(p.pad_h);
  let w0 = i32(2u * tx) - i32(p.pad_w);
  let base = (n * p.cin + ic) * p.ih * p.iw;
  var d: array<f32, 16>;
  for (var r = 0u; r < 4u; r++) {
    let h = h0 + i32(r);
    for (var c = 0u; c < 4u; c++) {
      let w = w0 + i32(c);
      let ok = h >= 0 && h < i32(p.ih) && w >= 0 && w < i32(p.iw);
      // masked loads read element 0 of the plane (always in bounds)
      let v = src[base + select(0u, u32(h) * p.iw + u32(w), ok)];
      d[r * 4u + c] = select(0.0, v, ok);
    }
  }
  var t: array<f32, 16>;  // Bᵀ d
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < 4u; c++) {
      t[r * 4u + c] = BT[r * 4u] * d[c] + BT[r * 4u + 1u] * d[4u + c] + BT[r * 4u + 2u] * d[8u + c] + BT[r * 4u + 3u] * d[12u + c];
    }
  }
  let stride = p.tiles * p.cin;
  for (var r = 0u; r < 4u; r++) {
    for (var c = 0u; c < 4u; c++) {
      dst[(r * 4u + c) * stride + i] = t[r * 4u] * BT[c * 4u] + t[r * 4u + 1u] * BT[c * 4u + 1u] + t[r * 4u + 2u] * BT[c * 4u + 2u] + t[r * 4u + 3u] * BT[c * 4u + 3u];
    }
  }
}

// dx[n, ic, h, w] = sum over tiles (ty, tx) with 0 <= h + pad_h - 2ty <= 3 (same for w) of
// (B dV Bᵀ)[r, c] = sum_{a,b} Bᵀ[a, r] Bᵀ[b, c] dV[4a + b, tile, ic].
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
  // tiles whose window [2t, 2t + 3] holds hp: t in [ceil((hp - 3) / 2), floor(hp / 2)]
  let ty0 = select(0u, (hp - 2u) / 2u, hp >= 3u);
  let ty1 = min(p.th, hp / 2u + 1u);
  let tx0 = select(0u, (wp - 2u) / 2u, wp >= 3u);
  let tx1 = min(p.tw, wp / 2u + 1u);
  let stride = p.tiles * p.cin;
  var acc = 0.0;
  for (var ty = ty0; ty < ty1; ty++) {
    let r = hp - 2u * ty;
    for (var tx = tx0; tx < tx1; tx++) {
      let c = wp - 2u * tx;
      let vi = ((n * p.th + ty) * p.tw + tx) * p.cin + ic;
      for (var a = 0u; a < 4u; a++) {
        let ba = BT[a * 4u + r];
        if (ba == 0.0) { continue; }
        for (var b = 0u; b < 4u; b++) {
          let bb = BT[b * 4u + c];
          if (bb == 0.0) { continue; }
          acc += ba * bb * src[(a * 4u + b) * stride + vi];
        }
      }
    }
  }
  dst[((n * p.cin + ic) * p.ih + h) * p.iw + w] = acc;
}

// y[n, oc, 2ty + r, 2tx + c] = (Aᵀ m A)[r, c] + bias[oc] for the rows/columns inside the
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
  var m: array<f32, 16>;
  for (var e = 0u; e < 16u; e++) { m[e] = src[e * stride + i]; }
  var t: array<f32, 8>;  // Aᵀ m: 2×4
  for (var r = 0u; r < 2u; r++) {
    for (var c = 0u; c < 4u; c++) {
      t[r * 4u + c] = AT[r * 4u] * m[c] + AT[r * 4u + 1u] * m[4u + c] + AT[r * 4u + 2u] * m[8u + c] + AT[r * 4u + 3u] * m[12u + c];
    }
  }
  var b = 0.0;
  if (p.use_bias != 0u) { b = bias[oc]; }
  let base = (n * p.cout + oc) * p.oh * p.ow;
  for (var r = 0u; r < 2u; r++) {
    let oh = 2u * ty + r;
    for (var c = 0u; c < 2u; c++) {
      let ow = 2u * tx + c;
      if (oh < p.oh && ow < p.ow) {
        dst[base + oh * p.ow + ow] = t[r * 4u] * AT[c * 4u] + t[r * 4u + 1u] * AT[c * 4u + 1u] + t[r * 4u + 2u] * AT[c * 4u + 2u] + t[r * 4u + 3u] * AT[c * 4u + 3u] + b;
      }
    }
  }
}

// dM[e, tile, oc] = (A dy Aᵀ)[e], dy the tile's 2×2 output gradient (zero where cropped).
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
  var g: array<f32, 4>;
  for (var r = 0u; r < 2u; r++) {
    let oh = 2u * ty + r;
    for (var c = 0u; c < 2u; c++) {
      let ow = 2u * tx + c;
      let ok = oh < p.oh && ow < p.ow;
      let v = src[base + select(0u, oh * p.ow + ow, ok)];
      g[r * 2u + c] = select(0.0, v, ok);
    }
  }
  let stride = p.tiles * p.cout;
  for (var a = 0u; a < 4u; a++) {
    // (A dy)[a, :] = sum_r Aᵀ[r, a] dy[r, :]
    let t0 = AT[a] * g[0] + AT[4u + a] * g[2];
    let t1 = AT[a] * g[1] + AT[4u + a] * g[3];
    for (var b = 0u; b < 4u; b++) {
      dst[(a * 4u + b) * stride + i] = t0 * AT[b] + t1 * AT[4u + b];
    }
  }
}

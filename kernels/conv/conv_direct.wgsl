// Direct (gather) convolution over NCDHW volumes, 2D being D = 1:
//   y[n, oc, o] = bias[oc] + sum_{ic < cin_g, k} x[n, g*cin_g + ic, o*stride - pad + k*dil] * w[oc, ic, k]
// with g = oc / cout_g. Serves conv forward and conv-transpose's grad input (the transposed
// weight [Cin, Cout/g, k] is exactly a direct conv's [OC, IC/g, k]).
// Bindings: 0 p (uniforms), 1 x, 2 w, 3 bias (bound to w when use_bias = 0), 4 y.
// Element type: x, w, bias and y hold `elem` (f32 here; the loader's "f16" variant swaps the
// alias line, src/runtime/kernels.ts), loaded with f32(...) and accumulated in f32 either way.
// Trick: register blocking. Each invocation computes OCB output channels (override: 4, 8 or 16)
// of VOX consecutive outputs along W (override: 1, 4 or 8), so each weight read feeds VOX FMAs
// and each x value OCB FMAs. A workgroup shares one (n, channel block), so weight reads are
// uniform across it. On lavapipe the weight reads, not the per-lane x gathers, bound this loop
// (bench/NOTES.md roofline), so the tile's VOX is the main lever.
// W taps in the padding are masked, D and H taps use a valid range computed once per
// invocation, so the inner loop carries no branches.
// Two W-tap loops:
//  - KW = 0 (general): any kernel width, stride, dilation; per tap and input channel each of the
//    VOX outputs loads its own input value.
//  - KW > 0 (window): the kernel width is KW, the W stride SW and W dilation DW (all overrides),
//    so the VOX outputs' KW taps read one window of (VOX-1)*SW + (KW-1)*DW + 1 consecutive
//    inputs (at most MAXWIN), loaded once per (ic, kd, kh) instead of VOX * KW loads.
override OCB: u32 = 4u;  // output channels per invocation, a multiple of 4 (at most 16)
override VOX: u32 = 1u;  // consecutive outputs along W per invocation: 1, 4 or 8 (VOX * OCB <= 128)
override KW: u32 = 0u;   // kernel width of the window loop; 0 = general loop
override SW: u32 = 1u;   // W stride (window loop only)
override DW: u32 = 1u;   // W dilation (window loop only)
// #include "conv/conv_io"

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= p.batch * p.groups * p.nblk * p.tiles) { return; }
  let plane = wg / p.tiles;
  let cell = (wg % p.tiles) * 64u + lid.x;  // (od, oh, W tile)
  if (cell >= p.osz.x * p.osz.y * p.wtiles) { return; }
  let blk = plane % p.nblk;
  let g = (plane / p.nblk) % p.groups;
  let n = plane / (p.nblk * p.groups);
  let ocl = blk * OCB;
  let oc0 = g * p.cout_g + ocl;
  let nvalid = min(OCB, p.cout_g - ocl);

  let row = cell / p.wtiles;
  let od = row / p.osz.y;
  let oh = row % p.osz.y;
  let ow0 = (cell % p.wtiles) * VOX;
  let sd = i32(od * p.stride.x) - i32(p.pad.x);
  let sh = i32(oh * p.stride.y) - i32(p.pad.y);
  let dd = i32(p.dil.x);
  let dh = i32(p.dil.y);
  let dw = i32(p.dil.z);
  let rd = tap_range(sd, dd, i32(p.ksz.x), i32(p.isz.x));
  let rh = tap_range(sh, dh, i32(p.ksz.y), i32(p.isz.y));
  let iw_n = i32(p.isz.z);
  let sw0 = i32(ow0 * p.stride.z) - i32(p.pad.z);  // first input column of output ow0

  let kvol = p.ksz.w;
  let wstride = p.cin_g * kvol;  // between output channels
  // Channels past the group's last one re-read the block's first channel and are not stored.
  var wo: array<u32, 16>;
  for (var j = 0u; j < OCB; j++) { wo[j] = select(oc0, oc0 + j, j < nvalid) * wstride; }
  let ihw = p.isz.y * p.isz.z;
  let xn = (n * p.cin + g * p.cin_g) * p.isz.w;

  var acc: array<vec4<f32>, 32>;  // [r * OCB / 4 + j]
  for (var j = 0u; j < VOX * OCB / 4u; j++) { acc[j] = vec4<f32>(0.0); }
  if (KW > 0u) {
    // Window loop: column sw0 + t of the window, masked (to column 0) outside [0, W). Outputs
    // past the row's end read in-bounds windows too and are not stored.
    let nwin = (VOX - 1u) * SW + (KW - 1u) * DW + 1u;
    var col: array<u32, MAXWIN>;
    var ok: array<bool, MAXWIN>;
    for (var t = 0u; t < nwin; t++) {
      let iw = sw0 + i32(t);
      ok[t] = iw >= 0 && iw < iw_n;
      col[t] = u32(select(0, iw, ok[t]));
    }
    for (var kd = rd.x; kd < rd.y; kd++) {
      let xd = xn + u32(sd + kd * dd) * ihw;
      for (var kh = rh.x; kh < rh.y; kh++) {
        var xh = xd + u32(sh + kh * dh) * p.isz.z;
        var wi = (u32(kd) * p.ksz.y + u32(kh)) * KW;
        for (var ic = 0u; ic < p.cin_g; ic++) {
          var xv: array<f32, MAXWIN>;
          for (var t = 0u; t < nwin; t++) { xv[t] = select(0.0, f32(x[xh + col[t]]), ok[t]); }
          for (var k = 0u; k < KW; k++) {
            for (var j = 0u; j < OCB / 4u; j++) {
              let wv = vec4<f32>(f32(w[wo[4u * j] + wi + k]), f32(w[wo[4u * j + 1u] + wi + k]), f32(w[wo[4u * j + 2u] + wi + k]), f32(w[wo[4u * j + 3u] + wi + k]));
              for (var r = 0u; r < VOX; r++) { acc[r * (OCB / 4u) + j] += xv[r * SW + k * DW] * wv; }
            }
          }
          xh += p.isz.w;
          wi += kvol;
        }
      }
    }
  } else {
    for (var kd = rd.x; kd < rd.y; kd++) {
      let xd = xn + u32(sd + kd * dd) * ihw;
      for (var kh = rh.x; kh < rh.y; kh++) {
        let xh = xd + u32(sh + kh * dh) * p.isz.z;
        let kdh = (u32(kd) * p.ksz.y + u32(kh)) * p.ksz.z;
        for (var kw = 0u; kw < p.ksz.z; kw++) {
          // Per output: its input column for this tap, or (masked) the row's first column.
          var xi: array<u32, 8>;
          var ok: array<bool, 8>;
          for (var r = 0u; r < VOX; r++) {
            let iw = sw0 + i32(r * p.stride.z) + i32(kw) * dw;
            ok[r] = iw >= 0 && iw < iw_n && ow0 + r < p.osz.z;
            xi[r] = xh + u32(select(0, iw, ok[r]));
          }
          var wi = kdh + kw;
          for (var ic = 0u; ic < p.cin_g; ic++) {
            var xv: array<f32, 8>;
            for (var r = 0u; r < VOX; r++) { xv[r] = select(0.0, f32(x[xi[r]]), ok[r]); }
            for (var j = 0u; j < OCB / 4u; j++) {
              let wv = vec4<f32>(f32(w[wo[4u * j] + wi]), f32(w[wo[4u * j + 1u] + wi]), f32(w[wo[4u * j + 2u] + wi]), f32(w[wo[4u * j + 3u] + wi]));
              for (var r = 0u; r < VOX; r++) { acc[r * (OCB / 4u) + j] += xv[r] * wv; }
            }
            for (var r = 0u; r < VOX; r++) { xi[r] += p.isz.w; }
            wi += kvol;
          }
        }
      }
    }
  }
  let yrow = (n * p.cout + oc0) * p.osz.w + row * p.osz.z + ow0;
  for (var r = 0u; r < VOX; r++) {
    if (ow0 + r < p.osz.z) {
      for (var j = 0u; j < OCB; j++) {
        if (j < nvalid) {
          var v = acc[r * (OCB / 4u) + j / 4u][j % 4u];
          if (p.use_bias != 0u) { v += f32(bias[oc0 + j]); }
          y[yrow + r + j * p.osz.w] = elem(v);
        }
      }
    }
  }
}

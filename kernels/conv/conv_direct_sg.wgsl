enable subgroups;
// conv_direct.wgsl's window loop (KW > 0: stride-1 or small-stride W taps sharing one input
// window) with the weight reads spread over a subgroup; same formula, bindings, uniforms and
// overrides (OCB, VOX, KW, SW, DW) as conv_direct.wgsl, which stays the portable kernel and the
// one for every case this file does not take (general tap loop). Needs subgroups of at least 8
// lanes: the caller checks Device.subgroupSize.
// Why: on lavapipe a storage load at a lane-uniform address is still a per-lane gather, and the
// OCB weight loads per (ic, tap) bound conv_direct's loop (bench/NOTES.md). Here lane l loads
// channel l % 8 (and 8 + l % 8 when OCB = 16), one or two loads per tap, and subgroupBroadcast
// from lanes 0..7 hands every lane all OCB weights (a register extract on SIMD back ends).
// Uniformity: the broadcasts need every lane of the subgroup, so no lane leaves early (lanes
// past the last output compute output 0 and store nothing) and the D/H tap loops run the full
// kernel range with the padding taps masked (conv_direct runs only the valid range); a
// workgroup shares one channel block, so all lanes agree on the weights.
override OCB: u32 = 4u;  // output channels per invocation, a multiple of 4 (at most 16)
override VOX: u32 = 1u;  // consecutive outputs along W per invocation (VOX * OCB <= 128)
override KW: u32 = 1u;   // kernel width
override SW: u32 = 1u;   // W stride
override DW: u32 = 1u;   // W dilation
// #include "conv/conv_io"

// OCB/4 quads of weights: lane l holds a = channel l % 8, b = channel 8 + l % 8 of this tap.
fn spread(a: f32, b: f32) -> array<vec4<f32>, 4> {
  var q: array<vec4<f32>, 4>;
  q[0] = vec4<f32>(subgroupBroadcast(a, 0u), subgroupBroadcast(a, 1u), subgroupBroadcast(a, 2u), subgroupBroadcast(a, 3u));
  if (OCB > 4u) { q[1] = vec4<f32>(subgroupBroadcast(a, 4u), subgroupBroadcast(a, 5u), subgroupBroadcast(a, 6u), subgroupBroadcast(a, 7u)); }
  if (OCB > 8u) {
    q[2] = vec4<f32>(subgroupBroadcast(b, 0u), subgroupBroadcast(b, 1u), subgroupBroadcast(b, 2u), subgroupBroadcast(b, 3u));
    q[3] = vec4<f32>(subgroupBroadcast(b, 4u), subgroupBroadcast(b, 5u), subgroupBroadcast(b, 6u), subgroupBroadcast(b, 7u));
  }
  return q;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= p.batch * p.groups * p.nblk * p.tiles) { return; }
  let plane = wg / p.tiles;
  let cell0 = (wg % p.tiles) * 64u + lid.x;  // (od, oh, W tile)
  let live = cell0 < p.osz.x * p.osz.y * p.wtiles;
  let cell = select(0u, cell0, live);
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
  let rd = tap_range(sd, dd, i32(p.ksz.x), i32(p.isz.x));
  let rh = tap_range(sh, dh, i32(p.ksz.y), i32(p.isz.y));
  let iw_n = i32(p.isz.z);
  let sw0 = i32(ow0 * p.stride.z) - i32(p.pad.z);  // first input column of output ow0

  let kvol = p.ksz.w;
  let wstride = p.cin_g * kvol;  // between output channels
  // This lane's two weight channels (past the group's last one: the block's first, not stored)
  let la = sl % 8u;
  let woa = select(oc0, oc0 + la, la < nvalid) * wstride;
  let wob = select(oc0, oc0 + 8u + la, 8u + la < nvalid) * wstride;
  let ihw = p.isz.y * p.isz.z;
  let xn = (n * p.cin + g * p.cin_g) * p.isz.w;

  // Window column sw0 + t, masked (to column 0) outside [0, W). Outputs past the row's end read
  // in-bounds windows too and are not stored.
  let nwin = (VOX - 1u) * SW + (KW - 1u) * DW + 1u;
  var col: array<u32, MAXWIN>;
  var ok: array<bool, MAXWIN>;
  for (var t = 0u; t < nwin; t++) {
    let iw = sw0 + i32(t);
    ok[t] = iw >= 0 && iw < iw_n;
    col[t] = u32(select(0, iw, ok[t]));
  }
  var acc: array<vec4<f32>, 32>;  // [r * OCB / 4 + j]
  for (var j = 0u; j < VOX * OCB / 4u; j++) { acc[j] = vec4<f32>(0.0); }
  for (var kd = 0; kd < i32(p.ksz.x); kd++) {
    let okd = kd >= rd.x && kd < rd.y;
    let xd = xn + u32(select(0, sd + kd * dd, okd)) * ihw;
    for (var kh = 0; kh < i32(p.ksz.y); kh++) {
      let okh = okd && kh >= rh.x && kh < rh.y;
      var xh = xd + u32(select(0, sh + kh * dh, okh)) * p.isz.z;
      var wi = (u32(kd) * p.ksz.y + u32(kh)) * KW;
      for (var ic = 0u; ic < p.cin_g; ic++) {
        var xv: array<f32, MAXWIN>;
        for (var t = 0u; t < nwin; t++) { xv[t] = select(0.0, f32(x[xh + col[t]]), ok[t] && okh); }
        for (var k = 0u; k < KW; k++) {
          var b = 0.0;
          if (OCB > 8u) { b = f32(w[wob + wi + k]); }
          let q = spread(f32(w[woa + wi + k]), b);
          for (var j = 0u; j < OCB / 4u; j++) {
            for (var r = 0u; r < VOX; r++) { acc[r * (OCB / 4u) + j] += xv[r * SW + k * DW] * q[j]; }
          }
        }
        xh += p.isz.w;
        wi += kvol;
      }
    }
  }
  if (!live) { return; }
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

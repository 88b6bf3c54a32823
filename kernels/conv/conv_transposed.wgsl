// Transposed convolution as a gather over NCDHW volumes, 2D being D = 1:
//   y[n, oc, o] = bias[oc] + sum_{ic in group g, k, i : i*stride = o + pad - k*dil}
//                 x[n, ic, i] * w[ic, oc - g*cout_g, k]
// with g = oc / cout_g. Serves conv-transpose forward and conv's grad input (conv's weight
// [Cout, Cin/g, k] is exactly a transposed conv's [IC, OC/g, k]); every output element sums
// what reaches it, so no atomics are needed.
// Uniforms and bindings (conv_io.wgsl): 0 p, 1 x, 2 w, 3 bias (bound to w when use_bias = 0), 4 y;
// a W tile is (W phase, run of VOX outputs of that phase): wtiles = stride_w * ceil(ceil(W / stride_w) / VOX).
// Element type: x, w, bias and y hold `elem` (f32 here; the loader's "f16" variant swaps the
// alias line, src/runtime/kernels.ts), loaded with f32(...) and accumulated in f32 either way.
// Trick: per dim only taps with (o + pad - k*dil) divisible by stride contribute; they are
// periodic in k with period kstep = stride / gcd(stride, dil), so each loop starts at the first
// such tap and steps by kstep instead of testing every tap. OCB output channels per invocation
// (register blocking, uniform weight loads) as in conv_direct.wgsl, and with VOX = 4 also 4
// outputs along W taken at one W phase: o, o + s, o + 2s, o + 3s (s = W stride) share their taps
// and read 4 consecutive inputs, so each weight read feeds 4 FMAs per channel (the weight reads
// bound this loop on lavapipe: bench/NOTES.md). A W tile is (phase, run of VOX outputs of that
// phase); inputs outside the volume are masked, so the W loop carries no branches. The
// accumulators are one vec4 per channel over the VOX outputs, so OCB need not be a multiple of 4:
// a 1-channel output (a single-input-channel conv's grad x) wastes no lanes.
override OCB: u32 = 4u;  // output channels per invocation: 1 to 8
override VOX: u32 = 1u;  // outputs along W per invocation, one W phase: 1 to 4
override TPG: u32 = 1u;  // W taps per input window: 1 to 8 (> 1 only when dil divides stride)
// #include "conv/conv_io"

// First tap k whose input offset t0 - k*d is a non-negative multiple of s; k_max if none.
fn first_tap(t0: i32, s: i32, d: i32, kstep: i32, k_max: i32) -> i32 {
  for (var k = 0; k < min(kstep, k_max); k++) {
    let t = t0 - k * d;
    if (t < 0) { return k_max; }
    if (t % s == 0) { return k; }
  }
  return k_max;
}

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
  let wt = cell % p.wtiles;
  let s = vec3<i32>(p.stride.xyz);
  let dl = vec3<i32>(p.dil.xyz);
  let st = vec3<i32>(p.kstep.xyz);
  let kz = vec3<i32>(p.ksz.xyz);
  let iz = vec3<i32>(p.isz.xyz);
  // This tile's outputs: ow0 + r * s.z for r < VOX (those past the row's end are not stored).
  let phase = wt % p.stride.z;
  let ow0 = phase + (wt / p.stride.z) * VOX * p.stride.z;
  let td = i32(od + p.pad.x);
  let th = i32(oh + p.pad.y);
  let tw = i32(ow0 + p.pad.z);
  let kd0 = first_tap(td, s.x, dl.x, st.x, kz.x);
  let kh0 = first_tap(th, s.y, dl.y, st.y, kz.y);
  // W: the first tap whose offset tw - k*dil is a multiple of s (it may be negative: the later
  // outputs of the tile can still reach the volume), k in [0, kstep).
  var kw0 = kz.z;
  for (var k = 0; k < min(st.z, kz.z); k++) {
    if (((tw - k * dl.z) % s.z + s.z) % s.z == 0) { kw0 = k; break; }
  }

  let kvol = p.ksz.w;
  let wstride = p.cout_g * kvol;  // between input channels
  // Channels past the group's last one re-read the block's first channel and are not stored.
  var wo: array<u32, 8>;
  let wbase = g * p.cin_g * p.cout_g;
  for (var j = 0u; j < OCB; j++) { wo[j] = (wbase + ocl + select(0u, j, j < nvalid)) * kvol; }
  let ihw = p.isz.y * p.isz.z;
  let xn = (n * p.cin + g * p.cin_g) * p.isz.w;

  var acc: array<vec4<f32>, 8>;  // [j][r]: channel j, output r
  for (var j = 0u; j < OCB; j++) { acc[j] = vec4<f32>(0.0); }
  for (var kd = kd0; kd < kz.x; kd += st.x) {
    let ad = td - kd * dl.x;
    if (ad < 0) { break; }  // offsets only shrink as k grows
    let id = ad / s.x;
    if (id >= iz.x) { continue; }
    for (var kh = kh0; kh < kz.y; kh += st.y) {
      let ah = th - kh * dl.y;
      if (ah < 0) { break; }
      let ih = ah / s.y;
      if (ih >= iz.y) { continue; }
      let xh = xn + u32(id) * ihw + u32(ih) * p.isz.z;
      let kdh = (u32(kd) * p.ksz.y + u32(kh)) * p.ksz.z;
      // This phase's W taps kw0 + t * kstep, in groups of TPG: with TPG > 1 (only when the tap
      // step moves the input by exactly one column, dil | stride) tap t of a group reads the
      // window of VOX + TPG - 1 inputs shifted by -t, so each input load serves up to TPG taps.
      for (var kwa = kw0; kwa < kz.z; kwa += i32(TPG) * st.z) {
        let iwa = (tw - kwa * dl.z) / s.z;  // exact: a multiple of s.z by the phase
        let wlo = iwa - i32(TPG - 1u);      // window element e holds input column wlo + e
        if (wlo >= iz.z || iwa + i32(VOX) <= 0) { continue; }
        var xi: array<u32, 11>;
        var ok: array<bool, 11>;
        for (var e = 0u; e < VOX + TPG - 1u; e++) {
          let iw = wlo + i32(e);
          ok[e] = iw >= 0 && iw < iz.z;
          xi[e] = xh + u32(select(0, iw, ok[e]));
        }
        var wi: array<u32, 8>;
        var tok: array<bool, 8>;
        for (var t = 0u; t < TPG; t++) {
          let kw = kwa + i32(t) * st.z;
          tok[t] = kw < kz.z;
          wi[t] = kdh + u32(select(kwa, kw, tok[t]));
        }
        for (var ic = 0u; ic < p.cin_g; ic++) {
          var xw: array<f32, 14>;  // VOX + TPG - 1 loaded, the rest 0
          for (var e = 0u; e < 14u; e++) { xw[e] = 0.0; }
          for (var e = 0u; e < VOX + TPG - 1u; e++) { xw[e] = select(0.0, f32(x[xi[e]]), ok[e]); }
          for (var t = 0u; t < TPG; t++) {
            let b = TPG - 1u - t;  // output r of tap t reads element b + r
            let xv = vec4<f32>(xw[b], xw[b + 1u], xw[b + 2u], xw[b + 3u]);
            for (var j = 0u; j < OCB; j++) { acc[j] += xv * select(0.0, f32(w[wo[j] + wi[t]]), tok[t]); }
          }
          for (var e = 0u; e < VOX + TPG - 1u; e++) { xi[e] += p.isz.w; }
          for (var t = 0u; t < TPG; t++) { wi[t] += wstride; }
        }
      }
    }
  }
  let yrow = (n * p.cout + oc0) * p.osz.w + row * p.osz.z;
  for (var r = 0u; r < VOX; r++) {
    let ow = ow0 + r * p.stride.z;
    if (ow < p.osz.z) {
      for (var j = 0u; j < OCB; j++) {
        if (j < nvalid) {
          var v = acc[j][r];
          if (p.use_bias != 0u) { v += f32(bias[oc0 + j]); }
          y[yrow + ow + j * p.osz.w] = elem(v);
        }
      }
    }
  }
}

// Transposed convolution as a gather over NCDHW volumes, 2D being D = 1:
//   y[n, oc, o] = bias[oc] + sum_{ic in group g, k, i : i*stride = o + pad - k*dil}
//                 x[n, ic, i] * w[ic, oc - g*cout_g, k]
// with g = oc / cout_g. Serves conv-transpose forward and conv's grad input (conv's weight
// [Cout, Cin/g, k] is exactly a transposed conv's [IC, OC/g, k]); every output element sums
// what reaches it, so no atomics are needed.
// Bindings: 0 p (uniforms), 1 x, 2 w, 3 bias (bound to w when use_bias = 0), 4 y.
// Element type: x, w, bias and y hold `elem` (f32 here; the loader's "f16" variant swaps the
// alias line, src/runtime/kernels.ts), loaded with f32(...) and accumulated in f32 either way.
// Trick: per dim only taps with (o + pad - k*dil) divisible by stride contribute; they are
// periodic in k with period kstep = stride / gcd(stride, dil), so each loop starts at the first
// such tap and steps by kstep instead of testing every tap. OCB output channels per invocation
// (register blocking, uniform weight loads) as in conv_direct.wgsl.
override OCB: u32 = 4u;  // output channels per invocation, a multiple of 4 (at most 16)
alias elem = f32;
struct Params {
  batch: u32,
  cin: u32,     // channels of x
  cout: u32,    // channels of y
  cin_g: u32,   // cin / groups
  cout_g: u32,  // cout / groups
  groups: u32,
  nblk: u32,    // ceil(cout_g / OCB)
  tiles: u32,   // ceil(out positions / 64)
  use_bias: u32,
  isz: vec4<u32>,  // input D, H, W, D*H*W
  osz: vec4<u32>,  // output D, H, W, D*H*W
  ksz: vec4<u32>,  // kernel D, H, W, D*H*W
  stride: vec4<u32>,
  pad: vec4<u32>,
  dil: vec4<u32>,
  kstep: vec4<u32>,  // stride / gcd(stride, dil) per dim
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<elem>;
@group(0) @binding(2) var<storage, read> w: array<elem>;
@group(0) @binding(3) var<storage, read> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> y: array<elem>;

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
  let pos = (wg % p.tiles) * 64u + lid.x;
  if (pos >= p.osz.w) { return; }
  let blk = plane % p.nblk;
  let g = (plane / p.nblk) % p.groups;
  let n = plane / (p.nblk * p.groups);
  let ocl = blk * OCB;
  let oc0 = g * p.cout_g + ocl;
  let nvalid = min(OCB, p.cout_g - ocl);

  let ohw = p.osz.y * p.osz.z;
  let od = pos / ohw;
  let oh = (pos % ohw) / p.osz.z;
  let ow = pos % p.osz.z;
  let td = i32(od + p.pad.x);
  let th = i32(oh + p.pad.y);
  let tw = i32(ow + p.pad.z);
  let s = vec3<i32>(p.stride.xyz);
  let dl = vec3<i32>(p.dil.xyz);
  let st = vec3<i32>(p.kstep.xyz);
  let kz = vec3<i32>(p.ksz.xyz);
  let iz = vec3<i32>(p.isz.xyz);
  let kd0 = first_tap(td, s.x, dl.x, st.x, kz.x);
  let kh0 = first_tap(th, s.y, dl.y, st.y, kz.y);
  let kw0 = first_tap(tw, s.z, dl.z, st.z, kz.z);

  let kvol = p.ksz.w;
  let wstride = p.cout_g * kvol;  // between input channels
  // Channels past the group's last one re-read the block's first channel and are not stored.
  var wo: array<u32, 16>;
  let wbase = g * p.cin_g * p.cout_g;
  for (var j = 0u; j < OCB; j++) { wo[j] = (wbase + ocl + select(0u, j, j < nvalid)) * kvol; }
  let ihw = p.isz.y * p.isz.z;
  let xn = (n * p.cin + g * p.cin_g) * p.isz.w;

  var acc: array<vec4<f32>, 4>;
  for (var j = 0u; j < OCB / 4u; j++) { acc[j] = vec4<f32>(0.0); }
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
      for (var kw = kw0; kw < kz.z; kw += st.z) {
        let aw = tw - kw * dl.z;
        if (aw < 0) { break; }
        let iw = aw / s.z;
        if (iw >= iz.z) { continue; }
        var xi = xh + u32(iw);
        var wi = kdh + u32(kw);
        for (var ic = 0u; ic < p.cin_g; ic++) {
          let xv = f32(x[xi]);
          for (var j = 0u; j < OCB / 4u; j++) {
            acc[j] += xv * vec4<f32>(f32(w[wo[4u * j] + wi]), f32(w[wo[4u * j + 1u] + wi]), f32(w[wo[4u * j + 2u] + wi]), f32(w[wo[4u * j + 3u] + wi]));
          }
          xi += p.isz.w;
          wi += wstride;
        }
      }
    }
  }
  let yi = (n * p.cout + oc0) * p.osz.w + pos;
  for (var j = 0u; j < OCB; j++) {
    if (j < nvalid) {
      var v = acc[j / 4u][j % 4u];
      if (p.use_bias != 0u) { v += f32(bias[oc0 + j]); }
      y[yi + j * p.osz.w] = elem(v);
    }
  }
}

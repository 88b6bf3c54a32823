// Multi-scale deformable attention (3D) backward, fused: one invocation per sample
// (n, q, h, l, p) reduces over the Dh channels to write
//   grad_attn[s] = sum_c dy[n,q,h*Dh+c] * sample_c                              (WANT_ATTN)
//   grad_loc[s]  = attn[s] * sum_c dy * d(sample_c)/d(pos) * (W, H, D)          (WANT_LOC)
// and, for grad_value (WANT_VALUE), the sample's key and geometry: sample_keys[s] = the padded
// base voxel of its 2×2×2 corner cell, (n*Sp + pad_start[l] + ((z0+1)*(H+1) + y0+1)*(W+1) + x0+1)*nH + h
// (num_keys when no corner is inside), sample_geo[s] = (frac x, frac y, frac z, attn). The
// samples are stably sorted by key, and ms_deform_attn3d_value_grad.wgsl gathers, for each value
// row and corner k, the samples whose base is the row's voxel minus k's offset: no float
// atomics, a fixed summation order, and one sort entry per sample instead of eight.
// Bindings: 0 uniforms (as ms_deform_attn3d.wgsl + num_keys, pad_starts, Sp), 1 value, 2 loc,
// 3 attn, 4 dy [N, Lq, nH*Dh], 5 grad_loc, 6 grad_attn, 7 sample_keys, 8 sample_geo ([samples]).
// Trick: an out-of-range sample is moved to voxel coordinate -2, where all 8 corners fail the
// bounds test, so it still writes its (empty) key and zero gradients on the common path.
override WANT_VALUE: bool = true;
override WANT_LOC: bool = true;
override WANT_ATTN: bool = true;
struct Params { total: u32, Lq: u32, S: u32, nH: u32, Dh: u32, nL: u32, nP: u32, num_keys: u32,
                levels: array<vec4<u32>, 16>, pad_starts: array<vec4<u32>, 4>, Sp: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> value: array<f32>;
@group(0) @binding(2) var<storage, read> loc: array<f32>;
@group(0) @binding(3) var<storage, read> attn: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_loc: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_attn: array<f32>;
@group(0) @binding(7) var<storage, read_write> sample_keys: array<u32>;
@group(0) @binding(8) var<storage, read_write> sample_geo: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = gid.x + gid.y * nwg.x * 64u;
  if (s >= p.total) { return; }
  let l = (s / p.nP) % p.nL;
  let qh = s / (p.nP * p.nL); // (n * Lq + q) * nH + h
  let h = qh % p.nH;
  let n = qh / p.nH / p.Lq;
  let lv = p.levels[l];
  let size = vec3<i32>(i32(lv.z), i32(lv.y), i32(lv.x)); // (W, H, D) to match loc's (x, y, z)
  let fsize = vec3<f32>(size);
  let a = attn[s];
  var pos = vec3<f32>(loc[3u * s], loc[3u * s + 1u], loc[3u * s + 2u]) * fsize - 0.5;
  if (!(all(pos >= vec3<f32>(-1.0)) && all(pos <= fsize))) { pos = vec3<f32>(-2.0); }
  let f0 = floor(pos);
  let fr = pos - f0;
  let c0 = vec3<i32>(f0);
  if (WANT_VALUE) {
    // base corner in [-1, size - 1] on every axis ⇔ some corner is inside
    let ok = all(c0 >= vec3<i32>(-1)) && all(c0 < size);
    let ps = vec3<u32>(size + vec3<i32>(1));
    let b = vec3<u32>(select(vec3<i32>(0), c0 + vec3<i32>(1), ok));
    let pstart = p.pad_starts[l / 4u][l % 4u];
    let key = (n * p.Sp + pstart + (b.z * ps.y + b.y) * ps.x + b.x) * p.nH + h;
    sample_keys[s] = select(p.num_keys, key, ok);
    sample_geo[s] = vec4<f32>(fr, a);
  }
  var g = vec3<f32>(0.0);
  var ga = 0.0;
  if (WANT_LOC || WANT_ATTN) {
    // dots[k] = sum_c dy_c * value_c at corner k; channel loop outside the corner loop, so each
    // dy value is read once for the 8 corners (corners outside read row 0 and are discarded)
    var rows: array<u32, 8>;
    var any_inside = false;
    for (var k = 0u; k < 8u; k++) {
      let cc = c0 + vec3<i32>(vec3<u32>(k & 1u, (k >> 1u) & 1u, k >> 2u));
      let inside = all(cc >= vec3<i32>(0)) && all(cc < size);
      any_inside = any_inside || inside;
      rows[k] = select(0u, (n * p.S + lv.w + (u32(cc.z) * lv.y + u32(cc.y)) * lv.z + u32(cc.x)) * p.nH + h, inside) * p.Dh;
    }
    var dots: array<f32, 8>;
    for (var k = 0u; k < 8u; k++) { dots[k] = 0.0; }
    if (any_inside) {
      for (var c = 0u; c < p.Dh; c++) {
        let d = dy[qh * p.Dh + c];
        for (var k = 0u; k < 8u; k++) { dots[k] += d * value[rows[k] + c]; }
      }
    }
    for (var k = 0u; k < 8u; k++) {
      let bit = vec3<u32>(k & 1u, (k >> 1u) & 1u, k >> 2u);
      let one = bit == vec3<u32>(1u);
      let cc = c0 + vec3<i32>(bit);
      if (all(cc >= vec3<i32>(0)) && all(cc < size)) {
        let w3 = select(1.0 - fr, fr, one);
        let dot = dots[k];
        ga += (w3.x * w3.y * w3.z) * dot;
        let sg = select(vec3<f32>(-1.0), vec3<f32>(1.0), one);
        g += dot * sg * vec3<f32>(w3.y * w3.z, w3.x * w3.z, w3.x * w3.y);
      }
    }
  }
  if (WANT_ATTN) { grad_attn[s] = ga; }
  if (WANT_LOC) {
    let gl = a * g * fsize; // d(pos)/d(loc) = size
    grad_loc[3u * s] = gl.x;
    grad_loc[3u * s + 1u] = gl.y;
    grad_loc[3u * s + 2u] = gl.z;
  }
}

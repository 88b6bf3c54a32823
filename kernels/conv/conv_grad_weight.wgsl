// Weight gradient of a convolution, first stage: partial sums over chunks of the reduction.
//   dw[a, b, k] = sum_{n, o} A[n, a, o] * B[n, g*bc_g + b, o*stride - pad + k*dil],  g = a / ac_g
// Conv: A = dy, B = x (dw [Cout, Cin/g, k]). Conv-transpose: A = x, B = dy (dw [Cin, Cout/g, k]).
// The reduction over (n, o) runs over "rows" (n, od, oh) of A, each a contiguous run of ow.
// Bindings: 0 p (uniforms), 1 a, 2 b, 3 part ([nchunks, wn]; the weight gradient itself when
// nchunks = 1, otherwise summed by conv_reduce.wgsl's sum_chunks).
// Trick: one invocation per (chunk, weight element), so a large input is spread over many
// invocations rather than serialised into one per weight; the ow range that lands inside B
// depends only on kw, so it is computed once and the inner loop has no bounds checks.
struct Params {
  ac: u32,      // channels of A
  bc: u32,      // channels of B
  ac_g: u32,    // ac / groups
  bc_g: u32,    // bc / groups
  wn: u32,      // weight elements: ac * bc_g * kvol
  nchunks: u32,
  rows_per_chunk: u32,
  rows: u32,    // batch * A's D * A's H
  asz: vec4<u32>,  // A spatial D, H, W, D*H*W
  bsz: vec4<u32>,  // B spatial D, H, W, D*H*W
  ksz: vec4<u32>,  // kernel D, H, W, D*H*W
  stride: vec4<u32>,
  pad: vec4<u32>,
  dil: vec4<u32>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

fn ceil_div(num: i32, den: i32) -> i32 {
  if (num <= 0) { return -((-num) / den); }
  return (num + den - 1) / den;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.wn * p.nchunks) { return; }
  let widx = i % p.wn;
  let chunk = i / p.wn;
  let kvol = p.ksz.w;
  let k = widx % kvol;
  let bl = (widx / kvol) % p.bc_g;
  let ach = widx / (kvol * p.bc_g);
  let bch = (ach / p.ac_g) * p.bc_g + bl;
  let kw = i32(k % p.ksz.z);
  let kh = i32((k / p.ksz.z) % p.ksz.y);
  let kd = i32(k / (p.ksz.z * p.ksz.y));

  let s = vec3<i32>(p.stride.xyz);
  let off = vec3<i32>(kd * i32(p.dil.x), kh * i32(p.dil.y), kw * i32(p.dil.z)) - vec3<i32>(p.pad.xyz);
  // ow with 0 <= ow*s + off.z < B's W, and ow < A's W
  let ow_lo = max(0, ceil_div(-off.z, s.z));
  var ow_hi = 0;
  if (i32(p.bsz.z) - 1 - off.z >= 0) { ow_hi = min(i32(p.asz.z), (i32(p.bsz.z) - 1 - off.z) / s.z + 1); }

  let r0 = chunk * p.rows_per_chunk;
  let r1 = min(p.rows, r0 + p.rows_per_chunk);
  let adh = p.asz.x * p.asz.y;
  var acc = 0.0;
  if (ow_lo < ow_hi) {
    for (var r = r0; r < r1; r++) {
      let n = r / adh;
      let od = (r % adh) / p.asz.y;
      let oh = r % p.asz.y;
      let id = i32(od) * s.x + off.x;
      let ih = i32(oh) * s.y + off.y;
      if (id < 0 || id >= i32(p.bsz.x) || ih < 0 || ih >= i32(p.bsz.y)) { continue; }
      var ai = (n * p.ac + ach) * p.asz.w + (od * p.asz.y + oh) * p.asz.z + u32(ow_lo);
      var bi = (n * p.bc + bch) * p.bsz.w + (u32(id) * p.bsz.y + u32(ih)) * p.bsz.z
               + u32(ow_lo * s.z + off.z);
      for (var ow = ow_lo; ow < ow_hi; ow++) {
        acc += a[ai] * b[bi];
        ai += 1u;
        bi += u32(s.z);
      }
    }
  }
  part[chunk * p.wn + widx] = acc;
}

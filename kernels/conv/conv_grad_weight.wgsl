// Weight gradient of a convolution, first stage: partial sums over chunks of the reduction.
//   dw[a, b, k] = sum_{n, o} A[n, a, o] * B[n, g*bc_g + b, o*stride - pad + k*dil],  g = a / ac_g
// Conv: A = dy, B = x (dw [Cout, Cin/g, k]). Conv-transpose: A = x, B = dy (dw [Cin, Cout/g, k]).
// The reduction over (n, o) runs over "rows" (n, od, oh) of A, each a contiguous run of ow.
// Bindings: 0 p (uniforms), 1 a, 2 b, 3 part ([nchunks, wn]; the weight gradient itself when
// nchunks = 1, otherwise summed by conv_reduce.wgsl's sum_chunks).
// Trick: the same register blocking as conv_direct.wgsl. A workgroup owns one chunk of rows, one
// block of OCB A-channels and 64 consecutive (b, k) columns, one per invocation; every A value it
// reads is at a workgroup-uniform address (one scalar load broadcast to all lanes on SIMD back
// ends), and each per-lane B load feeds OCB FMAs. B positions outside the volume (padding) are
// masked, not branched, so the ow loop stays uniform.
override OCB: u32 = 4u;  // A channels per invocation, a multiple of 4 (at most 16)

struct Params {
  ac: u32,      // channels of A
  bc: u32,      // channels of B
  ac_g: u32,    // ac / groups
  bc_g: u32,    // bc / groups
  groups: u32,
  nblk: u32,    // ceil(ac_g / OCB)
  ctiles: u32,  // ceil(bc_g * kvol / 64)
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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= p.nchunks * p.groups * p.nblk * p.ctiles) { return; }
  let kvol = p.ksz.w;
  let col = (wg % p.ctiles) * 64u + lid.x;
  if (col >= p.bc_g * kvol) { return; }
  let blk = (wg / p.ctiles) % p.nblk;
  let g = (wg / (p.ctiles * p.nblk)) % p.groups;
  let chunk = wg / (p.ctiles * p.nblk * p.groups);
  let al = blk * OCB;
  let a0 = g * p.ac_g + al;
  let nvalid = min(OCB, p.ac_g - al);
  // A channels past the group's last one re-read the block's first channel and are not stored.
  var ao: array<u32, 16>;
  for (var j = 0u; j < OCB; j++) { ao[j] = select(a0, a0 + j, j < nvalid) * p.asz.w; }

  let bl = col / kvol;
  let k = col % kvol;
  let bch = g * p.bc_g + bl;
  let kw = i32(k % p.ksz.z);
  let kh = i32((k / p.ksz.z) % p.ksz.y);
  let kd = i32(k / (p.ksz.z * p.ksz.y));
  let s = vec3<i32>(p.stride.xyz);
  let off = vec3<i32>(kd * i32(p.dil.x), kh * i32(p.dil.y), kw * i32(p.dil.z)) - vec3<i32>(p.pad.xyz);
  let bz = vec3<i32>(p.bsz.xyz);

  var acc: array<vec4<f32>, 4>;
  for (var j = 0u; j < OCB / 4u; j++) { acc[j] = vec4<f32>(0.0); }
  let r0 = chunk * p.rows_per_chunk;
  let r1 = min(p.rows, r0 + p.rows_per_chunk);
  let adh = p.asz.x * p.asz.y;
  for (var r = r0; r < r1; r++) {
    let n = r / adh;
    let od = (r % adh) / p.asz.y;
    let oh = r % p.asz.y;
    let id = i32(od) * s.x + off.x;
    let ih = i32(oh) * s.y + off.y;
    let row_ok = id >= 0 && id < bz.x && ih >= 0 && ih < bz.y;
    let brow = i32((n * p.bc + bch) * p.bsz.w) + (id * bz.y + ih) * bz.z;
    let arow = n * p.ac * p.asz.w + (od * p.asz.y + oh) * p.asz.z;
    var iw = off.z;
    for (var ow = 0u; ow < p.asz.z; ow++) {
      let ok = row_ok && iw >= 0 && iw < bz.z;
      let bv = select(0.0, b[u32(select(0, brow + iw, ok))], ok);
      let ai = arow + ow;
      for (var j = 0u; j < OCB / 4u; j++) {
        acc[j] += bv * vec4<f32>(a[ao[4u * j] + ai], a[ao[4u * j + 1u] + ai], a[ao[4u * j + 2u] + ai], a[ao[4u * j + 3u] + ai]);
      }
      iw += s.z;
    }
  }
  let pi = chunk * p.wn + a0 * p.bc_g * kvol + col;
  for (var j = 0u; j < OCB; j++) {
    if (j < nvalid) { part[pi + j * p.bc_g * kvol] = acc[j / 4u][j % 4u]; }
  }
}

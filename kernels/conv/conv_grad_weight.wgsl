// Weight gradient of a convolution, first stage: partial sums over chunks of the reduction.
//   dw[a, b, k] = sum_{n, o} A[n, a, o] * B[n, g*bc_g + b, o*stride - pad + k*dil],  g = a / ac_g
// Conv: A = dy, B = x (dw [Cout, Cin/g, k]). Conv-transpose: A = x, B = dy (dw [Cin, Cout/g, k]).
// The reduction over (n, o) runs over "rows" (n, od, oh) of A, each a contiguous run of ow.
// Bindings: 0 p (uniforms), 1 a, 2 b, 3 part ([nchunks, wn]; the weight gradient itself when
// nchunks = 1, otherwise summed by conv_reduce.wgsl's sum_chunks).
// Trick: the same register blocking as conv_direct.wgsl. A workgroup owns one chunk of rows, one
// block of OCB A-channels and 64 · CPI consecutive (b, k) columns, CPI per invocation; every A
// value it reads is at a workgroup-uniform address (one scalar load broadcast to all lanes on SIMD
// back ends) and feeds CPI × OCB FMAs, each per-lane B load feeds OCB. (On lavapipe the A reads
// bound the loop, bench/NOTES.md; CPI = 4 quarters them per FMA, which matters most when
// Cin · taps is small and A has few channels.) B positions outside the volume (padding) are
// masked, not branched, so the ow loop stays uniform.
override OCB: u32 = 4u;  // A channels per invocation, a multiple of 4 (at most 16)
override CPI: u32 = 1u;  // (b, k) columns per invocation: 1 to 4 (CPI * OCB <= 32)

struct Params {
  ac: u32,      // channels of A
  bc: u32,      // channels of B
  ac_g: u32,    // ac / groups
  bc_g: u32,    // bc / groups
  groups: u32,
  nblk: u32,    // ceil(ac_g / OCB)
  ctiles: u32,  // ceil(bc_g * kvol / (64 * CPI))
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
  let ncol = p.bc_g * kvol;
  let col0 = ((wg % p.ctiles) * 64u + lid.x) * CPI;
  if (col0 >= ncol) { return; }
  let blk = (wg / p.ctiles) % p.nblk;
  let g = (wg / (p.ctiles * p.nblk)) % p.groups;
  let chunk = wg / (p.ctiles * p.nblk * p.groups);
  let al = blk * OCB;
  let a0 = g * p.ac_g + al;
  let nvalid = min(OCB, p.ac_g - al);
  // A channels past the group's last one re-read the block's first channel and are not stored.
  var ao: array<u32, 16>;
  for (var j = 0u; j < OCB; j++) { ao[j] = select(a0, a0 + j, j < nvalid) * p.asz.w; }

  let s = vec3<i32>(p.stride.xyz);
  let bz = vec3<i32>(p.bsz.xyz);
  // Per column c: its B offset (d, h, w) from the output position times stride, and its B row
  // offset; columns past the last one repeat col0 and are masked.
  var off: array<vec3<i32>, 4>;
  var boff: array<i32, 4>;
  var cok: array<bool, 4>;
  for (var c = 0u; c < CPI; c++) {
    cok[c] = col0 + c < ncol;
    let col = select(col0, col0 + c, cok[c]);
    let bl = col / kvol;
    let k = col % kvol;
    let kw = i32(k % p.ksz.z);
    let kh = i32((k / p.ksz.z) % p.ksz.y);
    let kd = i32(k / (p.ksz.z * p.ksz.y));
    off[c] = vec3<i32>(kd * i32(p.dil.x), kh * i32(p.dil.y), kw * i32(p.dil.z)) - vec3<i32>(p.pad.xyz);
    boff[c] = i32((g * p.bc_g + bl) * p.bsz.w) + (off[c].x * bz.y + off[c].y) * bz.z;
  }

  var acc: array<vec4<f32>, 8>;  // [c * OCB / 4 + j]
  for (var j = 0u; j < CPI * OCB / 4u; j++) { acc[j] = vec4<f32>(0.0); }
  let r0 = chunk * p.rows_per_chunk;
  let r1 = min(p.rows, r0 + p.rows_per_chunk);
  let adh = p.asz.x * p.asz.y;
  for (var r = r0; r < r1; r++) {
    let n = r / adh;
    let od = (r % adh) / p.asz.y;
    let oh = r % p.asz.y;
    let sd = i32(od) * s.x;
    let sh = i32(oh) * s.y;
    let nrow = i32(n * p.bc * p.bsz.w) + (sd * bz.y + sh) * bz.z;
    var rok: array<bool, 4>;
    var brow: array<i32, 4>;
    for (var c = 0u; c < CPI; c++) {
      let id = sd + off[c].x;
      let ih = sh + off[c].y;
      rok[c] = cok[c] && id >= 0 && id < bz.x && ih >= 0 && ih < bz.y;
      brow[c] = nrow + boff[c];
    }
    let arow = n * p.ac * p.asz.w + (od * p.asz.y + oh) * p.asz.z;
    var sw = 0;
    for (var ow = 0u; ow < p.asz.z; ow++) {
      var bv: array<f32, 4>;
      for (var c = 0u; c < CPI; c++) {
        let iw = sw + off[c].z;
        let ok = rok[c] && iw >= 0 && iw < bz.z;
        bv[c] = select(0.0, b[u32(select(0, brow[c] + iw, ok))], ok);
      }
      let ai = arow + ow;
      for (var j = 0u; j < OCB / 4u; j++) {
        let av = vec4<f32>(a[ao[4u * j] + ai], a[ao[4u * j + 1u] + ai], a[ao[4u * j + 2u] + ai], a[ao[4u * j + 3u] + ai]);
        for (var c = 0u; c < CPI; c++) { acc[c * (OCB / 4u) + j] += bv[c] * av; }
      }
      sw += s.z;
    }
  }
  let pi = chunk * p.wn + a0 * ncol + col0;
  for (var c = 0u; c < CPI; c++) {
    if (cok[c]) {
      for (var j = 0u; j < OCB; j++) {
        if (j < nvalid) { part[pi + c + j * ncol] = acc[c * (OCB / 4u) + j / 4u][j % 4u]; }
      }
    }
  }
}

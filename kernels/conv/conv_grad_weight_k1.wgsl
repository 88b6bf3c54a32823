// Weight gradient of a 1×1×1 convolution (stride 1, no padding), as a split-K GEMM, first stage:
//   dw[a, b] = sum_{n, v} A[n, a, v] * B[n, g*bc_g + b, v],  g = a / ac_g,  v over the volume
// Conv: A = dy, B = x (dw [Cout, Cin/g]). Bindings: 0 p (uniforms), 1 a, 2 b (both read as vec4:
// the volume is a multiple of 4), 3 part ([rows, wn] partial sums, rows = batch * vchunks * 64;
// summed by conv_reduce.wgsl's sum_chunks, or the weight gradient itself when that is one row).
// Trick: every lane owns a TA × TB tile of dw and walks its own vec4 columns of the volume, the 64
// lanes of a workgroup interleaved (lane l reads vec4 v0 + l + 64 j), so each A and B load is a
// contiguous vec4 across lanes and feeds TB (or TA) dot products; no barrier, no atomics: each
// lane writes its tile's partial sums to its own row and the second pass folds the rows. Channels
// past a group's last one re-read a valid channel and are not stored.
override TA: u32 = 8u;     // A channels per lane (1..8)
override TB: u32 = 16u;    // B channels per lane (1..16)

struct Params {
  ac: u32,       // channels of A
  bc: u32,       // channels of B
  ac_g: u32,     // ac / groups
  bc_g: u32,     // bc / groups
  groups: u32,
  ta_blk: u32,   // ceil(ac_g / TA)
  tb_blk: u32,   // ceil(bc_g / TB)
  wn: u32,       // ac * bc_g
  vol4: u32,     // volume / 4
  steps: u32,    // vec4 columns per lane (one lane's share of a workgroup's chunk)
  vchunks: u32,  // ceil(vol4 / (64 * steps))
  batch: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let wg = wid.x + wid.y * nwg.x;
  let tiles = p.groups * p.ta_blk * p.tb_blk;
  if (wg >= tiles * p.vchunks * p.batch) { return; }
  let tile = wg % tiles;
  let vc = (wg / tiles) % p.vchunks;
  let n = wg / (tiles * p.vchunks);
  let tb = tile % p.tb_blk;
  let ta = (tile / p.tb_blk) % p.ta_blk;
  let g = tile / (p.tb_blk * p.ta_blk);
  let al = ta * TA;
  let bl = tb * TB;
  var ao: array<u32, 8>;
  var bo: array<u32, 16>;
  for (var i = 0u; i < TA; i++) { ao[i] = (n * p.ac + g * p.ac_g + min(al + i, p.ac_g - 1u)) * p.vol4; }
  for (var j = 0u; j < TB; j++) { bo[j] = (n * p.bc + g * p.bc_g + min(bl + j, p.bc_g - 1u)) * p.vol4; }

  var acc: array<f32, 128>;  // [i * TB + j]
  for (var k = 0u; k < TA * TB; k++) { acc[k] = 0.0; }
  let v0 = vc * 64u * p.steps + lid.x;
  let v1 = min(p.vol4, v0 + 64u * p.steps);
  for (var v = v0; v < v1; v += 64u) {
    var bv: array<vec4<f32>, 16>;
    for (var j = 0u; j < TB; j++) { bv[j] = b[bo[j] + v]; }
    for (var i = 0u; i < TA; i++) {
      let av = a[ao[i] + v];
      for (var j = 0u; j < TB; j++) { acc[i * TB + j] += dot(av, bv[j]); }
    }
  }
  let row = (n * p.vchunks + vc) * 64u + lid.x;
  for (var i = 0u; i < TA; i++) {
    for (var j = 0u; j < TB; j++) {
      if (al + i < p.ac_g && bl + j < p.bc_g) {
        part[row * p.wn + (g * p.ac_g + al + i) * p.bc_g + bl + j] = acc[i * TB + j];
      }
    }
  }
}


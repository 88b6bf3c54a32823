// Reductions for convolution gradients.
//   bias_partial: part[chunk, c] = sum over the chunk's slice of (n, spatial) of dy[n, c, :]
//   sum_chunks:   dst[j] = sum_{chunk < nchunks} src[chunk * count + j]  (second stage of the
//                 weight and bias gradients)
// Bindings: 0 p (uniforms), 1 src (dy, or partial sums), 2 dst (partial sums, or the gradient).
// Trick: a chunk is a range of the flattened (n, spatial) index; it is walked one batch item at
// a time so the inner loop is a contiguous run with no division per element.
struct Params {
  count: u32,      // channels (bias_partial) or elements per chunk row (sum_chunks)
  spatial: u32,    // D*H*W of dy (bias_partial)
  total: u32,      // batch * spatial (bias_partial)
  chunk_len: u32,  // elements of (n, spatial) per chunk (bias_partial)
  nchunks: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn bias_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.count * p.nchunks) { return; }
  let c = i % p.count;
  let chunk = i / p.count;
  var r = chunk * p.chunk_len;
  let r1 = min(p.total, r + p.chunk_len);
  var acc = 0.0;
  while (r < r1) {
    let n = r / p.spatial;
    let s0 = r % p.spatial;
    let s1 = min(p.spatial, s0 + (r1 - r));
    let base = (n * p.count + c) * p.spatial;
    for (var s = s0; s < s1; s++) { acc += src[base + s]; }
    r += s1 - s0;
  }
  dst[chunk * p.count + c] = acc;
}

@compute @workgroup_size(64)
fn sum_chunks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = gid.x + gid.y * nwg.x * 64u;
  if (j >= p.count) { return; }
  var acc = 0.0;
  for (var c = 0u; c < p.nchunks; c++) { acc += src[c * p.count + j]; }
  dst[j] = acc;
}

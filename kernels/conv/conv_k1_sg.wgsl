enable subgroups;

// Pointwise (1×1×1, stride 1, no padding) convolution as a batched, grouped GEMM, with the weight
// reads spread over a subgroup (subgroups of at least 8 lanes; the caller checks
// Device.subgroupSize; without them conv_direct.wgsl runs these convs):
//   y[n, g*cout_g + o, v] = bias[g*cout_g + o] + sum_{c < cin_g} w[g*cout_g + o, c] * x[n, g*cin_g + c, v]
// Used for the conv forward and, with the flipped (channel-swapped) weight, its input gradient.
// Bindings: 0 p (uniforms), 1 x, 2 w, 3 bias (any buffer when use_bias = 0), 4 y; x, w and y read
// as vec4: the volume and cin_g are multiples of 4.
// Subgroup: lane l loads the weight vec4 of output channel l % 8 (and 8 + l % 8 when TCO > 8),
// subgroupBroadcast hands each to the whole subgroup: 2 loads instead of TCO per 4 input
// channels. No lane leaves early (the broadcasts need all of them): the column loop runs `steps`
// times for every lane, columns past the end are clamped and not stored.
// Trick: a lane owns one vec4 column of the volume at a time (contiguous across the workgroup's
// lanes) and TCO output channels; per 4 input channels it loads 4 x vec4s and 1–2 weight vec4s
// for 16 · TCO FMAs. A grid-stride loop walks `steps` columns per lane, so few workgroups launch.
// (Two columns per lane at once, 32 vec4 accumulators, measured slower on lavapipe.)
override TCO: u32 = 16u;  // output channels per lane: 8 or 16

struct Params {
  cin: u32,
  cout: u32,
  cin_g: u32,
  cout_g: u32,
  groups: u32,
  co_blk: u32,    // ceil(cout_g / TCO)
  vol4: u32,      // volume / 4
  steps: u32,     // vec4 columns per lane (64 per workgroup and step)
  vchunks: u32,   // ceil(vol4 / (64 · steps))
  batch: u32,
  use_bias: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= p.batch * p.groups * p.co_blk * p.vchunks) { return; }
  let vc = wg % p.vchunks;
  let blk = (wg / p.vchunks) % p.co_blk;
  let g = (wg / (p.vchunks * p.co_blk)) % p.groups;
  let n = wg / (p.vchunks * p.co_blk * p.groups);
  let o0 = blk * TCO;
  let ci4 = p.cin_g / 4u;
  // output channels past the group's last one re-read its last weight row and are not stored
  let oa = g * p.cout_g + min(o0 + sl % 8u, p.cout_g - 1u);
  let ob = g * p.cout_g + min(o0 + 8u + sl % 8u, p.cout_g - 1u);
  var bv: array<f32, 16>;
  for (var j = 0u; j < TCO; j++) {
    let o = g * p.cout_g + min(o0 + j, p.cout_g - 1u);
    bv[j] = select(0.0, bias[select(0u, o, p.use_bias != 0u)], p.use_bias != 0u);
  }
  let xb = (n * p.cin + g * p.cin_g) * p.vol4;
  let yb = (n * p.cout + g * p.cout_g + o0) * p.vol4;
  let nvalid = min(TCO, p.cout_g - o0);
  let base = vc * 64u * p.steps + lid.x;
  for (var s = 0u; s < p.steps; s++) {
    let v = base + s * 64u;
    // a column past the end re-reads the last one and is not stored
    let vk = min(v, p.vol4 - 1u);
    var acc: array<vec4<f32>, 16>;
    for (var j = 0u; j < TCO; j++) { acc[j] = vec4<f32>(0.0); }
    for (var c = 0u; c < ci4; c++) {
      let xo = xb + 4u * c * p.vol4 + vk;
      let x0 = x[xo];
      let x1 = x[xo + p.vol4];
      let x2 = x[xo + 2u * p.vol4];
      let x3 = x[xo + 3u * p.vol4];
      let wa = w[oa * ci4 + c];
      var wq: array<vec4<f32>, 16>;
      wq[0] = subgroupBroadcast(wa, 0u);
      wq[1] = subgroupBroadcast(wa, 1u);
      wq[2] = subgroupBroadcast(wa, 2u);
      wq[3] = subgroupBroadcast(wa, 3u);
      wq[4] = subgroupBroadcast(wa, 4u);
      wq[5] = subgroupBroadcast(wa, 5u);
      wq[6] = subgroupBroadcast(wa, 6u);
      wq[7] = subgroupBroadcast(wa, 7u);
      if (TCO > 8u) {
        let wb = w[ob * ci4 + c];
        wq[8] = subgroupBroadcast(wb, 0u);
        wq[9] = subgroupBroadcast(wb, 1u);
        wq[10] = subgroupBroadcast(wb, 2u);
        wq[11] = subgroupBroadcast(wb, 3u);
        wq[12] = subgroupBroadcast(wb, 4u);
        wq[13] = subgroupBroadcast(wb, 5u);
        wq[14] = subgroupBroadcast(wb, 6u);
        wq[15] = subgroupBroadcast(wb, 7u);
      }
      for (var j = 0u; j < TCO; j++) {
        let wv = wq[j];
        acc[j] += wv.x * x0 + wv.y * x1 + wv.z * x2 + wv.w * x3;
      }
    }
    if (v < p.vol4) {
      for (var j = 0u; j < TCO; j++) {
        if (j < nvalid) { y[yb + j * p.vol4 + v] = acc[j] + bv[j]; }
      }
    }
  }
}

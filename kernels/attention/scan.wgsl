// In-place exclusive prefix sum of u32, in tiles of 1024 (128 invocations x 8 elements).
// `scan_tiles` scans each tile and writes its total to sums[tile]; the caller scans `sums` the
// same way (recursively) and `add_sums` adds each tile's offset back.
// Bindings: 0 uniforms, 1 data [n], 2 sums [tiles].
// Trick: each invocation sums 8 consecutive elements serially first, so the workgroup-wide
// Hillis-Steele scan runs over 128 partial sums instead of 1024 elements.
struct Params { n: u32, tiles: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> data: array<u32>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;

var<workgroup> part: array<u32, 128>;

@compute @workgroup_size(128)
fn scan_tiles(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let tile = wid.x + wid.y * nwg.x;
  if (tile >= p.tiles) { return; }
  let base = tile * 1024u + t * 8u;
  var before: array<u32, 8>;
  var s = 0u;
  for (var k = 0u; k < 8u; k++) {
    before[k] = s;
    if (base + k < p.n) { s += data[base + k]; }
  }
  part[t] = s;
  for (var off = 1u; off < 128u; off <<= 1u) {
    workgroupBarrier();
    var v = part[t];
    if (t >= off) { v += part[t - off]; }
    workgroupBarrier();
    part[t] = v;
  }
  let excl = part[t] - s;
  for (var k = 0u; k < 8u; k++) {
    if (base + k < p.n) { data[base + k] = excl + before[k]; }
  }
  if (t == 127u) { sums[tile] = part[t]; }
}

@compute @workgroup_size(128)
fn add_sums(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let tile = wid.x + wid.y * nwg.x;
  if (tile >= p.tiles) { return; }
  let add = sums[tile];
  for (var k = 0u; k < 8u; k++) {
    let j = tile * 1024u + k * 128u + t;
    if (j < p.n) { data[j] += add; }
  }
}

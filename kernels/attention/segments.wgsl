// Segment bounds of a sorted key array: offsets[k] = first index whose key >= k, for k in
// [0, num_keys], so the entries of key k are [offsets[k], offsets[k+1]).
// Bindings: 0 uniforms, 1 sorted_keys [n], 2 offsets [num_keys + 1].
// Trick: a binary search per key (log n reads) rather than a scan over boundaries, so keys
// with no entries need no special case.
struct Params { n: u32, num_keys: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sorted_keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = gid.x + gid.y * nwg.x * 64u;
  if (k > p.num_keys) { return; }
  var lo = 0u;
  var hi = p.n;
  while (lo < hi) {
    let mid = lo + (hi - lo) / 2u;
    if (sorted_keys[mid] < k) { lo = mid + 1u; } else { hi = mid; }
  }
  offsets[k] = lo;
}

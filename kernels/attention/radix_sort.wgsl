// Stable LSD radix sort of (key, value) u32 pairs, 4 key bits per pass, one block of 1024
// entries per workgroup (128 invocations x 8 consecutive entries). A pass is: `histogram`
// (digit counts per block) → exclusive scan of `hist` (scan.wgsl) → `scatter` (each entry to
// hist[digit, block] + its rank among the block's earlier entries with that digit). Stability
// makes the sorted order, and so every gather over it, deterministic. On the first pass
// (identity = 1) the value of entry i is i itself.
// Bindings: 0 uniforms, 1 keys_in, 2 vals_in (unread when identity = 1), 3 hist [16 * blocks]
// (digit-major, so its scan is the global output offset of each (digit, block)), 4 keys_out,
// 5 vals_out.
// Trick: all 16 digit counts of an invocation are packed as 16-bit lanes in two vec4<u32>
// (a block never counts past 1024, and adding packed lanes never carries), so the stable
// in-block rank of every digit comes from ONE workgroup prefix sum of that pair.
struct Params { n: u32, blocks: u32, shift: u32, identity: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> keys_in: array<u32>;
@group(0) @binding(2) var<storage, read> vals_in: array<u32>;
@group(0) @binding(3) var<storage, read_write> hist: array<u32>;
@group(0) @binding(4) var<storage, read_write> keys_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> vals_out: array<u32>;

const WG: u32 = 128u;
const ITEMS: u32 = 8u;
const BLOCK: u32 = 1024u; // WG * ITEMS

// digits 0-7 count in lo_s, 8-15 in hi_s; digit d is lane (d & 1) of component (d & 7) >> 1
var<workgroup> lo_s: array<vec4<u32>, WG>;
var<workgroup> hi_s: array<vec4<u32>, WG>;

fn digit(key: u32) -> u32 { return (key >> p.shift) & 15u; }

fn one_hot(d: u32) -> vec4<u32> {
  var v = vec4<u32>(0u);
  v[(d & 7u) >> 1u] = 1u << ((d & 1u) * 16u);
  return v;
}

fn lane(lo: vec4<u32>, hi: vec4<u32>, d: u32) -> u32 {
  let v = select(lo, hi, d >= 8u);
  return (v[(d & 7u) >> 1u] >> ((d & 1u) * 16u)) & 0xffffu;
}

// Inclusive Hillis-Steele scan of (lo_s, hi_s) over the workgroup; ends with a barrier.
fn scan_counts(t: u32) {
  for (var off = 1u; off < WG; off <<= 1u) {
    workgroupBarrier();
    var lo = lo_s[t];
    var hi = hi_s[t];
    if (t >= off) {
      lo += lo_s[t - off];
      hi += hi_s[t - off];
    }
    workgroupBarrier();
    lo_s[t] = lo;
    hi_s[t] = hi;
  }
  workgroupBarrier();
}

@compute @workgroup_size(WG)
fn histogram(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= p.blocks) { return; }
  let base = b * BLOCK + t * ITEMS;
  var lo = vec4<u32>(0u);
  var hi = vec4<u32>(0u);
  for (var j = 0u; j < ITEMS; j++) {
    if (base + j < p.n) {
      let d = digit(keys_in[base + j]);
      if (d < 8u) { lo += one_hot(d); } else { hi += one_hot(d); }
    }
  }
  lo_s[t] = lo;
  hi_s[t] = hi;
  scan_counts(t);
  if (t < 16u) { hist[t * p.blocks + b] = lane(lo_s[WG - 1u], hi_s[WG - 1u], t); }
}

@compute @workgroup_size(WG)
fn scatter(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= p.blocks) { return; }
  let base = b * BLOCK + t * ITEMS;
  var keys: array<u32, ITEMS>;
  var lo = vec4<u32>(0u);
  var hi = vec4<u32>(0u);
  for (var j = 0u; j < ITEMS; j++) {
    if (base + j < p.n) {
      keys[j] = keys_in[base + j];
      let d = digit(keys[j]);
      if (d < 8u) { lo += one_hot(d); } else { hi += one_hot(d); }
    }
  }
  lo_s[t] = lo;
  hi_s[t] = hi;
  scan_counts(t);
  // exclusive prefix = what earlier invocations of the block counted; then walk own entries
  var run_lo = lo_s[t] - lo;
  var run_hi = hi_s[t] - hi;
  for (var j = 0u; j < ITEMS; j++) {
    let i = base + j;
    if (i < p.n) {
      let d = digit(keys[j]);
      let at = hist[d * p.blocks + b] + lane(run_lo, run_hi, d);
      if (d < 8u) { run_lo += one_hot(d); } else { run_hi += one_hot(d); }
      keys_out[at] = keys[j];
      vals_out[at] = select(vals_in[i], i, p.identity == 1u);
    }
  }
}

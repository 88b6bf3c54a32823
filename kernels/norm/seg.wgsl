// Instance and batch norm on segment-walking workgroups (see seg_body.wgsl), reducing through
// workgroup memory: a tree of WG/2, WG/4, ... with a barrier per level. The portable path;
// seg_subgroup.wgsl replaces the trees with subgroup shuffles where it can.
// #include "norm/seg_body"

var<workgroup> sn: array<f32, WG>;
var<workgroup> sm: array<f32, WG>;
var<workgroup> sq: array<f32, WG>;

// Merge of one Acc per invocation; every invocation gets the result.
fn tree_acc(lid: u32, a: Acc) -> Acc {
  workgroupBarrier(); // earlier readers of sn/sm/sq are done
  sn[lid] = a.n;
  sm[lid] = a.m;
  sq[lid] = a.q;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      let r = merge(Acc(sn[lid], sm[lid], sq[lid]), Acc(sn[lid + k], sm[lid + k], sq[lid + k]));
      sn[lid] = r.n;
      sm[lid] = r.m;
      sq[lid] = r.q;
    }
    workgroupBarrier();
  }
  return Acc(sn[0], sm[0], sq[0]);
}

// Sum of one vec2 per invocation (in sm, sq); every invocation gets the result.
fn tree2(lid: u32, v: vec2<f32>) -> vec2<f32> {
  workgroupBarrier();
  sm[lid] = v.x;
  sq[lid] = v.y;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      sm[lid] += sm[lid + k];
      sq[lid] += sq[lid + k];
    }
    workgroupBarrier();
  }
  return vec2<f32>(sm[0], sq[0]);
}


enable subgroups;
// Instance and batch norm on segment-walking workgroups (see seg_body.wgsl) where a workgroup is
// exactly one subgroup (WG = the device's fixed subgroup size, set by the caller): the
// reductions are butterflies of subgroupShuffleXor / subgroupAdd, with no workgroup memory and no
// barrier (on llvmpipe a barrier splits the shader into coroutines; each chunk's tree cost 8).
// #include "norm/seg_body"

// Merge of one Acc per invocation (Chan's update, pairwise); every invocation gets the result.
fn tree_acc(lid: u32, a0: Acc) -> Acc {
  var a = a0;
  for (var k = 1u; k < WG; k <<= 1u) {
    a = merge(a, Acc(subgroupShuffleXor(a.n, k), subgroupShuffleXor(a.m, k), subgroupShuffleXor(a.q, k)));
  }
  return a;
}

// Sum of one vec2 per invocation; every invocation gets the result.
fn tree2(lid: u32, v: vec2<f32>) -> vec2<f32> {
  return subgroupAdd(v);
}

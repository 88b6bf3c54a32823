enable subgroups;
// Layer norm rows (see rows_body.wgsl) with one subgroup per row: the caller sets WG = TPR = the
// device's fixed subgroup size, so a workgroup is one subgroup and one team, and the team
// reductions are subgroup shuffles with no workgroup memory and no barrier (on llvmpipe a barrier
// splits the shader into coroutines and the merge through workgroup memory cost more than the
// row's loads: bench/NOTES.md).
// #include "norm/rows_body"

// Chan's update over the subgroup, pairwise (butterfly): every lane gets the row's (mean, var).
fn team_stats(slot: u32, lid: u32, a0: Acc) -> vec2<f32> {
  var a = a0;
  for (var k = 1u; k < TPR; k <<= 1u) {
    a = merge(a, Acc(subgroupShuffleXor(a.n, k), subgroupShuffleXor(a.m, k), subgroupShuffleXor(a.q, k)));
  }
  return vec2<f32>(a.m, a.q / a.n);
}

fn team_sum2(slot: u32, lid: u32, v: vec2<f32>) -> vec2<f32> {
  return subgroupAdd(v);
}

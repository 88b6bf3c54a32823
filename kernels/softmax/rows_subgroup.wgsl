enable subgroups;
// Softmax rows (see rows_body.wgsl) with one subgroup per row: the caller sets WG = TPR = the
// device's fixed subgroup size, so a workgroup is one subgroup and one team, and the team
// reductions are subgroup shuffles with no workgroup memory and no barrier (bench/NOTES.md).
// #include "softmax/rows_body"

// Butterfly merge of every lane's (max, sum of exp(v - max)); a lane without values has sum 0.
fn team_softmax(slot: u32, lid: u32, ms0: vec2<f32>) -> vec2<f32> {
  var ms = ms0;
  for (var k = 1u; k < TPR; k <<= 1u) {
    let o = vec2<f32>(subgroupShuffleXor(ms.x, k), subgroupShuffleXor(ms.y, k));
    let m = max(ms.x, o.x);
    var s = 0.0;
    if (ms.y > 0.0) { s += ms.y * exp(ms.x - m); } // sum 0: no values (the max may be -inf)
    if (o.y > 0.0) { s += o.y * exp(o.x - m); }
    ms = vec2<f32>(m, s);
  }
  return ms;
}

fn team_sum(slot: u32, lid: u32, v: f32) -> f32 {
  return subgroupAdd(v);
}

fn team_max(slot: u32, lid: u32, v: f32) -> f32 {
  return subgroupMax(v);
}

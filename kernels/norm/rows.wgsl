// Layer norm rows (see rows_body.wgsl) reducing through workgroup memory: WG / TPR teams per
// workgroup, one barrier per row. The portable path; rows_subgroup.wgsl uses subgroup shuffles.
// #include "norm/rows_body"

// Two slots per invocation, alternated between consecutive rows, so the barrier of one row also
// separates the reads of the row before it from the writes of the row after it.
var<workgroup> red: array<vec3<f32>, 2u * WG>;

// (mean, biased variance) of the team's row from its TPR (count, mean, M2) triples.
fn team_stats(slot: u32, lid: u32, a: Acc) -> vec2<f32> {
  red[slot * WG + lid] = vec3<f32>(a.n, a.m, a.q);
  workgroupBarrier();
  let o = slot * WG + (lid / TPR) * TPR;
  var r = Acc(0.0, 0.0, 0.0);
  for (var k = 0u; k < TPR; k++) {
    let e = red[o + k];
    r = merge(r, Acc(e.x, e.y, e.z));
  }
  return vec2<f32>(r.m, r.q / r.n);
}

fn team_sum2(slot: u32, lid: u32, v: vec2<f32>) -> vec2<f32> {
  red[slot * WG + lid] = vec3<f32>(v, 0.0);
  workgroupBarrier();
  let o = slot * WG + (lid / TPR) * TPR;
  var s = vec2<f32>(0.0);
  for (var k = 0u; k < TPR; k++) { s += red[o + k].xy; }
  return s;
}


// Softmax rows (see rows_body.wgsl) reducing through workgroup memory: WG / TPR teams per
// workgroup, one barrier per row. The portable path; rows_subgroup.wgsl uses subgroup shuffles.
// #include "softmax/rows_body"

// Two slots per invocation, alternated between consecutive rows, so the barrier of one row also
// separates the reads of the row before it from the writes of the row after it.
var<workgroup> red: array<vec2<f32>, 2u * WG>;

// Merge of the team's (max, sum of exp(v - max)) pairs.
fn team_softmax(slot: u32, lid: u32, ms: vec2<f32>) -> vec2<f32> {
  red[slot * WG + lid] = ms;
  workgroupBarrier();
  let o = slot * WG + (lid / TPR) * TPR;
  var m = red[o].x;
  for (var k = 1u; k < TPR; k++) { m = max(m, red[o + k].x); }
  var s = 0.0;
  for (var k = 0u; k < TPR; k++) {
    let e = red[o + k];
    if (e.y > 0.0) { s += e.y * exp(e.x - m); } // e.y == 0: no values (e.x may be -inf)
  }
  return vec2<f32>(m, s);
}

fn team_sum(slot: u32, lid: u32, v: f32) -> f32 {
  red[slot * WG + lid] = vec2<f32>(v, 0.0);
  workgroupBarrier();
  let o = slot * WG + (lid / TPR) * TPR;
  var s = 0.0;
  for (var k = 0u; k < TPR; k++) { s += red[o + k].x; }
  return s;
}

fn team_max(slot: u32, lid: u32, v: f32) -> f32 {
  red[slot * WG + lid] = vec2<f32>(v, 0.0);
  workgroupBarrier();
  let o = slot * WG + (lid / TPR) * TPR;
  var m = red[o].x;
  for (var k = 1u; k < TPR; k++) { m = max(m, red[o + k].x); }
  return m;
}

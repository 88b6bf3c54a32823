enable subgroups;
// Transposed conv with kernel == stride (one tap per output voxel), the weight reads spread over
// a subgroup of at least 8 lanes (the caller checks Device.subgroupSize; conv_transposed_ks.wgsl
// is the portable twin); body, bindings and overrides: conv_transposed_ks_body.wgsl.
// Why: on lavapipe a lane-uniform storage load is still a per-lane gather, so the OCB * KW weight
// loads per input channel would cost as much as OCB * KW vec4 x loads. Here lane l loads weights
// l % 8, 8 + l % 8, ... (at most 4 loads) and subgroupBroadcast from lanes 0..7 hands every lane
// all of them. Uniformity: every lane of a workgroup shares the weights and runs the whole input
// channel loop (lanes past the last column compute column 0 and store nothing).
// Entries: main4 (vec4 x and y, input W % 4 == 0) and main (any W).
// #include "conv/conv_transposed_ks_body"

fn spread8(v: f32) -> array<f32, 8> {
  return array<f32, 8>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u),
                       subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
}

fn taps(wb: u32, nvalid: u32, cstride: u32, sl: u32) -> array<f32, 32> {
  var t: array<f32, 32>;
  let la = sl % 8u;
  for (var r = 0u; r < (OCB * KW + 7u) / 8u; r++) {
    let j = 8u * r + la;
    let co = j / KW;
    let ok = j < OCB * KW && co < nvalid;
    let s = spread8(w[wb + select(0u, co * cstride + j % KW, ok)]);
    for (var k = 0u; k < 8u; k++) { t[8u * r + k] = s[k]; }
  }
  return t;
}

@compute @workgroup_size(64)
fn main4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
  run4(wid, lid, nwg, sl);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
  run1(wid, lid, nwg, sl);
}

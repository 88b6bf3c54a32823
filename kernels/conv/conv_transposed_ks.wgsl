// Transposed conv with kernel == stride (one tap per output voxel), portable twin of
// conv_transposed_ks_sg.wgsl: the body, bindings and overrides are conv_transposed_ks_body.wgsl;
// here the OCB * KW weights of each input channel are plain (lane-uniform) loads.
// Entries: main4 (vec4 x and y, input W % 4 == 0) and main (any W).
// #include "conv/conv_transposed_ks_body"

fn taps(wb: u32, nvalid: u32, cstride: u32, sl: u32) -> array<f32, 32> {
  var t: array<f32, 32>;
  for (var j = 0u; j < OCB * KW; j++) {
    let co = j / KW;
    t[j] = w[wb + select(0u, co, co < nvalid) * cstride + j % KW];
  }
  return t;
}

@compute @workgroup_size(64)
fn main4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
  run4(wid, lid, nwg, 0u);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  run1(wid, lid, nwg, 0u);
}

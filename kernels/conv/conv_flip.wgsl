// A conv weight [Cout, Cin/g, k] as the weight of its input-gradient conv: [Cin, Cout/g, k] with
// every kernel axis reversed, wf[g*cin_g + i, o, t] = w[g*cout_g + o, i, kvol - 1 - t]. With it a
// stride-1 conv's input gradient is an ordinary conv_direct of dy (padding dil*(k-1) - pad),
// which reuses conv_direct's register tiling instead of the transposed gather.
// Bindings: 0 p (uniforms), 1 w, 2 wf.
struct Params {
  cin_g: u32,
  cout_g: u32,
  groups: u32,
  kvol: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> wf: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = gid.x + gid.y * nwg.x * 64u;
  if (j >= p.groups * p.cin_g * p.cout_g * p.kvol) { return; }
  let t = j % p.kvol;
  let o = (j / p.kvol) % p.cout_g;
  let ci = j / (p.kvol * p.cout_g);  // g * cin_g + i
  let g = ci / p.cin_g;
  let i = ci % p.cin_g;
  wf[j] = w[((g * p.cout_g + o) * p.cin_g + i) * p.kvol + (p.kvol - 1u - t)];
}

// Ceiling probe: memory only. y = x as vec4 (16 bytes read + 16 written per invocation).
// Bindings: 0 uniforms, 1 x, 2 y.
struct Params { n4: u32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n4) { return; }
  y[i] = x[i];
}

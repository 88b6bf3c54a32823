// y = a + b, same shape (gradient accumulation). Bindings: 0 uniforms, 1 a, 2 b, 3 y;
// 4 a4, 5 b4, 6 y4: the same as vec4 arrays for main4, which grid-strides over a bulk of a
// multiple of 64 elements (n counts vec4s there); main takes the scalar tail.
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  y[i] = a[i] + b[i];
}

@compute @workgroup_size(64)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  for (var i = gid.x + gid.y * nwg.x * 64u; i < p.n; i += stride) {
    y4[i] = a4[i] + b4[i];
  }
}

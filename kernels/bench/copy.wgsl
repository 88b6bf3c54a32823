// Ceiling probe: memory only. y = x as vec4 (16 bytes read + 16 written per element step), over
// a grid-striding loop. On llvmpipe a workgroup launch costs far more than a vector copy, yet too
// few workgroups stride so far apart that the host's prefetch stops helping: about 16 vectors per
// invocation was the fastest (bench/common.ts COPY_PER_LANE; sweep in bench/NOTES.md).
// EXP (override) writes exp(x) instead: the same copy with one exp per value, the floor of any
// kernel that must take an exp of each value it moves (softmax).
// Bindings: 0 uniforms, 1 x, 2 y.
override EXP: bool = false;
struct Params { n4: u32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  for (var i = gid.x + gid.y * nwg.x * 64u; i < u.n4; i += stride) {
    if (EXP) { y[i] = exp(x[i]); } else { y[i] = x[i]; }
  }
}

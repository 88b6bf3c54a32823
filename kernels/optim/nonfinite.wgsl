// Non-finite gradient flags for the training loop, without a readback per parameter: one dispatch
// per gradient sets flags[u.index] to 1 when any element is NaN or ±Inf; the caller clears the
// flags first and reads them back once per step (together with the loss it copies in after them).
// Trick: the test is on the bit pattern (exponent bits all ones), not `x != x` or comparisons with
// infinity, because WGSL lets a compiler assume floats are finite and fold those away.
// Only non-finite elements touch the atomic, so a healthy step costs one read per element.
// Bindings: 0 uniforms, 1 grad (f32 data read as bits), 2 flags (u32, read_write, atomic).
struct Params { n: u32, index: u32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> grad: array<u32>;
@group(0) @binding(2) var<storage, read_write> flags: array<atomic<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  if ((grad[i] & 0x7f800000u) == 0x7f800000u) { atomicOr(&flags[u.index], 1u); }
}

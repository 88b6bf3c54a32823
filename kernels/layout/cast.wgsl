// Element-type casts between f32 and the kernel's element type `elem`:
//   to_elem:   h[i] = elem(clamp(a[i], -p.limit, p.limit))   (f32 → elem)
//   from_elem: f[i] = f32(hr[i])                              (elem → f32, exact)
// The file is written for elem = f32 (a plain copy); its "f16" variant (kernels.ts: the loader
// prepends `enable f16;` and swaps the alias line below) is the f32 ↔ f16 cast of
// src/graph/ops/cast.ts. WGSL leaves an out-of-range f32 → f16 conversion indeterminate, so to_elem
// saturates at `limit` (65504, f16's largest finite value; the op passes it) and the result is
// always one of the two f16 values nearest the input (WGSL allows either: error < 1 ulp).
// Bindings: 0 p (uniforms), 1 a (f32 in), 2 h (elem out), 3 hr (elem in), 4 f (f32 out); each
// entry point binds only its own two.
alias elem = f32;
struct Params {
  n: u32,      // elements
  limit: f32,  // largest finite magnitude of elem
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> h: array<elem>;
@group(0) @binding(3) var<storage, read> hr: array<elem>;
@group(0) @binding(4) var<storage, read_write> f: array<f32>;

@compute @workgroup_size(64)
fn to_elem(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  h[i] = elem(clamp(a[i], -p.limit, p.limit));
}

@compute @workgroup_size(64)
fn from_elem(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  f[i] = f32(hr[i]);
}

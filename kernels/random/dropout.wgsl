// Dropout and channel-wise spatial dropout: y = x · keep / (1 − p), keep = hash(seed, unit) ≥ p.
// unit = element index / inner: inner = 1 drops elements, inner = D·H·W drops whole channels
// (Dropout3d / SpatialDropout). The mask is never stored: the backward runs this same kernel on
// dy with the same seed, which reproduces it (counter-based RNG, no state).
// Bindings: 0 uniforms, 1 x (or dy), 2 y (or dx).
struct Params { n: u32, inner: u32, seed_lo: u32, seed_hi: u32, p: f32, scale: f32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// PCG-style integer hash (Jarzynski & Olano 2020), good enough for masks and stateless.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn uniform01(unit: u32) -> f32 {
  let h = pcg(pcg(unit ^ u.seed_lo) + u.seed_hi);
  return f32(h >> 8u) * (1.0 / 16777216.0); // 24 random bits: exact in f32
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  let keep = uniform01(i / u.inner) >= u.p;
  y[i] = select(0.0, x[i] * u.scale, keep);
}

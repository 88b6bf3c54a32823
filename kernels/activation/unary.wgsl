// Unary activations y = f(x) and their backward dx = dy * f'(x), one pipeline per OP.
// OP codes (keep in step with UNARY in src/graph/ops/activation.ts):
//   0 relu, 1 leaky_relu(alpha), 2 gelu (exact erf), 3 sigmoid, 4 hard_sigmoid (Keras 2:
//   clip(0.2x + 0.5, 0, 1)), 5 tanh, 6 exp, 7 log, 8 neg, 9 abs, 10 sqrt, 11 square.
// Entries: main4 / backward4 over vec4s (the bulk: a multiple of 64 elements), main / backward
// over scalars (the tail the op binds as a second, 256-byte-aligned chunk, or a short tensor).
// Bindings: 0 uniforms, 1 x, 2 dy (backward only), 3 y (forward: f(x), backward: dx);
// 4 x4, 5 dy4, 6 y4: the same roles as vec4 arrays (n counts vec4s there).
// Trick: the vec4 entries grid-stride (the op launches at most a few thousand workgroups), so
// each invocation moves several 16-byte vectors and the per-invocation cost is amortised.
override OP: u32 = 0u;
struct Params { n: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4<f32>>;

// #include "common/activations"

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn forward(v: f32) -> f32 {
  switch OP {
    // relu keeps a NaN (PyTorch); the max builtin may not, and llvmpipe folds 'v != v'
    case 0u: { return select(max(v, 0.0), v, is_nan(v)); }
    case 1u: { return select(p.alpha * v, v, v > 0.0); }
    case 2u: { return 0.5 * v * (1.0 + erf_(v * 0.70710678118654752)); }
    case 3u: { return sigmoid_(v); }
    case 4u: { return clamp(0.2 * v + 0.5, 0.0, 1.0); }
    case 5u: { return tanh_(v); }
    case 6u: { return exp(v); }
    case 7u: { return log(v); }
    case 8u: { return -v; }
    case 9u: { return abs(v); }
    case 10u: { return sqrt(v); }
    default: { return v * v; }
  }
}

fn derivative(v: f32) -> f32 {
  switch OP {
    case 0u: { return select(0.0, 1.0, v > 0.0); }
    case 1u: { return select(p.alpha, 1.0, v > 0.0); }
    case 2u: {
      let cdf = 0.5 * (1.0 + erf_(v * 0.70710678118654752));
      let pdf = 0.3989422804014327 * exp(-0.5 * v * v);
      return cdf + v * pdf;
    }
    case 3u: { let s = sigmoid_(v); return s * (1.0 - s); }
    // Keras' hard_sigmoid passes gradient 0.2 strictly inside (-2.5, 2.5).
    case 4u: { return select(0.0, 0.2, v > -2.5 && v < 2.5); }
    case 5u: { let t = tanh_(v); return 1.0 - t * t; }
    case 6u: { return exp(v); }
    case 7u: { return 1.0 / v; }
    case 8u: { return -1.0; }
    case 9u: { return sign(v); }
    case 10u: { return 0.5 / sqrt(v); }
    default: { return 2.0 * v; }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  y[i] = forward(x[i]);
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  y[i] = dy[i] * derivative(x[i]);
}

fn forward4(v: vec4<f32>) -> vec4<f32> {
  switch OP {
    case 0u: { return select(max(v, vec4<f32>(0.0)), v, (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u)); }
    case 1u: { return select(p.alpha * v, v, v > vec4<f32>(0.0)); }
    default: { return vec4<f32>(forward(v.x), forward(v.y), forward(v.z), forward(v.w)); }
  }
}

fn derivative4(v: vec4<f32>) -> vec4<f32> {
  switch OP {
    case 0u: { return select(vec4<f32>(0.0), vec4<f32>(1.0), v > vec4<f32>(0.0)); }
    case 1u: { return select(vec4<f32>(p.alpha), vec4<f32>(1.0), v > vec4<f32>(0.0)); }
    default: { return vec4<f32>(derivative(v.x), derivative(v.y), derivative(v.z), derivative(v.w)); }
  }
}

@compute @workgroup_size(64)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  for (var i = gid.x + gid.y * nwg.x * 64u; i < p.n; i += stride) {
    y4[i] = forward4(x4[i]);
  }
}

@compute @workgroup_size(64)
fn backward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  for (var i = gid.x + gid.y * nwg.x * 64u; i < p.n; i += stride) {
    y4[i] = dy4[i] * derivative4(x4[i]);
  }
}

// Tensor-scalar ops y = f(x; s) and their backward dx = dy * f'(x), one pipeline per OP.
// OP codes (keep in step with SCALAR in src/graph/ops/elementwise.ts):
//   0 add s, 1 mul s, 2 pow (exponent s), 3 clamp to [s, hi] (each bound only if has_lo / has_hi).
// Bindings: 0 uniforms, 1 x, 2 dy (backward only), 3 y (forward: f(x), backward: dx);
// 4 x4, 5 dy4, 6 y4: the same as vec4 arrays for main4 / backward4, which grid-stride over the
// bulk (a multiple of 64 elements; n counts vec4s there) while main / backward take the tail.
// Trick: pow with an integral exponent is computed by repeated squaring, so negative bases
// work (PyTorch: (-2)^3 = -8) and small integer powers are exact; WGSL's pow is undefined for x < 0.
override OP: u32 = 0u;
struct Params { n: u32, s: f32, hi: f32, has_lo: u32, has_hi: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4<f32>>;

// NaN and inf from bit patterns; through a function so they are not constant expressions
// (WGSL rejects a constant that evaluates to NaN or inf).
fn from_bits(u: u32) -> f32 {
  return bitcast<f32>(u);
}

fn powf(v: f32, e: f32) -> f32 {
  if (e == 0.0) { return 1.0; }
  if (e == round(e) && abs(e) <= 1024.0) {
    var k = u32(abs(e));
    var base = v;
    var r = 1.0;
    loop {
      if ((k & 1u) == 1u) { r *= base; }
      k = k >> 1u;
      if (k == 0u) { break; }
      base *= base;
    }
    return select(r, 1.0 / r, e < 0.0);
  }
  if (v < 0.0) { return from_bits(0x7fc00000u); } // NaN, as PyTorch for a fractional power
  if (v == 0.0) { return select(0.0, from_bits(0x7f800000u), e < 0.0); }
  return exp2(e * log2(v));
}

fn forward(v: f32) -> f32 {
  switch OP {
    case 0u: { return v + p.s; }
    case 1u: { return v * p.s; }
    case 2u: { return powf(v, p.s); }
    default: {
      var r = v;
      if (p.has_lo == 1u) { r = max(r, p.s); }
      if (p.has_hi == 1u) { r = min(r, p.hi); }
      return r;
    }
  }
}

fn derivative(v: f32) -> f32 {
  switch OP {
    case 0u: { return 1.0; }
    case 1u: { return p.s; }
    // PyTorch: exponent * x^(exponent - 1), and 0 for a zero exponent.
    case 2u: { return select(p.s * powf(v, p.s - 1.0), 0.0, p.s == 0.0); }
    default: {
      // PyTorch's clamp_backward passes the gradient on the closed interval [lo, hi].
      let above = p.has_lo == 0u || v >= p.s;
      let below = p.has_hi == 0u || v <= p.hi;
      return select(0.0, 1.0, above && below);
    }
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

@compute @workgroup_size(64)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  for (var i = gid.x + gid.y * nwg.x * 64u; i < p.n; i += stride) {
    let v = x4[i];
    y4[i] = vec4<f32>(forward(v.x), forward(v.y), forward(v.z), forward(v.w));
  }
}

@compute @workgroup_size(64)
fn backward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  for (var i = gid.x + gid.y * nwg.x * 64u; i < p.n; i += stride) {
    let v = x4[i];
    y4[i] = dy4[i] * vec4<f32>(derivative(v.x), derivative(v.y), derivative(v.z), derivative(v.w));
  }
}

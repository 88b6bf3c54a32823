// Fused Adam / AdamW step for one parameter tensor, torch.optim.Adam(W) formulas:
//   g = clip * grad (+ weight_decay * p for Adam; AdamW instead decays p *= 1 - lr * weight_decay)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g²
//   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),  bc_k = 1 - b_k^step (computed on the host in f64)
// Bindings: 0 uniforms, 1 p (in place), 2 grad, 3 m (in place), 4 v (in place), 5 clip factor;
// 6 p4, 7 grad4, 8 m4, 9 v4: the same as vec4 arrays for main4, which grid-strides over the bulk
// (a multiple of 64 elements; n counts vec4s there) while main takes the scalar tail.
struct Params { n: u32, lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, decoupled: u32, step_size: f32, sqrt_bc2: f32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> clip: array<f32>;
@group(0) @binding(6) var<storage, read_write> p4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> grad4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> v4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  var param = p[i];
  var g = grad[i] * clip[0];
  if (u.decoupled != 0u) {
    param = param * (1.0 - u.lr * u.weight_decay);
  } else {
    g = g + u.weight_decay * param;
  }
  let mi = u.beta1 * m[i] + (1.0 - u.beta1) * g;
  let vi = u.beta2 * v[i] + (1.0 - u.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  p[i] = param - u.step_size * mi / (sqrt(vi) / u.sqrt_bc2 + u.eps);
}

@compute @workgroup_size(64)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  let c = clip[0];
  for (var i = gid.x + gid.y * nwg.x * 64u; i < u.n; i += stride) {
    var param = p4[i];
    var g = grad4[i] * c;
    if (u.decoupled != 0u) {
      param = param * (1.0 - u.lr * u.weight_decay);
    } else {
      g = g + u.weight_decay * param;
    }
    let mi = u.beta1 * m4[i] + (1.0 - u.beta1) * g;
    let vi = u.beta2 * v4[i] + (1.0 - u.beta2) * g * g;
    m4[i] = mi;
    v4[i] = vi;
    p4[i] = param - u.step_size * mi / (sqrt(vi) / u.sqrt_bc2 + u.eps);
  }
}

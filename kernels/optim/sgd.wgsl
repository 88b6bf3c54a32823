// Fused SGD step for one parameter tensor, PyTorch's torch.optim.SGD (dampening 0):
//   g = grad + weight_decay * p;  v = momentum * v + g  (v starts at 0, so the first v is g);
//   update = nesterov ? g + momentum * v : v  (plain v when momentum == 0);  p -= lr * update.
// `scale` multiplies the gradient first: gradient clipping writes its factor into clip[0].
// Bindings: 0 uniforms, 1 p (updated in place), 2 grad, 3 velocity (in place), 4 clip factor;
// 5 p4, 6 grad4, 7 velocity4: the same as vec4 arrays for main4, which grid-strides over the bulk
// (a multiple of 64 elements; n counts vec4s there) while main takes the scalar tail.
struct Params { n: u32, lr: f32, momentum: f32, weight_decay: f32, nesterov: u32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(4) var<storage, read> clip: array<f32>;
@group(0) @binding(5) var<storage, read_write> p4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> grad4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> velocity4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  let g = grad[i] * clip[0] + u.weight_decay * p[i];
  let v = u.momentum * velocity[i] + g;
  velocity[i] = v;
  var step = v;
  if (u.nesterov != 0u) { step = g + u.momentum * v; }
  p[i] = p[i] - u.lr * step;
}

@compute @workgroup_size(64)
fn main4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  let c = clip[0];
  for (var i = gid.x + gid.y * nwg.x * 64u; i < u.n; i += stride) {
    let pi = p4[i];
    let g = grad4[i] * c + u.weight_decay * pi;
    let v = u.momentum * velocity4[i] + g;
    velocity4[i] = v;
    var step = v;
    if (u.nesterov != 0u) { step = g + u.momentum * v; }
    p4[i] = pi - u.lr * step;
  }
}

// Loss pass 2: one workgroup sums every partial vec4 written by kernels/loss/reduce.wgsl (same
// LOSS codes and lane meanings) and writes the loss y[0] and the global sums stats[0], which the
// backward kernel reads on the GPU (no readback).
// Bindings: 0 uniforms, 1 partials, 2 y ([1]), 3 stats (one vec4).
// Trick: thread t sums slots t, t+128, ... then a shared-memory tree: a fixed order, so the
// result is deterministic for a given shape.
override LOSS: u32 = 0u;
struct Params { slots: u32, count: f32, smoothing: f32, alpha: f32, gamma: f32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec4<f32>>;

var<workgroup> acc: array<vec4<f32>, 128>;

// Positive-class weight (N - sum)/sum; 0 when the sum is 0 (then no element has weight to give,
// for the target variant every g*log p term is already 0).
fn pos_weight(sum: f32) -> f32 {
  if (sum == 0.0) { return 0.0; }
  return (u.count - sum) / sum;
}

fn loss(s: vec4<f32>) -> f32 {
  let sm = u.smoothing;
  switch LOSS {
    case 2u: { return -(pos_weight(s.z) * s.x + s.y) / u.count; }
    case 3u: { return -(pos_weight(s.w) * s.x + s.y) / u.count; }
    case 4u: { return 1.0 - (2.0 * s.x + sm) / (s.y + s.z + sm); }
    case 5u: { return 1.0 - (s.x + sm) / (s.x + u.alpha * s.y + (1.0 - u.alpha) * s.z + sm); }
    case 6u: { return 1.0 - (s.x + sm) / (s.y + s.z - s.x + sm); }
    case 8u, 9u: { return 1.0 - (2.0 * s.x + sm) / (s.y + s.z + sm); } // sigmoid Dice, V-Net Dice
    case 10u: { // gamma * BCE-with-logits mean + alpha * sigmoid Dice
      return u.gamma * s.x / u.count + u.alpha * (1.0 - (2.0 * s.y + sm) / (s.z + s.w + sm));
    }
    default: { return s.x / u.count; } // 0 bce, 1 bce_logits, 7 focal: means
  }
}

@compute @workgroup_size(128)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = vec4<f32>(0.0);
  for (var i = lid; i < u.slots; i = i + 128u) { s = s + partials[i]; }
  acc[lid] = s;
  workgroupBarrier();
  for (var k = 64u; k > 0u; k = k >> 1u) {
    if (lid < k) { acc[lid] = acc[lid] + acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    stats[0] = acc[0];
    y[0] = loss(acc[0]);
  }
}

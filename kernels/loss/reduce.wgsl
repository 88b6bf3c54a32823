// Loss pass 1: each workgroup writes one vec4 of partial sums over its grid-strided slice of
// (pred, target) into partials[offset + workgroup]; kernels/loss/combine.wgsl turns them into
// the loss. What the four lanes hold depends on LOSS (keep in step with LOSS in
// src/graph/ops/loss.ts):
//   0 bce            (sum -(g*clog p + (1-g)*clog(1-p)), 0, 0, 0)
//   1 bce_logits     (sum max(x,0) - x*g + log1p(exp(-|x|)), 0, 0, 0)
//   2,3 weighted_bce (sum g*clog p, sum (1-g)*clog(1-p), sum g, sum p)   2: w from g, 3: w from p
//   4 dice, 6 iou    (sum p*g, sum p, sum g, 0)
//   5 tversky        (TP = sum p*g, FP = sum p*(1-g), FN = sum (1-p)*g, 0)
//   7 focal          (sum a_t*(1-p_t)^gamma*bce, 0, 0, 0)
//   8 dice_sigmoid   (sum s*g, sum s, sum g, 0) with s = sigmoid(pred): pred holds logits
//   9 vnet_dice      (sum p*g, sum p*p, sum g*g, 0)
//   10 dice_bce      (sum max(x,0) - x*g + log1p(exp(-|x|)), sum s*g, sum s, sum g), s = sigmoid(x)
// clog(v) = max(log v, -100) as PyTorch's binary_cross_entropy clamps it.
// Bindings: 0 uniforms, 1 pred, 2 gt (target), 3 partials (vec4 per workgroup).
// Trick: the number of workgroups is capped (grid-stride loop), so pass 2 reads a bounded
// number of partials; every sum is an f32 tree in shared memory (deterministic, no atomics).
override LOSS: u32 = 0u;
struct Params { n: u32, groups: u32, offset: u32, alpha: f32, gamma: f32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> gt: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<vec4<f32>>;

var<workgroup> acc: array<vec4<f32>, 128>;

// #include "common/activations"

fn clog(v: f32) -> f32 { return max(log(v), -100.0); }

// pow with the 0^0 = 1, 0^e = 0 convention (WGSL's pow is undefined for a zero base).
fn pow0(b: f32, e: f32) -> f32 {
  if (b <= 0.0) { return select(0.0, 1.0, e == 0.0); }
  return pow(b, e);
}

// log(1 + v) accurate for small v (no log1p builtin): the (1+v)-1 rounding error cancels.
fn log1p_(v: f32) -> f32 {
  let w = 1.0 + v;
  if (w == 1.0) { return v; }
  return log(w) * v / (w - 1.0);
}

fn term(p: f32, g: f32) -> vec4<f32> {
  switch LOSS {
    case 0u: { return vec4<f32>(-(g * clog(p) + (1.0 - g) * clog(1.0 - p)), 0.0, 0.0, 0.0); }
    case 1u: { return vec4<f32>(max(p, 0.0) - p * g + log1p_(exp(-abs(p))), 0.0, 0.0, 0.0); }
    case 8u: { let s = sigmoid_(p); return vec4<f32>(s * g, s, g, 0.0); }
    case 9u: { return vec4<f32>(p * g, p * p, g * g, 0.0); }
    case 10u: {
      let s = sigmoid_(p);
      return vec4<f32>(max(p, 0.0) - p * g + log1p_(exp(-abs(p))), s * g, s, g);
    }
    case 2u, 3u: { return vec4<f32>(g * clog(p), (1.0 - g) * clog(1.0 - p), g, p); }
    case 5u: { return vec4<f32>(p * g, p * (1.0 - g), (1.0 - p) * g, 0.0); }
    case 7u: {
      // Soft-target form (torchvision's): equals -a_t*(1-p_t)^gamma*log p_t for binary targets.
      let pt = p * g + (1.0 - p) * (1.0 - g);
      let at = u.alpha * g + (1.0 - u.alpha) * (1.0 - g);
      let ce = -(g * clog(p) + (1.0 - g) * clog(1.0 - p));
      return vec4<f32>(at * pow0(1.0 - pt, u.gamma) * ce, 0.0, 0.0, 0.0);
    }
    default: { return vec4<f32>(p * g, p, g, 0.0); } // 4 dice, 6 iou
  }
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  // A launch split over x and y rounds up: the surplus workgroups own no slot.
  if (w >= u.groups) { return; }
  var s = vec4<f32>(0.0);
  let stride = u.groups * 128u;
  for (var i = w * 128u + lid; i < u.n; i = i + stride) { s = s + term(pred[i], gt[i]); }
  acc[lid] = s;
  workgroupBarrier();
  for (var k = 64u; k > 0u; k = k >> 1u) {
    if (lid < k) { acc[lid] = acc[lid] + acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[u.offset + w] = acc[0]; }
}

// Loss backward: d loss / d pred, element-wise, scaled by the upstream gradient dy[0]. The global
// sums come from stats[0] (written by kernels/loss/combine.wgsl, same LOSS codes), so no pass
// reads back to the CPU. Targets get no gradient; the weighted-BCE weight is a constant.
// BCE-type derivatives use PyTorch's binary_cross_entropy backward, (p-g)/max(p(1-p), 1e-12),
// generalised to weighted terms as (a*p*(1-g) - b*g*(1-p))/max(p(1-p), 1e-12).
// Bindings: 0 uniforms, 1 pred, 2 gt (target), 3 stats (vec4), 4 dy ([1]), 5 dp.
override LOSS: u32 = 0u;
struct Params { n: u32, count: f32, smoothing: f32, alpha: f32, gamma: f32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> gt: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dp: array<f32>;

// #include "common/activations"

const EPS: f32 = 1e-12;

fn clog(v: f32) -> f32 { return max(log(v), -100.0); }

fn pow0(b: f32, e: f32) -> f32 {
  if (b <= 0.0) { return select(0.0, 1.0, e == 0.0); }
  return pow(b, e);
}

fn pos_weight(sum: f32) -> f32 {
  if (sum == 0.0) { return 0.0; }
  return (u.count - sum) / sum;
}

// d(-(wp*g*log p + (1-g)*log(1-p)))/dp with PyTorch's clamped denominator.
fn dbce(p: f32, g: f32, wp: f32) -> f32 {
  return (p * (1.0 - g) - wp * g * (1.0 - p)) / max(p * (1.0 - p), EPS);
}

fn grad(p: f32, g: f32) -> f32 {
  let s = stats[0];
  let sm = u.smoothing;
  switch LOSS {
    case 0u: { return dbce(p, g, 1.0) / u.count; }
    case 1u: { return (sigmoid_(p) - g) / u.count; }
    case 2u: { return dbce(p, g, pos_weight(s.z)) / u.count; }
    case 3u: { return dbce(p, g, pos_weight(s.w)) / u.count; }
    case 4u: {
      let den = s.y + s.z + sm;
      return -(2.0 * g * den - (2.0 * s.x + sm)) / (den * den);
    }
    case 5u: {
      let den = s.x + u.alpha * s.y + (1.0 - u.alpha) * s.z + sm;
      let dden = g + u.alpha * (1.0 - g) - (1.0 - u.alpha) * g;
      return -(g * den - (s.x + sm) * dden) / (den * den);
    }
    case 6u: {
      let den = s.y + s.z - s.x + sm;
      return -(g * den - (s.x + sm) * (1.0 - g)) / (den * den);
    }
    case 8u: { // Dice on s = sigmoid(x): dL/ds * s(1-s)
      let sg = sigmoid_(p);
      let den = s.y + s.z + sm;
      return -(2.0 * g * den - (2.0 * s.x + sm)) / (den * den) * sg * (1.0 - sg);
    }
    case 9u: { // V-Net Dice: the denominator is sum p^2 + sum g^2
      let den = s.y + s.z + sm;
      return -(2.0 * g * den - (2.0 * s.x + sm) * 2.0 * p) / (den * den);
    }
    case 10u: { // gamma * BCE-with-logits + alpha * sigmoid Dice
      let sg = sigmoid_(p);
      let den = s.z + s.w + sm;
      let dd = -(2.0 * g * den - (2.0 * s.y + sm)) / (den * den) * sg * (1.0 - sg);
      return u.gamma * (sg - g) / u.count + u.alpha * dd;
    }
    default: { // 7 focal: a_t * (1-p_t)^gamma * ce, p_t = p*g + (1-p)*(1-g)
      let pt = p * g + (1.0 - p) * (1.0 - g);
      let at = u.alpha * g + (1.0 - u.alpha) * (1.0 - g);
      let ce = -(g * clog(p) + (1.0 - g) * clog(1.0 - p));
      let q = 1.0 - pt;
      // d(1-p_t)/dp = 1 - 2g; a zero base with gamma < 1 is taken as 0 (ce is 0 there for 0/1 targets).
      var dmod = 0.0;
      if (u.gamma != 0.0) { dmod = u.gamma * pow0(q, u.gamma - 1.0) * (1.0 - 2.0 * g); }
      return at * (dmod * ce + pow0(q, u.gamma) * dbce(p, g, 1.0)) / u.count;
    }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= u.n) { return; }
  dp[i] = dy[0] * grad(pred[i], gt[i]);
}

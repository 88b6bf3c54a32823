// Fused LSTM cell (ConvLSTM's pointwise half): gates, c_t and h_t in one pass, and the matching
// backward, one invocation per (batch, hidden channel, position).
// Layouts (chw = hidden * spatial size; b = i / chw, r = i % chw):
//   z      [N, 4, chw]  gate pre-activations, gate order i, f, g, o
//   c_prev [N, chw]
//   out    forward: packed [N, 2, chw] (h_t then c_t; one tensor because a tape node has one
//          output); backward: dz [N, 4, chw]
//   dout   backward only: gradient of the packed output [N, 2, chw]
//   dc_prev backward only
// Bindings: 0 uniforms, 1 z, 2 c_prev, 3 dout, 4 out, 5 dc_prev.
// Trick: the backward recomputes every gate from z instead of saving activations, so a step
// keeps only z and c_prev alive for backpropagation through time.
// ACT selects the recurrent activation of i, f, o: 0 sigmoid, 1 Keras 2 hard_sigmoid
// clip(0.2x + 0.5, 0, 1). g always uses tanh.
override ACT: u32 = 0u;
struct Params { n: u32, chw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> c_prev: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> dc_prev: array<f32>;

// #include "common/activations"

fn act(v: f32) -> f32 {
  if (ACT == 1u) { return clamp(0.2 * v + 0.5, 0.0, 1.0); }
  return sigmoid_(v);
}

// Derivative from the input v and the activation s = act(v).
fn act_grad(v: f32, s: f32) -> f32 {
  // Keras' hard_sigmoid passes gradient 0.2 strictly inside (-2.5, 2.5), 0 outside.
  if (ACT == 1u) { return select(0.0, 0.2, v > -2.5 && v < 2.5); }
  return s * (1.0 - s);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let b = i / p.chw;
  let r = i - b * p.chw;
  let zb = b * 4u * p.chw + r;
  let ig = act(z[zb]);
  let fg = act(z[zb + p.chw]);
  let gg = tanh_(z[zb + 2u * p.chw]);
  let og = act(z[zb + 3u * p.chw]);
  let c = fg * c_prev[i] + ig * gg;
  let ob = b * 2u * p.chw + r;
  out[ob] = og * tanh_(c);
  out[ob + p.chw] = c;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let b = i / p.chw;
  let r = i - b * p.chw;
  let zb = b * 4u * p.chw + r;
  let zi = z[zb];
  let zf = z[zb + p.chw];
  let zg = z[zb + 2u * p.chw];
  let zo = z[zb + 3u * p.chw];
  let ig = act(zi);
  let fg = act(zf);
  let gg = tanh_(zg);
  let og = act(zo);
  let cp = c_prev[i];
  let c = fg * cp + ig * gg;
  let tc = tanh_(c);
  let ob = b * 2u * p.chw + r;
  let dh = dout[ob];
  // c_t reaches the loss directly (packed output) and through h_t = o * tanh(c_t).
  let dc = dout[ob + p.chw] + dh * og * (1.0 - tc * tc);
  out[zb] = dc * gg * act_grad(zi, ig);
  out[zb + p.chw] = dc * cp * act_grad(zf, fg);
  out[zb + 2u * p.chw] = dc * ig * (1.0 - gg * gg);
  out[zb + 3u * p.chw] = dh * tc * act_grad(zo, og);
  dc_prev[i] = dc * fg;
}

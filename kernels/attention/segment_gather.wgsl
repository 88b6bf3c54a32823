// Race-free scatter-add written as a gather: one invocation per output element i = (g, c, v)
// (i = (g * C + c) * V + v) sums, in sorted (= entry id) order, the entries of key g * V + v:
//   grad[i] = sum_{j in [offsets[key], offsets[key+1])} weights[e] * dy[f(e >> 3, c)],  e = order[j]
//   f(s, c) = (s / A) * B + c * Cs + (s % A) * Ms     (s = sample of the entry, 8 entries each)
// grid_sample3d: V = D*H*W, C channels, A = So, B = C*So, Cs = So, Ms = 1.
// ms_deform_attn3d: V = 1, C = Dh, A = nL*nP, B = Dh, Cs = 1, Ms = 0.
// Bindings: 0 uniforms, 1 offsets [keys + 1], 2 order [entries] (entry ids sorted by key),
// 3 weights [entries], 4 dy, 5 grad [total].
// Trick: the entries are stably sorted, so each sum runs in a fixed order: deterministic, and
// no float atomics are needed.
struct Params { total: u32, C: u32, V: u32, A: u32, B: u32, Cs: u32, Ms: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> offsets: array<u32>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.total) { return; }
  let v = i % p.V;
  let gc = i / p.V;
  let c = gc % p.C;
  let key = (gc / p.C) * p.V + v;
  let end = offsets[key + 1u];
  var acc = 0.0;
  for (var j = offsets[key]; j < end; j++) {
    let e = order[j];
    let s = e >> 3u;
    acc += weights[e] * dy[(s / p.A) * p.B + c * p.Cs + (s % p.A) * p.Ms];
  }
  grad[i] = acc;
}

// Batch-norm running statistics, updated in place like PyTorch:
// running = (1 - momentum) * running + momentum * batch, with the UNBIASED batch variance.
// Bindings: 0 uniforms, 1 mean ([C], batch mean), 2 var ([C], biased batch variance),
// 3 running_mean ([C], read_write: the caller's tensor), 4 running_var ([C], read_write),
// 5 part (`from_part`: [C, splits, 3] chunk (count, mean, M2) of seg.wgsl's stats, merged here
// with Chan's update instead of reading mean/var).
// Trick: unbias = n/(n-1) turns the biased variance the forward normalises with into the unbiased
// one PyTorch tracks, so the statistics are reduced only once.
struct Params { c: u32, momentum: f32, unbias: f32, splits: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read> var_: array<f32>;
@group(0) @binding(3) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(5) var<storage, read> part: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * 64u;
  if (c >= p.c) { return; }
  running_mean[c] = (1.0 - p.momentum) * running_mean[c] + p.momentum * mean[c];
  running_var[c] = (1.0 - p.momentum) * running_var[c] + p.momentum * var_[c] * p.unbias;
}

@compute @workgroup_size(64)
fn from_part(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * 64u;
  if (c >= p.c) { return; }
  var n = 0.0;
  var m = 0.0;
  var q = 0.0;
  for (var s = 0u; s < p.splits; s++) {
    let k = (c * p.splits + s) * 3u;
    let nb = part[k];
    if (nb == 0.0) { continue; }
    let d = part[k + 1u] - m;
    let f = nb / (n + nb);
    q += part[k + 2u] + d * d * n * f;
    m += d * f;
    n += nb;
  }
  running_mean[c] = (1.0 - p.momentum) * running_mean[c] + p.momentum * m;
  running_var[c] = (1.0 - p.momentum) * running_var[c] + p.momentum * (q / n) * p.unbias;
}

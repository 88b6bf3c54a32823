// grid_sample3d backward, one invocation per sample (n, o). It writes
//   - grad_grid[n, o] = sum over c of dy[n, c, o] * d(sample)/d(grid) (WANT_GRID), and
//   - the 8 scatter entries of the sample for grad_x (WANT_X): keys[8s+k] = voxel row n*DHW+vox
//     of corner k (num_keys when the corner is outside), weights[8s+k] = trilinear weight;
//     entry 8s+k's id is implicit (the sort's first pass numbers them). These are sorted by key and gathered (segment_gather.wgsl), so grad_x
//     needs no float atomics and is summed in a fixed order.
// Bindings: 0 uniforms, 1 x, 2 grid, 3 dy [N, C, So], 4 grad_grid [N, So, 3], 5 keys,
// 6 weights (5-6: [8 * N * So]).
// Trick: an out-of-range sample is moved to coordinate -2 so that all 8 corners fail the bounds
// test: keys, weights and gradients then come out of the one code path.
override WANT_X: bool = true;
override WANT_GRID: bool = true;
struct Params { total: u32, C: u32, D: u32, H: u32, W: u32, So: u32, align: u32, num_keys: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> grid: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_grid: array<f32>;
@group(0) @binding(5) var<storage, read_write> keys: array<u32>;
@group(0) @binding(6) var<storage, read_write> weights: array<f32>;

fn unnormalize(g: f32, size: u32) -> f32 {
  if (p.align == 1u) { return (g + 1.0) * 0.5 * f32(size - 1u); }
  return ((g + 1.0) * f32(size) - 1.0) * 0.5;
}

// d(voxel coordinate)/d(grid value)
fn scale(size: u32) -> f32 {
  if (p.align == 1u) { return 0.5 * f32(size - 1u); }
  return 0.5 * f32(size);
}

fn touches(c: f32, size: u32) -> bool {
  return c >= -1.0 && c <= f32(size);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = gid.x + gid.y * nwg.x * 64u;
  if (s >= p.total) { return; }
  let n = s / p.So;
  let o = s % p.So;
  var pos = vec3<f32>(unnormalize(grid[3u * s], p.W), unnormalize(grid[3u * s + 1u], p.H),
                      unnormalize(grid[3u * s + 2u], p.D));
  if (!(touches(pos.x, p.W) && touches(pos.y, p.H) && touches(pos.z, p.D))) { pos = vec3<f32>(-2.0); }
  let f0 = floor(pos);
  let fr = pos - f0;
  let c0 = vec3<i32>(f0);
  let size = vec3<i32>(i32(p.W), i32(p.H), i32(p.D));
  let dhw = p.D * p.H * p.W;
  var g = vec3<f32>(0.0);
  for (var k = 0u; k < 8u; k++) {
    let bit = vec3<u32>(k & 1u, (k >> 1u) & 1u, k >> 2u);
    let one = bit == vec3<u32>(1u);
    let c = c0 + vec3<i32>(bit);
    let inside = all(c >= vec3<i32>(0)) && all(c < size);
    let w3 = select(1.0 - fr, fr, one);
    let vox = select(0u, (u32(c.z) * p.H + u32(c.y)) * p.W + u32(c.x), inside);
    if (WANT_X) {
      let e = 8u * s + k;
      keys[e] = select(p.num_keys, n * dhw + vox, inside);
      weights[e] = w3.x * w3.y * w3.z;
    }
    if (WANT_GRID && inside) {
      // sum over channels of dy * corner value, then d(weight)/d(pos) per axis
      var dot = 0.0;
      for (var ch = 0u; ch < p.C; ch++) {
        let nc = n * p.C + ch;
        dot += dy[nc * p.So + o] * x[nc * dhw + vox];
      }
      let sg = select(vec3<f32>(-1.0), vec3<f32>(1.0), one);
      g += dot * sg * vec3<f32>(w3.y * w3.z, w3.x * w3.z, w3.x * w3.y);
    }
  }
  if (WANT_GRID) {
    grad_grid[3u * s] = g.x * scale(p.W);
    grad_grid[3u * s + 1u] = g.y * scale(p.H);
    grad_grid[3u * s + 2u] = g.z * scale(p.D);
  }
}

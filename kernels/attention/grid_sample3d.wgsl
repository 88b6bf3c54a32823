// grid_sample3d forward (F.grid_sample, trilinear, zeros padding): one invocation per output
// element y[n, c, o]; it reads grid[n, o] and the 8 surrounding voxels of x[n, c].
// Bindings: 0 uniforms, 1 x [N, C, D, H, W], 2 grid [N, So, 3] (last dim x→W, y→H, z→D, in
// [-1, 1]), 3 y [N, C, So].
// Trick: the "any corner inside" test runs on the float coordinate before it becomes an
// integer, so NaN or huge grid values read nothing instead of overflowing i32.
struct Params { total: u32, C: u32, D: u32, H: u32, W: u32, So: u32, align: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> grid: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// [-1, 1] → voxel coordinate (align_corners=False: -1 and 1 are the outer voxel edges).
fn unnormalize(g: f32, size: u32) -> f32 {
  if (p.align == 1u) { return (g + 1.0) * 0.5 * f32(size - 1u); }
  return ((g + 1.0) * f32(size) - 1.0) * 0.5;
}

// -1 and size are included: a corner at 0 (or size-1) still has weight 0 but a gradient.
fn touches(c: f32, size: u32) -> bool {
  return c >= -1.0 && c <= f32(size);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.total) { return; }
  let o = i % p.So;
  let nc = i / p.So;
  let n = nc / p.C;
  let g = (n * p.So + o) * 3u;
  let ix = unnormalize(grid[g], p.W);
  let iy = unnormalize(grid[g + 1u], p.H);
  let iz = unnormalize(grid[g + 2u], p.D);
  var acc = 0.0;
  if (touches(ix, p.W) && touches(iy, p.H) && touches(iz, p.D)) {
    let f0 = floor(vec3<f32>(ix, iy, iz));
    let fr = vec3<f32>(ix, iy, iz) - f0;
    let c0 = vec3<i32>(f0);
    let size = vec3<i32>(i32(p.W), i32(p.H), i32(p.D));
    let base = nc * p.D * p.H * p.W;
    for (var k = 0u; k < 8u; k++) {
      let bit = vec3<u32>(k & 1u, (k >> 1u) & 1u, k >> 2u);
      let c = c0 + vec3<i32>(bit);
      if (all(c >= vec3<i32>(0)) && all(c < size)) {
        let w3 = select(1.0 - fr, fr, bit == vec3<u32>(1u));
        let vox = (u32(c.z) * p.H + u32(c.y)) * p.W + u32(c.x);
        acc += w3.x * w3.y * w3.z * x[base + vox];
      }
    }
  }
  y[i] = acc;
}

enable subgroups;
// matmul.wgsl's register-tiled GEMM with the a reads spread over the subgroup; same formula,
// bindings, uniforms and tile mapping (see matmul.wgsl for the layout). Needs subgroups of at
// least 8 lanes and RM a multiple of 8: the caller checks Device.subgroupSize and the block.
// Why: on lavapipe a storage load at a lane-uniform address is still a per-lane gather, so the
// RM workgroup-uniform a loads per k cost as much as RM per-lane loads (bench/NOTES.md; the
// same finding as conv_direct_sg). All lanes of a workgroup share the tile's RM rows, so lane l
// loads only rows l % 8, 8 + l % 8, ... (RM / 8 loads per k instead of RM) and
// subgroupBroadcast from lanes 0..7 hands every lane all RM values (a register extract + splat
// on SIMD back ends). Per k: RN + RM / 8 loads for RM * RN FMAs.
// Uniformity: the broadcasts need every lane of the subgroup, so lanes past N or M compute on
// clamped addresses and only skip the store; the only early return is workgroup-uniform.
override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;
override BIAS: u32 = 0u;
override RM: u32 = 16u; // rows per invocation (8, 16, 24 or 32; RM * RN <= 128)
override RN: u32 = 8u; // columns per invocation (1..8), 64 apart

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch0: u32,
  tiles_n: u32,
  tiles: u32,
  bshape: vec4<u32>,
  astr: vec4<u32>,
  bstr: vec4<u32>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let t = wid.x + wid.y * nwg.x;
  if (t >= p.tiles) { return; } // the whole workgroup leaves together
  let z = wid.z + p.batch0;
  var rem = z;
  var aoff = 0u;
  var boff = 0u;
  for (var d = 3i; d >= 0; d--) {
    let e = p.bshape[d];
    let cd = rem % e;
    rem = rem / e;
    aoff += cd * p.astr[d];
    boff += cd * p.bstr[d];
  }
  let m0 = (t / p.tiles_n) * RM;
  let nb = (t % p.tiles_n) * 64u * RN + lid.x;

  // This lane's share of the tile's rows: row m0 + 8q + l % 8 for q < RM / 8 (clamped).
  let la = sl % 8u;
  var ar: array<u32, 4>;
  var astep = 1u;
  if (TRANS_A == 1u) { astep = M; }
  for (var q = 0u; q < RM / 8u; q++) {
    let m = min(m0 + q * 8u + la, M - 1u);
    if (TRANS_A == 0u) { ar[q] = aoff + m * K; } else { ar[q] = aoff + m; }
  }
  var bc: array<u32, 8>;
  var bstep = N;
  if (TRANS_B == 1u) { bstep = 1u; }
  for (var j = 0u; j < RN; j++) {
    let n = min(nb + j * 64u, N - 1u);
    if (TRANS_B == 0u) { bc[j] = boff + n; } else { bc[j] = boff + n * K; }
  }

  var acc: array<f32, 128>; // [RM][RN]; fully unrolled into registers (loop bounds are overrides)
  for (var i = 0u; i < 128u; i++) { acc[i] = 0.0; }
  for (var k = 0u; k < K; k++) {
    var bv: array<f32, 8>;
    for (var j = 0u; j < RN; j++) { bv[j] = b[bc[j] + k * bstep]; }
    for (var q = 0u; q < RM / 8u; q++) {
      let v = a[ar[q] + k * astep];
      // row 8q + r comes from lane r (the lane index must be a constant)
      var av: array<f32, 8>;
      av[0] = subgroupBroadcast(v, 0u);
      av[1] = subgroupBroadcast(v, 1u);
      av[2] = subgroupBroadcast(v, 2u);
      av[3] = subgroupBroadcast(v, 3u);
      av[4] = subgroupBroadcast(v, 4u);
      av[5] = subgroupBroadcast(v, 5u);
      av[6] = subgroupBroadcast(v, 6u);
      av[7] = subgroupBroadcast(v, 7u);
      for (var r = 0u; r < 8u; r++) {
        let i = q * 8u + r;
        for (var j = 0u; j < RN; j++) { acc[i * RN + j] = fma(av[r], bv[j], acc[i * RN + j]); }
      }
    }
  }

  let coff = z * M * N;
  for (var i = 0u; i < RM; i++) {
    let m = m0 + i;
    if (m >= M) { break; }
    for (var j = 0u; j < RN; j++) {
      let n = nb + j * 64u;
      if (n < N) {
        var v = acc[i * RN + j];
        if (BIAS == 1u) { v += bias[n]; }
        c[coff + m * N + n] = v;
      }
    }
  }
}


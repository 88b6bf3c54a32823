// Batched register-tiled GEMM: c[z] = op(a[z]) @ op(b[z]) (+ bias[n]), op = identity or transpose.
// Bindings: 0 uniforms, 1 a, 2 b, 3 bias (BIAS = 1 only; bound to a otherwise), 4 c.
// a holds each batch's [M, K] matrix ([K, M] when TRANS_A), b its [K, N] ([N, K] when TRANS_B);
// c is contiguous [batch, M, N]. Transposed operands are read in place (only the address strides
// change), so no transpose is ever materialised; any M, N, K (no multiple-of-4 requirement).
// Trick: each invocation accumulates an RM x RN block (16 x 8) of c in registers: RM consecutive
// rows shared by its whole workgroup (rows come from the workgroup id, so every a read has a
// workgroup-uniform address, cheaper than a per-lane load on SIMD back ends such as lavapipe)
// times RN columns of its own, 64 apart (lane-consecutive, so each b read is one coalesced row
// segment across the workgroup). Per k: RN per-lane b loads + RM uniform a loads feed RM * RN
// FMAs; on lavapipe the loads, not the FMAs, bound the loop, so the block is as large as LLVM
// still unrolls into registers. No workgroup memory: on lavapipe reading it back is again a
// per-lane load and staging it costs barriers (the 32 x 32 shared-tile kernel this replaces was
// 2-3.5x slower, bench/NOTES.md). Out-of-range rows and columns are clamped for the loads and
// skipped at the store, so the k loop has no branches.
// Batch dims are coalesced in TypeScript to at most 4 with per-operand strides (0 = broadcast),
// so one pipeline serves shared, broadcast and per-batch operands.
override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;
override BIAS: u32 = 0u;
override RM: u32 = 16u; // rows per invocation (1..16; 32 x 8 exceeds what LLVM unrolls: 10x slower)
override RN: u32 = 8u; // columns per invocation (1..8), 64 apart

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch0: u32, // first batch of this dispatch (batches beyond the z-dimension limit take several)
  tiles_n: u32, // ceil(N / (64 * RN)): column tiles
  tiles: u32,  // tiles_n * ceil(M / RM): tiles per batch
  bshape: vec4<u32>, // coalesced batch extents, outermost first, padded with 1
  astr: vec4<u32>, // element strides of a per batch dim
  bstr: vec4<u32>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
  let t = wid.x + wid.y * nwg.x; // the device splits large tile counts over x and y
  if (t >= p.tiles) { return; }
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

  // Element offsets of each row of a and each column of b at k = 0, and their k strides.
  var ar: array<u32, 16>;
  var astep = 1u;
  if (TRANS_A == 1u) { astep = M; }
  for (var i = 0u; i < RM; i++) {
    let m = min(m0 + i, M - 1u);
    if (TRANS_A == 0u) { ar[i] = aoff + m * K; } else { ar[i] = aoff + m; }
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
    for (var i = 0u; i < RM; i++) {
      let av = a[ar[i] + k * astep];
      for (var j = 0u; j < RN; j++) { acc[i * RN + j] = fma(av, bv[j], acc[i * RN + j]); }
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

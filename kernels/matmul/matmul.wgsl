// Batched tiled GEMM: c[z] = op(a[z]) @ op(b[z]) (+ bias[n]), op = identity or transpose.
// Bindings: 0 uniforms, 1 a, 2 b, 3 bias (BIAS = 1 only; bound to a otherwise), 4 c.
// a holds each batch's [M, K] matrix ([K, M] when TRANS_A), b its [K, N] ([N, K] when TRANS_B);
// c is contiguous [batch, M, N]. Transposed operands are read in place: only the tile loader
// changes, so no transpose is ever materialised.
// Trick: a 32x32 output tile per 64-invocation workgroup, each invocation accumulating a 4x4
// register block (rows 4ly.., cols 4lx..) over 16-deep K tiles staged in workgroup memory as
// vec4s, so each k step is two vec4 reads and four vector FMAs.
// Batch dims are coalesced in TypeScript to at most 4 with per-operand strides (0 = broadcast),
// so one pipeline serves shared, broadcast and per-batch operands.
override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;
override BIAS: u32 = 0u;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch0: u32, // first batch of this dispatch (batches beyond the z-dimension limit take several)
  bshape: vec4<u32>, // coalesced batch extents, outermost first, padded with 1
  astr: vec4<u32>, // element strides of a per batch dim
  bstr: vec4<u32>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TM = 32u;
const TN = 32u;
const TK = 16u;

// Shared tiles stored k-major, 4 consecutive m (or n) per vec4, so the inner product loop
// reads one vec4 of each per k step and does 4 vector FMAs.
var<workgroup> As: array<vec4<f32>, 128>; // [TK][TM / 4]
var<workgroup> Bs: array<vec4<f32>, 128>; // [TK][TN / 4]

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = p.M;
  let N = p.N;
  let K = p.K;
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
  let m0 = wid.y * TM;
  let n0 = wid.x * TN;
  let tid = lid.y * 8u + lid.x;

  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }

  for (var k0 = 0u; k0 < K; k0 += TK) {
    // Each invocation stages 8 of the 512 elements of each tile; the fastest-varying tile
    // index follows the operand's contiguous axis so consecutive invocations read consecutive words.
    for (var r = 0u; r < 8u; r++) {
      let e = tid + r * 64u;
      var mm: u32;
      var kk: u32;
      if (TRANS_A == 0u) { kk = e % TK; mm = e / TK; } else { mm = e % TM; kk = e / TM; }
      let gm = m0 + mm;
      let gk = k0 + kk;
      var v = 0.0;
      if (gm < M && gk < K) {
        if (TRANS_A == 0u) { v = a[aoff + gm * K + gk]; } else { v = a[aoff + gk * M + gm]; }
      }
      As[kk * 8u + mm / 4u][mm % 4u] = v;

      var nn: u32;
      if (TRANS_B == 0u) { nn = e % TN; kk = e / TN; } else { kk = e % TK; nn = e / TK; }
      let gn = n0 + nn;
      let gk2 = k0 + kk;
      var w = 0.0;
      if (gn < N && gk2 < K) {
        if (TRANS_B == 0u) { w = b[boff + gk2 * N + gn]; } else { w = b[boff + gn * K + gk2]; }
      }
      Bs[kk * 8u + nn / 4u][nn % 4u] = w;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let av = As[kk * 8u + lid.y];
      let bv = Bs[kk * 8u + lid.x];
      acc[0] = fma(vec4<f32>(av.x), bv, acc[0]);
      acc[1] = fma(vec4<f32>(av.y), bv, acc[1]);
      acc[2] = fma(vec4<f32>(av.z), bv, acc[2]);
      acc[3] = fma(vec4<f32>(av.w), bv, acc[3]);
    }
    workgroupBarrier();
  }

  let coff = z * M * N;
  for (var i = 0u; i < 4u; i++) {
    let gm = m0 + lid.y * 4u + i;
    if (gm >= M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let gn = n0 + lid.x * 4u + j;
      if (gn >= N) { continue; }
      var v = acc[i][j];
      if (BIAS == 1u) { v += bias[gn]; }
      c[coff + gm * N + gn] = v;
    }
  }
}

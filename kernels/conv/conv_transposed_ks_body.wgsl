// Shared body of conv_transposed_ks.wgsl (portable) and conv_transposed_ks_sg.wgsl (subgroup
// weight spread), spliced in with `// #include "conv/conv_transposed_ks_body"`; the includer
// declares `fn taps(wb, nvalid, cstride, sl) -> array<f32, 32>` (OCB * KW weights w[wb + ch *
// cstride + kw], index ch * KW + kw, channels ch >= nvalid read as channel 0) and the entry points,
// which call run4 / run1 (forward) and grad_run4 / grad_run1 (grad x).
// Transposed conv whose kernel equals its stride (no padding, no output padding): every output
// voxel gets exactly one tap,
//   y[n, oc, KD*d + a, KH*h + b, KW*w + c] = bias[oc] + sum_{ic in group} x[n, ic, d, h, w] * w[ic, oc_g, a, b, c]
// so per (a, b) phase it is a GEMM over the input channels. One invocation: one (n, group, OCB
// channel block, a, b) plane (shared by its workgroup, so the weights are workgroup-uniform),
// one input (d, h) row and 4 input columns w0..w0+3; accumulators acc[co * KW + c] hold the 4
// columns' outputs of channel co at W phase c, which interleave into KW * 4 consecutive outputs
// (KW vec4 stores per channel in run4).
// Grad x is the same GEMM the other way round: dx[n, ic, d, h, w] = sum over oc of the group and
// (a, b, c) of w[ic, oc_g, a, b, c] * dy[n, oc, KD*d + a, KH*h + b, KW*w + c]; one invocation: one
// (n, group, OCB input-channel block) plane, one input row, 4 columns, acc[ic] a vec4 over them;
// per (oc, a, b) it loads the KW * 4 consecutive dy of those columns and the OCB * KW weights.
// Bindings: 0 p, 1 x / x4, 2 w, 3 bias (bound to w when use_bias = 0), 4 y / y4; grad: 2 w,
// 7 dy / 8 dy4, 9 dx / 10 dx4. The vec4 runs (run4, grad_run4) need input W % 4 == 0 and 16-byte
// aligned x / dx and y / dy; run1 and grad_run1 take any W. Uniforms: the forward's shapes for both
// (isz = x's / dx's, osz = y's / dy's); in grad, OCB and nblk count input channels.
override OCB: u32 = 8u;  // output channels per invocation: 4, 8 or 16, OCB * KW <= 32
override KW: u32 = 2u;   // kernel width = W stride: 1 to 8
struct Params {
  batch: u32,
  cin: u32,     // channels of x
  cout: u32,    // channels of y
  cin_g: u32,   // cin / groups
  cout_g: u32,  // cout / groups
  groups: u32,
  nblk: u32,    // ceil(cout_g / OCB)
  tiles: u32,   // ceil(D * H * wtiles / 64)
  wtiles: u32,  // ceil(W / 4)
  use_bias: u32,
  isz: vec4<u32>,  // input D, H, W, D*H*W
  osz: vec4<u32>,  // output D, H, W, D*H*W
  ksz: vec4<u32>,  // kernel (= stride) D, H, W, D*H*W
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> dy: array<f32>;
@group(0) @binding(8) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> dx: array<f32>;
@group(0) @binding(10) var<storage, read_write> dx4: array<vec4<f32>>;

struct Cell {
  live: bool,    // this invocation's columns exist (false: computes cell 0, stores nothing)
  oc0: u32,      // first output channel of the block
  nvalid: u32,   // channels of the block that exist
  nw: u32,       // input columns of the 4 that exist
  xb: u32,       // x[n, g * cin_g, d, h, w0]
  wb: u32,       // w[g * cin_g, ocl, a, b, 0]
  yb: u32,       // y[n, oc0, KD*d + a, KH*h + b, KW*w0]
}

// Whether the workgroup has work (a split launch rounds up to whole rows of workgroups); from
// the workgroup id alone, so the subgroup broadcasts after it stay in uniform control flow.
fn wg_valid(wid: vec3<u32>, nwg: vec3<u32>) -> bool {
  return wid.x + wid.y * nwg.x < p.batch * p.groups * p.nblk * p.ksz.x * p.ksz.y * p.tiles;
}

fn cell_of(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> Cell {
  var c: Cell;
  let wg = wid.x + wid.y * nwg.x;
  let nph = p.ksz.x * p.ksz.y;
  let plane = wg / p.tiles;
  let cell0 = (wg % p.tiles) * 64u + lid.x;  // (d, h, W tile)
  c.live = cell0 < p.isz.x * p.isz.y * p.wtiles;
  let cell = select(0u, cell0, c.live);
  let ph = plane % nph;
  let blk = (plane / nph) % p.nblk;
  let g = (plane / (nph * p.nblk)) % p.groups;
  let n = plane / (nph * p.nblk * p.groups);
  let a = ph / p.ksz.y;
  let b = ph % p.ksz.y;
  let ocl = blk * OCB;
  c.oc0 = g * p.cout_g + ocl;
  c.nvalid = min(OCB, p.cout_g - ocl);
  let row = cell / p.wtiles;  // d * H + h
  let d = row / p.isz.y;
  let h = row % p.isz.y;
  let w0 = (cell % p.wtiles) * 4u;
  c.nw = min(4u, p.isz.z - w0);
  c.xb = (n * p.cin + g * p.cin_g) * p.isz.w + row * p.isz.z + w0;
  c.wb = ((g * p.cin_g) * p.cout_g + ocl) * p.ksz.w + ph * KW;
  c.yb = ((n * p.cout + c.oc0) * p.osz.x + d * p.ksz.x + a) * p.osz.y * p.osz.z + (h * p.ksz.y + b) * p.osz.z + w0 * KW;
  return c;
}

fn out_bias(c: Cell, co: u32) -> f32 {
  if (p.use_bias != 0u) { return bias[c.oc0 + co]; }
  return 0.0;
}

fn run4(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>, sl: u32) {
  if (!wg_valid(wid, nwg)) { return; }
  let c = cell_of(wid, lid, nwg);
  var acc: array<vec4<f32>, 32>;
  for (var j = 0u; j < OCB * KW; j++) { acc[j] = vec4<f32>(0.0); }
  var xi = c.xb / 4u;
  var wb = c.wb;
  let xstep = p.isz.w / 4u;
  let wstep = p.cout_g * p.ksz.w;
  for (var ic = 0u; ic < p.cin_g; ic++) {
    let xv = x4[xi];
    let t = taps(wb, c.nvalid, p.ksz.w, sl);
    for (var j = 0u; j < OCB * KW; j++) { acc[j] += xv * t[j]; }
    xi += xstep;
    wb += wstep;
  }
  if (!c.live) { return; }
  for (var co = 0u; co < OCB; co++) {
    if (co < c.nvalid) {
      let bv = out_bias(c, co);
      let yq = (c.yb + co * p.osz.w) / 4u;
      for (var q = 0u; q < KW; q++) {
        var v: vec4<f32>;
        for (var e = 0u; e < 4u; e++) {
          let o = 4u * q + e;  // output KW*w0 + o: input column o / KW, phase o % KW
          v[e] = acc[co * KW + o % KW][o / KW] + bv;
        }
        y4[yq + q] = v;
      }
    }
  }
}

fn run1(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>, sl: u32) {
  if (!wg_valid(wid, nwg)) { return; }
  let c = cell_of(wid, lid, nwg);
  var acc: array<vec4<f32>, 32>;
  for (var j = 0u; j < OCB * KW; j++) { acc[j] = vec4<f32>(0.0); }
  var xi = c.xb;
  var wb = c.wb;
  let wstep = p.cout_g * p.ksz.w;
  for (var ic = 0u; ic < p.cin_g; ic++) {
    var xv = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) { xv[i] = x[xi + select(0u, i, i < c.nw)]; }
    let t = taps(wb, c.nvalid, p.ksz.w, sl);
    for (var j = 0u; j < OCB * KW; j++) { acc[j] += xv * t[j]; }
    xi += p.isz.w;
    wb += wstep;
  }
  if (!c.live) { return; }
  for (var co = 0u; co < OCB; co++) {
    if (co < c.nvalid) {
      let bv = out_bias(c, co);
      let yr = c.yb + co * p.osz.w;
      for (var i = 0u; i < 4u; i++) {
        if (i < c.nw) {
          for (var k = 0u; k < KW; k++) { y[yr + i * KW + k] = acc[co * KW + k][i] + bv; }
        }
      }
    }
  }
}

// ---- grad x

fn grad_valid(wid: vec3<u32>, nwg: vec3<u32>) -> bool {
  return wid.x + wid.y * nwg.x < p.batch * p.groups * p.nblk * p.tiles;
}

// Cell fields for grad: oc0 = first input channel of the block, xb = dx[n, oc0, d, h, w0],
// wb = w[oc0, 0, 0, 0, 0], yb = dy[n, g * cout_g, KD*d, KH*h, KW*w0].
fn grad_cell(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> Cell {
  var c: Cell;
  let wg = wid.x + wid.y * nwg.x;
  let plane = wg / p.tiles;
  let cell0 = (wg % p.tiles) * 64u + lid.x;
  c.live = cell0 < p.isz.x * p.isz.y * p.wtiles;
  let cell = select(0u, cell0, c.live);
  let blk = plane % p.nblk;
  let g = (plane / p.nblk) % p.groups;
  let n = plane / (p.nblk * p.groups);
  let icl = blk * OCB;
  c.oc0 = g * p.cin_g + icl;
  c.nvalid = min(OCB, p.cin_g - icl);
  let row = cell / p.wtiles;
  let d = row / p.isz.y;
  let h = row % p.isz.y;
  let w0 = (cell % p.wtiles) * 4u;
  c.nw = min(4u, p.isz.z - w0);
  c.xb = (n * p.cin + c.oc0) * p.isz.w + row * p.isz.z + w0;
  c.wb = c.oc0 * p.cout_g * p.ksz.w;
  c.yb = ((n * p.cout + g * p.cout_g) * p.osz.x + d * p.ksz.x) * p.osz.y * p.osz.z + h * p.ksz.y * p.osz.z + w0 * KW;
  return c;
}

// acc[ic] += sum_c t[ic * KW + c] * s[c] (s[c]: the 4 columns' dy at W phase c)
fn grad_step(acc: ptr<function, array<vec4<f32>, 32>>, s: array<vec4<f32>, 8>, t: array<f32, 32>) {
  for (var i = 0u; i < OCB; i++) {
    for (var k = 0u; k < KW; k++) { (*acc)[i] += t[i * KW + k] * s[k]; }
  }
}

fn grad_run4(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>, sl: u32) {
  if (!grad_valid(wid, nwg)) { return; }
  let c = grad_cell(wid, lid, nwg);
  var acc: array<vec4<f32>, 32>;
  for (var j = 0u; j < OCB; j++) { acc[j] = vec4<f32>(0.0); }
  let cstride = p.cout_g * p.ksz.w;
  for (var oc = 0u; oc < p.cout_g; oc++) {
    for (var a = 0u; a < p.ksz.x; a++) {
      for (var b = 0u; b < p.ksz.y; b++) {
        let yo = (c.yb + oc * p.osz.w + a * p.osz.y * p.osz.z + b * p.osz.z) / 4u;
        var seg: array<vec4<f32>, 8>;
        for (var q = 0u; q < KW; q++) { seg[q] = dy4[yo + q]; }
        var s: array<vec4<f32>, 8>;
        for (var k = 0u; k < KW; k++) {
          for (var i = 0u; i < 4u; i++) { let o = KW * i + k; s[k][i] = seg[o / 4u][o % 4u]; }
        }
        grad_step(&acc, s, taps(c.wb + oc * p.ksz.w + (a * p.ksz.y + b) * KW, c.nvalid, cstride, sl));
      }
    }
  }
  if (!c.live) { return; }
  for (var i = 0u; i < OCB; i++) {
    if (i < c.nvalid) { dx4[(c.xb + i * p.isz.w) / 4u] = acc[i]; }
  }
}

fn grad_run1(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>, sl: u32) {
  if (!grad_valid(wid, nwg)) { return; }
  let c = grad_cell(wid, lid, nwg);
  var acc: array<vec4<f32>, 32>;
  for (var j = 0u; j < OCB; j++) { acc[j] = vec4<f32>(0.0); }
  let cstride = p.cout_g * p.ksz.w;
  for (var oc = 0u; oc < p.cout_g; oc++) {
    for (var a = 0u; a < p.ksz.x; a++) {
      for (var b = 0u; b < p.ksz.y; b++) {
        let yo = c.yb + oc * p.osz.w + a * p.osz.y * p.osz.z + b * p.osz.z;
        var s: array<vec4<f32>, 8>;
        for (var k = 0u; k < KW; k++) {
          for (var i = 0u; i < 4u; i++) { s[k][i] = dy[yo + select(0u, KW * i + k, i < c.nw)]; }
        }
        grad_step(&acc, s, taps(c.wb + oc * p.ksz.w + (a * p.ksz.y + b) * KW, c.nvalid, cstride, sl));
      }
    }
  }
  if (!c.live) { return; }
  for (var i = 0u; i < OCB; i++) {
    if (i < c.nvalid) {
      for (var j = 0u; j < 4u; j++) {
        if (j < c.nw) { dx[c.xb + i * p.isz.w + j] = acc[i][j]; }
      }
    }
  }
}

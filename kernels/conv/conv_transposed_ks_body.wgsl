// Shared body of conv_transposed_ks.wgsl (portable) and conv_transposed_ks_sg.wgsl (subgroup
// weight spread), spliced in with `// #include "conv/conv_transposed_ks_body"`; the includer
// declares `fn taps(wb, nvalid, cstride, sl) -> array<f32, 32>` (OCB * KW weights w[wb + ch *
// cstride + kw], index ch * KW + kw, channels ch >= nvalid read as channel 0) and the entry points,
// which call run4 / run1.
// Transposed conv whose kernel equals its stride (no padding, no output padding): every output
// voxel gets exactly one tap,
//   y[n, oc, KD*d + a, KH*h + b, KW*w + c] = bias[oc] + sum_{ic in group} x[n, ic, d, h, w] * w[ic, oc_g, a, b, c]
// so per (a, b) phase it is a GEMM over the input channels. One invocation: one (n, group, OCB
// channel block, a, b) plane (shared by its workgroup, so the weights are workgroup-uniform),
// one input (d, h) row and 4 input columns w0..w0+3; accumulators acc[co * KW + c] hold the 4
// columns' outputs of channel co at W phase c, which interleave into KW * 4 consecutive outputs
// (KW vec4 stores per channel in run4).
// Uniforms and bindings: conv_io.wgsl's (0 p, 1 x, 2 w, 3 bias bound to w when use_bias = 0, 4 y;
// a W tile is 4 input columns, wtiles = ceil(W / 4); stride = ksz, no pad) and 5 x4, 6 y4. run4 (x4, y4:
// vec4 loads and stores) needs input W % 4 == 0 and 16-byte aligned x and y; run1 takes any W.
override OCB: u32 = 8u;  // output channels per invocation: 4, 8 or 16, OCB * KW <= 32
override KW: u32 = 2u;   // kernel width = W stride: 1 to 8
// #include "conv/conv_io"
@group(0) @binding(5) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4<f32>>;

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


enable subgroups;
// conv_grad_weight.wgsl with the A reads spread over a subgroup; same formula, bindings and
// uniforms (conv_grad_weight.wgsl documents them), overrides OCB (up to 16) and CPI (up to 8);
// entry main_win also shares the B loads of a row's W taps (a sliding window, below).
// conv_grad_weight.wgsl stays the portable kernel. Needs subgroups of at least 8 lanes: the
// caller checks Device.subgroupSize.
// Why: every A value a workgroup reads is at a workgroup-uniform address, and on lavapipe such a
// load is still a per-lane gather (bench/NOTES.md), so the OCB A loads per output position bound
// conv_grad_weight's loop. Here lane l loads A channel l % 8 (and 8 + l % 8 when OCB = 16), one
// or two loads per position, and subgroupBroadcast from lanes 0..7 hands every lane all OCB
// values: per position CPI + OCB / 8 loads feed CPI × OCB FMAs (portable: CPI + OCB).
// Uniformity: the broadcasts need every lane, so no lane leaves early (columns past the last
// one are masked and not stored); the row and ow loops have workgroup-uniform bounds, and a
// workgroup shares one A channel block, so all lanes agree on the A values.
override OCB: u32 = 4u;  // A channels per invocation, a multiple of 4 (at most 16)
override CPI: u32 = 1u;  // main: (b, k) columns per invocation, 1 to 8 (CPI * OCB <= 128)
// main_win: ROWS (b, kd, kh) rows of all KW W taps per invocation (ROWS * KW columns, at most 8
// rows and ROWS * KW * OCB <= 144), the B values of a row kept in a window of (KW - 1) * DW + 1
// columns that slides SW along with ow: SW loads per row and position instead of KW (SW < window)
override ROWS: u32 = 1u;
override KW: u32 = 1u;  // kernel width
override SW: u32 = 1u;  // W stride
override DW: u32 = 1u;  // W dilation
const MAXL = 8u;        // the window, at most

struct Params {
  ac: u32,
  bc: u32,
  ac_g: u32,
  bc_g: u32,
  groups: u32,
  nblk: u32,
  ctiles: u32,
  wn: u32,
  nchunks: u32,
  rows_per_chunk: u32,
  rows: u32,
  asz: vec4<u32>,
  bsz: vec4<u32>,
  ksz: vec4<u32>,
  stride: vec4<u32>,
  pad: vec4<u32>,
  dil: vec4<u32>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

// OCB/4 quads of A values: lane l holds u = channel l % 8, v = channel 8 + l % 8.
fn spread(u: f32, v: f32) -> array<vec4<f32>, 4> {
  var q: array<vec4<f32>, 4>;
  q[0] = vec4<f32>(subgroupBroadcast(u, 0u), subgroupBroadcast(u, 1u), subgroupBroadcast(u, 2u), subgroupBroadcast(u, 3u));
  if (OCB > 4u) { q[1] = vec4<f32>(subgroupBroadcast(u, 4u), subgroupBroadcast(u, 5u), subgroupBroadcast(u, 6u), subgroupBroadcast(u, 7u)); }
  if (OCB > 8u) {
    q[2] = vec4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u));
    q[3] = vec4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
  }
  return q;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= p.nchunks * p.groups * p.nblk * p.ctiles) { return; }  // whole workgroups only
  let kvol = p.ksz.w;
  let ncol = p.bc_g * kvol;
  let col0 = ((wg % p.ctiles) * 64u + lid.x) * CPI;
  let blk = (wg / p.ctiles) % p.nblk;
  let g = (wg / (p.ctiles * p.nblk)) % p.groups;
  let chunk = wg / (p.ctiles * p.nblk * p.groups);
  let al = blk * OCB;
  let a0 = g * p.ac_g + al;
  let nvalid = min(OCB, p.ac_g - al);
  // This lane's two A channels (past the group's last one: the block's first, not stored)
  let la = sl % 8u;
  let aoa = select(a0, a0 + la, la < nvalid) * p.asz.w;
  let aob = select(a0, a0 + 8u + la, 8u + la < nvalid) * p.asz.w;

  let s = vec3<i32>(p.stride.xyz);
  let bz = vec3<i32>(p.bsz.xyz);
  // Per column c: its B offset (d, h, w) from the output position times stride, and its B row
  // offset; columns past the last one (also whole dead lanes) read column 0 masked.
  var off: array<vec3<i32>, 8>;
  var boff: array<i32, 8>;
  var cok: array<bool, 8>;
  for (var c = 0u; c < CPI; c++) {
    cok[c] = col0 + c < ncol;
    let col = select(0u, col0 + c, cok[c]);
    let bl = col / kvol;
    let k = col % kvol;
    let kw = i32(k % p.ksz.z);
    let kh = i32((k / p.ksz.z) % p.ksz.y);
    let kd = i32(k / (p.ksz.z * p.ksz.y));
    off[c] = vec3<i32>(kd * i32(p.dil.x), kh * i32(p.dil.y), kw * i32(p.dil.z)) - vec3<i32>(p.pad.xyz);
    boff[c] = i32((g * p.bc_g + bl) * p.bsz.w) + (off[c].x * bz.y + off[c].y) * bz.z;
  }

  var acc: array<vec4<f32>, 32>;  // [c * OCB / 4 + j]
  for (var j = 0u; j < CPI * OCB / 4u; j++) { acc[j] = vec4<f32>(0.0); }
  let r0 = chunk * p.rows_per_chunk;
  let r1 = min(p.rows, r0 + p.rows_per_chunk);
  let adh = p.asz.x * p.asz.y;
  for (var r = r0; r < r1; r++) {
    let n = r / adh;
    let od = (r % adh) / p.asz.y;
    let oh = r % p.asz.y;
    let sd = i32(od) * s.x;
    let sh = i32(oh) * s.y;
    let nrow = i32(n * p.bc * p.bsz.w) + (sd * bz.y + sh) * bz.z;
    var rok: array<bool, 8>;
    var brow: array<i32, 8>;
    for (var c = 0u; c < CPI; c++) {
      let id = sd + off[c].x;
      let ih = sh + off[c].y;
      rok[c] = cok[c] && id >= 0 && id < bz.x && ih >= 0 && ih < bz.y;
      brow[c] = nrow + boff[c];
    }
    let arow = n * p.ac * p.asz.w + (od * p.asz.y + oh) * p.asz.z;
    var sw = 0;
    for (var ow = 0u; ow < p.asz.z; ow++) {
      var bv: array<f32, 8>;
      for (var c = 0u; c < CPI; c++) {
        let iw = sw + off[c].z;
        let ok = rok[c] && iw >= 0 && iw < bz.z;
        bv[c] = select(0.0, b[u32(select(0, brow[c] + iw, ok))], ok);
      }
      let ai = arow + ow;
      var v = 0.0;
      if (OCB > 8u) { v = a[aob + ai]; }
      let q = spread(a[aoa + ai], v);
      for (var j = 0u; j < OCB / 4u; j++) {
        for (var c = 0u; c < CPI; c++) { acc[c * (OCB / 4u) + j] += bv[c] * q[j]; }
      }
      sw += s.z;
    }
  }
  let pi = chunk * p.wn + a0 * ncol + col0;
  for (var c = 0u; c < CPI; c++) {
    if (cok[c]) {
      for (var j = 0u; j < OCB; j++) {
        if (j < nvalid) { part[pi + c + j * ncol] = acc[c * (OCB / 4u) + j / 4u][j % 4u]; }
      }
    }
  }
}

@compute @workgroup_size(64)
fn main_win(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= p.nchunks * p.groups * p.nblk * p.ctiles) { return; }
  let kvol = p.ksz.w;
  let ncol = p.bc_g * kvol;
  let nrow = ncol / KW;  // columns (b, kd, kh, kw) grouped by row (b, kd, kh)
  let rr0 = ((wg % p.ctiles) * 64u + lid.x) * ROWS;
  let blk = (wg / p.ctiles) % p.nblk;
  let g = (wg / (p.ctiles * p.nblk)) % p.groups;
  let chunk = wg / (p.ctiles * p.nblk * p.groups);
  let al = blk * OCB;
  let a0 = g * p.ac_g + al;
  let nvalid = min(OCB, p.ac_g - al);
  let la = sl % 8u;
  let aoa = select(a0, a0 + la, la < nvalid) * p.asz.w;
  let aob = select(a0, a0 + 8u + la, 8u + la < nvalid) * p.asz.w;
  let bz = vec3<i32>(p.bsz.xyz);
  let L = (KW - 1u) * DW + 1u;
  var offd: array<i32, 8>;
  var offh: array<i32, 8>;
  var boff: array<i32, 8>;
  var rvalid: array<bool, 8>;
  let kdh = p.ksz.x * p.ksz.y;
  for (var q = 0u; q < ROWS; q++) {
    rvalid[q] = rr0 + q < nrow;
    let rr = select(0u, rr0 + q, rvalid[q]);
    let bl = rr / kdh;
    let kh = i32((rr % kdh) % p.ksz.y);
    let kd = i32((rr % kdh) / p.ksz.y);
    offd[q] = kd * i32(p.dil.x) - i32(p.pad.x);
    offh[q] = kh * i32(p.dil.y) - i32(p.pad.y);
    boff[q] = i32((g * p.bc_g + bl) * p.bsz.w) + (offd[q] * bz.y + offh[q]) * bz.z;
  }
  var acc: array<vec4<f32>, 36>;  // [(q * KW + k) * OCB / 4 + j]: row q, tap k, channel quad j
  for (var j = 0u; j < ROWS * KW * OCB / 4u; j++) { acc[j] = vec4<f32>(0.0); }
  let r0 = chunk * p.rows_per_chunk;
  let r1 = min(p.rows, r0 + p.rows_per_chunk);
  let adh = p.asz.x * p.asz.y;
  let pw = i32(p.pad.z);
  for (var r = r0; r < r1; r++) {
    let n = r / adh;
    let od = (r % adh) / p.asz.y;
    let oh = r % p.asz.y;
    let sd = i32(od * p.stride.x);
    let sh = i32(oh * p.stride.y);
    let nb = i32(n * p.bc * p.bsz.w) + (sd * bz.y + sh) * bz.z;
    var rok: array<bool, 8>;
    var brow: array<i32, 8>;
    for (var q = 0u; q < ROWS; q++) {
      let id = sd + offd[q];
      let ih = sh + offh[q];
      rok[q] = rvalid[q] && id >= 0 && id < bz.x && ih >= 0 && ih < bz.y;
      brow[q] = nb + boff[q];
    }
    // window t of row q holds B column ow * SW - pad + t (masked outside the volume); the first
    // L - SW are filled here and kept by the shift at the end of each ow step
    var win: array<array<f32, MAXL>, 8>;
    for (var q = 0u; q < ROWS; q++) {
      for (var t = 0u; t + SW < L; t++) {
        let iw = i32(t) - pw;
        let ok = rok[q] && iw >= 0 && iw < bz.z;
        win[q][t] = select(0.0, b[u32(select(0, brow[q] + iw, ok))], ok);
      }
    }
    let arow = n * p.ac * p.asz.w + (od * p.asz.y + oh) * p.asz.z;
    var sw = -pw;
    for (var ow = 0u; ow < p.asz.z; ow++) {
      for (var q = 0u; q < ROWS; q++) {
        for (var t = select(0u, L - SW, L > SW); t < L; t++) {
          let iw = sw + i32(t);
          let ok = rok[q] && iw >= 0 && iw < bz.z;
          win[q][t] = select(0.0, b[u32(select(0, brow[q] + iw, ok))], ok);
        }
      }
      let ai = arow + ow;
      var v = 0.0;
      if (OCB > 8u) { v = a[aob + ai]; }
      let qa = spread(a[aoa + ai], v);
      for (var q = 0u; q < ROWS; q++) {
        for (var k = 0u; k < KW; k++) {
          let bv = win[q][k * DW];
          for (var j = 0u; j < OCB / 4u; j++) { acc[(q * KW + k) * (OCB / 4u) + j] += bv * qa[j]; }
        }
      }
      for (var q = 0u; q < ROWS; q++) {
        for (var t = 0u; t + SW < L; t++) { win[q][t] = win[q][t + SW]; }
      }
      sw += i32(SW);
    }
  }
  let pi = chunk * p.wn + a0 * ncol + rr0 * KW;
  for (var q = 0u; q < ROWS; q++) {
    if (rvalid[q]) {
      for (var k = 0u; k < KW; k++) {
        for (var j = 0u; j < OCB; j++) {
          if (j < nvalid) { part[pi + q * KW + k + j * ncol] = acc[(q * KW + k) * (OCB / 4u) + j / 4u][j % 4u]; }
        }
      }
    }
  }
}

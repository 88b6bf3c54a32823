// Nearest / (bi,tri)linear resampling of a tensor viewed as [NC, D, H, W] (2D passes D = 1 and
// 1D D = H = 1: a size-1 dim maps onto itself in every mode), F.interpolate semantics.
// MODE 0 nearest: src = min(floor(dst * r), in - 1) (PyTorch 'nearest', not nearest-exact).
// MODE 1 linear: src = r * (dst + 0.5) - 0.5 clamped at 0 (align = 0) or src = r * dst
// (align = 1, align_corners=True); taps floor(src) and the next one, clamped at the edge.
// r is the source-per-destination ratio per dim, computed by the op as PyTorch does.
// Bindings: 0 uniforms, 1 src (x), 2 dst (y), 3 dst4 (the *4 / *8 entries: y as vec4s), 4 src4
// (main2x8: x as vec4s).
// Entries: mainh4 / mainh any ratio and mode; main2x8 / main2x4 / main2x linear ×2 (align_corners=False);
// near2x4 nearest ×2. On llvmpipe every load is a per-lane gather and every store is scalarised
// per lane, so each path is built to load every input as few times as it can.
// Forward only: the backward is upsample_axis.wgsl (one adjoint pass per axis).
override MODE: u32 = 0u;
struct Params {
  ind: vec4<u32>,   // input D, H, W
  outd: vec4<u32>,  // output D, H, W
  ratio: vec4<f32>, // source pixels per destination pixel along D, H, W
  align: u32,       // 1: align_corners=True
  n: u32,           // blocks (invocation work items) of the entry
  x2: u32,          // main2x: bit 0 D doubled (else D out = in), bit 1 H doubled (else H out = in)
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst4: array<vec4<f32>>;

// The two input taps of output o along one dim and their weights (nearest: one tap, weight 1).
struct Tap { i0: u32, i1: u32, l0: f32, l1: f32 }

fn tap(o: u32, size: u32, r: f32) -> Tap {
  if (MODE == 0u) {
    let j = min(u32(floor(f32(o) * r)), size - 1u);
    return Tap(j, j, 1.0, 0.0);
  }
  var s = r * f32(o);
  if (p.align == 0u) { s = max(r * (f32(o) + 0.5) - 0.5, 0.0); }
  let i0 = min(u32(s), size - 1u); // s >= 0, so the cast floors
  let l1 = s - f32(i0);
  return Tap(i0, min(i0 + 1u, size - 1u), 1.0 - l1, l1);
}

// ×2 fast path: linear, align_corners=False, W out = 2 W in, and D and H each doubled or kept.
// Doubled, outputs 2b - 1 and 2b both read inputs b - 1 and b (clamped at the edges, where the
// clamped taps give PyTorch's edge values), weights (0.75, 0.25) and (0.25, 0.75): a block b of a
// doubled dim is that output pair (b = 0 .. in, the pair's outputs outside [0, 2 in) dropped);
// a kept dim's block b is output b reading input b. One invocation per D block × H block × W
// block k (outputs 4k - 1 .. 4k + 2 from input columns 2k - 1 .. 2k + 1): 2 × 2 × 3 = 12 loads for
// 16 outputs, against 4 per output for separate taps; on llvmpipe every load is a per-lane
// gather, so the load count per output is what this path cuts. Consecutive invocations take
// consecutive k (neighbouring memory in each row); a grid-stride loop advances the block by a
// mixed-radix add, since u32 division by a uniform is scalarised per lane on llvmpipe.
struct Blk { k: u32, bh: u32, bd: u32, nc: u32 }

// Blocks along D, H, W: wb W blocks (main2x ind.z / 2 + 1, main2x4 ind.z / 2).
fn x2_blocks(wb: u32) -> vec3<u32> {
  let dd = (p.x2 & 1u) != 0u;
  let dh = (p.x2 & 2u) != 0u;
  return vec3<u32>(select(p.ind.x, p.ind.x + 1u, dd), select(p.ind.y, p.ind.y + 1u, dh), wb);
}

fn x2_decode(i: u32, nb: vec3<u32>) -> Blk {
  let t = i / nb.z;
  let t2 = t / nb.y;
  return Blk(i % nb.z, t % nb.y, t2 % nb.x, t2 / nb.x);
}

// a + b digit by digit, each digit below its radix in both (one conditional subtraction).
fn x2_advance(a: Blk, b: Blk, nb: vec3<u32>) -> Blk {
  var k = a.k + b.k;
  let ck = select(0u, 1u, k >= nb.z);
  k -= ck * nb.z;
  var bh = a.bh + b.bh + ck;
  let ch = select(0u, 1u, bh >= nb.y);
  bh -= ch * nb.y;
  var bd = a.bd + b.bd + ch;
  let cd = select(0u, 1u, bd >= nb.x);
  bd -= cd * nb.x;
  return Blk(k, bh, bd, a.nc + b.nc + cd);
}

// One dim's block: input taps a0, a1 and the output indices lo (the 0.75 / 0.25 output; only
// when doubled) and hi (0.25 / 0.75); an index >= out marks an output to drop.
struct Pair { a0: u32, a1: u32, lo: u32, hi: u32 }

fn x2_pair(b: u32, size: u32, doubled: bool) -> Pair {
  if (!doubled) { return Pair(b, b, 0xffffffffu, b); }
  return Pair(max(b, 1u) - 1u, min(b, size - 1u), select(2u * b - 1u, 0xffffffffu, b == 0u), 2u * b);
}

// The 4 W outputs 4k - 1 .. 4k + 2 of one output row from its blended columns 2k - 1, 2k, 2k + 1.
fn x2_row(c: vec3<f32>, o: u32, k: u32) {
  let ow = p.outd.z;
  let w = 4u * k;
  if (k > 0u) { dst[o + w - 1u] = 0.75 * c.x + 0.25 * c.y; }
  if (w < ow) { dst[o + w] = 0.25 * c.x + 0.75 * c.y; }
  if (w + 1u < ow) { dst[o + w + 1u] = 0.75 * c.y + 0.25 * c.z; }
  if (w + 2u < ow) { dst[o + w + 2u] = 0.25 * c.y + 0.75 * c.z; }
}

// Input columns 2k - 1 .. 2k + 1 (clamped) of input row r.
fn x2_cols(r: u32, k: u32) -> vec3<f32> {
  let last = p.ind.z - 1u;
  return vec3<f32>(src[r + max(2u * k, 1u) - 1u], src[r + min(2u * k, last)], src[r + min(2u * k + 1u, last)]);
}

@compute @workgroup_size(64)
fn main2x(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  let nb = x2_blocks(p.ind.z / 2u + 1u);
  let step = x2_decode(stride, nb);
  var i = gid.x + gid.y * nwg.x * 64u;
  var at = x2_decode(i, nb);
  let dd = (p.x2 & 1u) != 0u;
  let dh = (p.x2 & 2u) != 0u;
  for (; i < p.n; i += stride) {
    let pd = x2_pair(at.bd, p.ind.x, dd);
    let ph = x2_pair(at.bh, p.ind.y, dh);
    let base = at.nc * p.ind.x * p.ind.y * p.ind.z;
    let p0 = base + pd.a0 * p.ind.y * p.ind.z;
    let p1 = base + pd.a1 * p.ind.y * p.ind.z;
    // the 2 × 2 input rows, blended over H into the block's (up to) 2 output rows per D tap
    let c00 = x2_cols(p0 + ph.a0 * p.ind.z, at.k);
    let c01 = x2_cols(p0 + ph.a1 * p.ind.z, at.k);
    let c10 = x2_cols(p1 + ph.a0 * p.ind.z, at.k);
    let c11 = x2_cols(p1 + ph.a1 * p.ind.z, at.k);
    let hhi0 = 0.25 * c00 + 0.75 * c01; // output row ph.hi over D tap 0
    let hhi1 = 0.25 * c10 + 0.75 * c11;
    let hlo0 = 0.75 * c00 + 0.25 * c01; // output row ph.lo
    let hlo1 = 0.75 * c10 + 0.25 * c11;
    let plane = p.outd.y * p.outd.z;
    let nco = at.nc * p.outd.x * plane;
    // output planes pd.hi and pd.lo (a kept dim has a0 = a1, so any weights summing to 1 do)
    if (pd.hi < p.outd.x) {
      let o = nco + pd.hi * plane;
      if (ph.hi < p.outd.y) { x2_row(0.25 * hhi0 + 0.75 * hhi1, o + ph.hi * p.outd.z, at.k); }
      if (ph.lo < p.outd.y) { x2_row(0.25 * hlo0 + 0.75 * hlo1, o + ph.lo * p.outd.z, at.k); }
    }
    if (pd.lo < p.outd.x) {
      let o = nco + pd.lo * plane;
      if (ph.hi < p.outd.y) { x2_row(0.75 * hhi0 + 0.25 * hhi1, o + ph.hi * p.outd.z, at.k); }
      if (ph.lo < p.outd.y) { x2_row(0.75 * hlo0 + 0.25 * hlo1, o + ph.lo * p.outd.z, at.k); }
    }
    at = x2_advance(at, step, nb);
  }
}

// main2x for an even input W (output W a multiple of 4): block k is outputs 4k .. 4k + 3 from
// columns 2k − 1 .. 2k + 2, stored as vec4 k of its row (16-byte stores; on llvmpipe ≈ 1.25× over
// scalar ones, H3 step 3c); 16 loads for 16 outputs and no masking along W.
fn x2_row4(r: u32, k: u32) -> vec4<f32> {
  let last = p.ind.z - 1u;
  let w = 2u * k;
  return vec4<f32>(src[r + max(w, 1u) - 1u], src[r + w], src[r + w + 1u], src[r + min(w + 2u, last)]);
}

fn x2_mix4(c: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(0.25 * c.x + 0.75 * c.y, 0.75 * c.y + 0.25 * c.z, 0.25 * c.y + 0.75 * c.z, 0.75 * c.z + 0.25 * c.w);
}

// Invocations of main2x4 walk HSEG consecutive H blocks: for a doubled H, block bh + 1's first input
// row is block bh's second, so each step loads one new row per D tap (8 loads per 16 outputs).
override HSEG: u32 = 8u;

@compute @workgroup_size(64)
fn main2x4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  let hb = x2_blocks(0u).y;
  // digits: W block k, H segment, D block, nc
  let nb = vec3<u32>(x2_blocks(0u).x, (hb + HSEG - 1u) / HSEG, p.ind.z / 2u);
  let step = x2_decode(stride, nb);
  var i = gid.x + gid.y * nwg.x * 64u;
  var at = x2_decode(i, nb);
  let dd = (p.x2 & 1u) != 0u;
  let dh = (p.x2 & 2u) != 0u;
  let row4 = p.outd.z / 4u;
  for (; i < p.n; i += stride) {
    let pd = x2_pair(at.bd, p.ind.x, dd);
    let base = at.nc * p.ind.x * p.ind.y * p.ind.z;
    let p0 = base + pd.a0 * p.ind.y * p.ind.z;
    let p1 = base + pd.a1 * p.ind.y * p.ind.z;
    let nco = at.nc * p.outd.x * p.outd.y;
    let ohi = (nco + pd.hi * p.outd.y) * row4 + at.k;
    let olo = (nco + pd.lo * p.outd.y) * row4 + at.k;
    let h0 = at.bh * HSEG;
    let h1 = min(h0 + HSEG, hb);
    // the rows of block h0's first H tap; later blocks reuse the previous block's second
    let first = x2_pair(h0, p.ind.y, dh);
    var c00 = x2_row4(p0 + first.a0 * p.ind.z, at.k);
    var c10 = x2_row4(p1 + first.a0 * p.ind.z, at.k);
    for (var bh = h0; bh < h1; bh++) {
      let ph = x2_pair(bh, p.ind.y, dh);
      let c01 = x2_row4(p0 + ph.a1 * p.ind.z, at.k);
      let c11 = x2_row4(p1 + ph.a1 * p.ind.z, at.k);
      if (!dh) { c00 = c01; c10 = c11; } // kept H: both taps are row bh
      let hhi0 = 0.25 * c00 + 0.75 * c01;
      let hhi1 = 0.25 * c10 + 0.75 * c11;
      let hlo0 = 0.75 * c00 + 0.25 * c01;
      let hlo1 = 0.75 * c10 + 0.25 * c11;
      if (pd.hi < p.outd.x) {
        if (ph.hi < p.outd.y) { dst4[ohi + ph.hi * row4] = x2_mix4(0.25 * hhi0 + 0.75 * hhi1); }
        if (ph.lo < p.outd.y) { dst4[ohi + ph.lo * row4] = x2_mix4(0.25 * hlo0 + 0.75 * hlo1); }
      }
      if (pd.lo < p.outd.x) {
        if (ph.hi < p.outd.y) { dst4[olo + ph.hi * row4] = x2_mix4(0.75 * hhi0 + 0.25 * hhi1); }
        if (ph.lo < p.outd.y) { dst4[olo + ph.lo * row4] = x2_mix4(0.75 * hlo0 + 0.25 * hlo1); }
      }
      c00 = c01;
      c10 = c11;
    }
    at = x2_advance(at, step, nb);
  }
}

// main2x for an input W that is a multiple of 4 (main2x8): an invocation owns input quad m of
// each row, read as one vec4 (lanes on consecutive quads: contiguous 16-byte loads) plus the two
// neighbouring columns 4m − 1 and 4m + 4 (clamped), expanded along W into outputs 8m .. 8m + 7
// (two vec4 stores per output row). Along H it walks HSEG input rows i (a doubled H: output rows
// 2i and 2i + 1 from rows i − 1, i, i + 1, one new row per step), D as main2x4's pairs. So each
// step loads 2 vec4 + 4 scalars for 8 vec4 stores (main2x4: 8 scalars for 4).
@group(0) @binding(4) var<storage, read> src4: array<vec4<f32>>;

struct Oct { a: vec4<f32>, b: vec4<f32> }

// Input row r (offset of its first element, a multiple of 4), quad m, W-expanded.
fn x2_oct(r: u32, m: u32) -> Oct {
  let v = src4[r / 4u + m];
  let l = src[r + max(4u * m, 1u) - 1u];
  let rt = src[r + min(4u * m + 4u, p.ind.z - 1u)];
  return Oct(
    vec4<f32>(0.25 * l + 0.75 * v.x, 0.75 * v.x + 0.25 * v.y, 0.25 * v.x + 0.75 * v.y, 0.75 * v.y + 0.25 * v.z),
    vec4<f32>(0.25 * v.y + 0.75 * v.z, 0.75 * v.z + 0.25 * v.w, 0.25 * v.z + 0.75 * v.w, 0.75 * v.w + 0.25 * rt));
}

fn mix_oct(a: Oct, b: Oct, wa: f32, wb: f32) -> Oct {
  return Oct(wa * a.a + wb * b.a, wa * a.b + wb * b.b);
}

// Row offset row of input planes p0 and p1 (D taps), quad m, blended for the output planes lo
// (0.75, 0.25) and hi (0.25, 0.75); a kept D (p0 = p1) loads the row once.
struct DRow { lo: Oct, hi: Oct }

fn x2_drow(p0: u32, p1: u32, row: u32, m: u32, dd: bool) -> DRow {
  let a = x2_oct(p0 + row, m);
  if (!dd) { return DRow(a, a); }
  let b = x2_oct(p1 + row, m);
  return DRow(mix_oct(a, b, 0.75, 0.25), mix_oct(a, b, 0.25, 0.75));
}

fn put_oct(o: u32, v: Oct) {
  dst4[o] = v.a;
  dst4[o + 1u] = v.b;
}

@compute @workgroup_size(64)
fn main2x8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  let dd = (p.x2 & 1u) != 0u;
  let dh = (p.x2 & 2u) != 0u;
  // digits: W quad m, H segment, D block, nc
  let nb = vec3<u32>(x2_blocks(0u).x, (p.ind.y + HSEG - 1u) / HSEG, p.ind.z / 4u);
  let step = x2_decode(stride, nb);
  var i = gid.x + gid.y * nwg.x * 64u;
  var at = x2_decode(i, nb);
  let row4 = p.outd.z / 4u;
  let W = p.ind.z;
  let H = p.ind.y;
  for (; i < p.n; i += stride) {
    let pd = x2_pair(at.bd, p.ind.x, dd);
    let base = at.nc * p.ind.x * H * W;
    let p0 = base + pd.a0 * H * W;
    let p1 = base + pd.a1 * H * W;
    let nco = at.nc * p.outd.x * p.outd.y;
    let ohi = (nco + pd.hi * p.outd.y) * row4 + 2u * at.k;
    let olo = (nco + pd.lo * p.outd.y) * row4 + 2u * at.k;
    let whi = pd.hi < p.outd.x;
    let wlo = pd.lo < p.outd.x;
    let h0 = at.bh * HSEG;
    let h1 = min(h0 + HSEG, H);
    // D-blended rows: lo for output plane pd.lo (0.75, 0.25), hi for pd.hi (0.25, 0.75)
    var pv: DRow;
    var cv: DRow;
    if (dh) {
      pv = x2_drow(p0, p1, (max(h0, 1u) - 1u) * W, at.k, dd);
      cv = x2_drow(p0, p1, h0 * W, at.k, dd);
    }
    for (var h = h0; h < h1; h++) {
      if (dh) {
        // output rows 2h (0.25 row h − 1 + 0.75 row h) and 2h + 1 (0.75 row h + 0.25 row h + 1)
        let nv = x2_drow(p0, p1, min(h + 1u, H - 1u) * W, at.k, dd);
        let r0 = 2u * h * row4;
        if (whi) {
          put_oct(ohi + r0, mix_oct(pv.hi, cv.hi, 0.25, 0.75));
          put_oct(ohi + r0 + row4, mix_oct(cv.hi, nv.hi, 0.75, 0.25));
        }
        if (wlo) {
          put_oct(olo + r0, mix_oct(pv.lo, cv.lo, 0.25, 0.75));
          put_oct(olo + r0 + row4, mix_oct(cv.lo, nv.lo, 0.75, 0.25));
        }
        pv = cv;
        cv = nv;
      } else {
        // kept H: output row h is input row h
        let nv = x2_drow(p0, p1, h * W, at.k, dd);
        if (whi) { put_oct(ohi + h * row4, nv.hi); }
        if (wlo) { put_oct(olo + h * row4, nv.lo); }
      }
    }
    at = x2_advance(at, step, nb);
  }
}

// Nearest ×2 fast path for an even input W (output W a multiple of 4): W doubled, D and H each
// doubled or kept. One invocation per input pair (2k, 2k + 1) of input row (nc, d, h): 2 loads,
// the vec4 (a, a, b, b) stored to the 1, 2 or 4 output rows that copy that input row.
@compute @workgroup_size(64)
fn near2x4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  let nb = vec3<u32>(p.ind.x, p.ind.y, p.ind.z / 2u);
  let step = x2_decode(stride, nb);
  var i = gid.x + gid.y * nwg.x * 64u;
  var at = x2_decode(i, nb);
  let dd = (p.x2 & 1u) != 0u;
  let dh = (p.x2 & 2u) != 0u;
  let row4 = p.outd.z / 4u;
  let plane4 = p.outd.y * row4;
  for (; i < p.n; i += stride) {
    let r = ((at.nc * p.ind.x + at.bd) * p.ind.y + at.bh) * p.ind.z + 2u * at.k;
    let a = src[r];
    let b = src[r + 1u];
    let v = vec4<f32>(a, a, b, b);
    let od = select(at.bd, 2u * at.bd, dd);
    let oh = select(at.bh, 2u * at.bh, dh);
    let o = ((at.nc * p.outd.x + od) * p.outd.y + oh) * row4 + at.k;
    dst4[o] = v;
    if (dh) { dst4[o + row4] = v; }
    if (dd) {
      dst4[o + plane4] = v;
      if (dh) { dst4[o + plane4 + row4] = v; }
    }
    at = x2_advance(at, step, nb);
  }
}

// General fast path (any ratio and mode): one invocation per W quad (outputs 4q .. 4q + 3) of
// HSEG consecutive output rows of one output plane (nc, od), walking down H. Each input row it
// needs is blended over D and W into the quad's 4 values once (rowq: the quad's W taps span a
// window of COLS input columns, 2 loads per column), and kept while the H taps stay on it (taps
// never move backwards): upsampling along H by s reuses each row for s output rows.
override COLS: u32 = 4u;

// The invocation's fixed part: D planes and weights, the W window and its 4 outputs' taps.
struct Walk { p0: u32, p1: u32, wd0: f32, wd1: f32, c0: u32, win: bool, t0: Tap, t1: Tap, t2: Tap, t3: Tap }

fn dw(w: Walk, row: u32, c: u32) -> f32 {
  if (MODE == 0u) { return src[w.p0 + row + c]; }
  return w.wd0 * src[w.p0 + row + c] + w.wd1 * src[w.p1 + row + c];
}

fn pick(col: ptr<function, array<f32, 8>>, d: u32) -> f32 {
  var v = (*col)[0];
  for (var j = 1u; j < COLS; j++) { v = select(v, (*col)[j], d == j); }
  return v;
}

fn wmix(col: ptr<function, array<f32, 8>>, t: Tap, c0: u32) -> f32 {
  if (MODE == 0u) { return pick(col, t.i0 - c0); }
  return t.l0 * pick(col, t.i0 - c0) + t.l1 * pick(col, t.i1 - c0);
}

fn wdirect(w: Walk, row: u32, t: Tap) -> f32 {
  if (MODE == 0u) { return dw(w, row, t.i0); }
  return t.l0 * dw(w, row, t.i0) + t.l1 * dw(w, row, t.i1);
}

// Input row h (offset row = h * W in) blended over D and W into the quad's 4 outputs.
fn rowq(w: Walk, h: u32) -> vec4<f32> {
  let row = h * p.ind.z;
  if (w.win) {
    var col: array<f32, 8>;
    for (var j = 0u; j < COLS; j++) { col[j] = dw(w, row, min(w.c0 + j, p.ind.z - 1u)); }
    return vec4<f32>(wmix(&col, w.t0, w.c0), wmix(&col, w.t1, w.c0), wmix(&col, w.t2, w.c0), wmix(&col, w.t3, w.c0));
  }
  return vec4<f32>(wdirect(w, row, w.t0), wdirect(w, row, w.t1), wdirect(w, row, w.t2), wdirect(w, row, w.t3));
}

// (q, od, nc): the quad and output plane
fn walk_of(q: u32, od: u32, nc: u32) -> Walk {
  let td = tap(od, p.ind.x, p.ratio.x);
  let plane = p.ind.y * p.ind.z;
  let base = nc * p.ind.x * plane;
  let last = p.outd.z - 1u;
  let ow = 4u * q;
  let t0 = tap(min(ow, last), p.ind.z, p.ratio.z);
  let t3 = tap(min(ow + 3u, last), p.ind.z, p.ratio.z);
  return Walk(base + td.i0 * plane, base + td.i1 * plane, td.l0, td.l1, t0.i0, t3.i1 - t0.i0 < COLS,
    t0, tap(min(ow + 1u, last), p.ind.z, p.ratio.z), tap(min(ow + 2u, last), p.ind.z, p.ratio.z), t3);
}

// Two cached input rows (ia: qa, ib: qb), as the forward's W slide once did along W.
struct Cache { ia: u32, ib: u32, qa: vec4<f32>, qb: vec4<f32> }

fn hstep(w: Walk, oh: u32, c: ptr<function, Cache>) -> vec4<f32> {
  let th = tap(oh, p.ind.y, p.ratio.y);
  if (th.i0 != (*c).ia) {
    if (th.i0 == (*c).ib) { (*c).ia = (*c).ib; (*c).qa = (*c).qb; } else { (*c).ia = th.i0; (*c).qa = rowq(w, th.i0); }
  }
  if (MODE == 0u) { return (*c).qa; }
  if (th.i1 != (*c).ib) {
    (*c).ib = th.i1;
    if (th.i1 == (*c).ia) { (*c).qb = (*c).qa; } else { (*c).qb = rowq(w, th.i1); }
  }
  return th.l0 * (*c).qa + th.l1 * (*c).qb;
}

// Block digits for mainh / mainh4: Blk.k the W quad, Blk.bh the H segment, Blk.bd the output plane od.
fn seg_radix() -> vec3<u32> {
  return vec3<u32>(p.outd.x, (p.outd.y + HSEG - 1u) / HSEG, (p.outd.z + 3u) / 4u);
}

@compute @workgroup_size(64)
fn mainh4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  let nb = seg_radix();
  let step = x2_decode(stride, nb);
  var i = gid.x + gid.y * nwg.x * 64u;
  var at = x2_decode(i, nb);
  let row4 = p.outd.z / 4u;
  for (; i < p.n; i += stride) {
    let w = walk_of(at.k, at.bd, at.nc);
    var c = Cache(0xffffffffu, 0xffffffffu, vec4<f32>(0.0), vec4<f32>(0.0));
    let oh0 = at.bh * HSEG;
    let oh1 = min(oh0 + HSEG, p.outd.y);
    let o = (at.nc * p.outd.x + at.bd) * p.outd.y;
    for (var oh = oh0; oh < oh1; oh++) { dst4[(o + oh) * row4 + at.k] = hstep(w, oh, &c); }
    at = x2_advance(at, step, nb);
  }
}

@compute @workgroup_size(64)
fn mainh(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * nwg.y * 64u;
  let nb = seg_radix();
  let step = x2_decode(stride, nb);
  var i = gid.x + gid.y * nwg.x * 64u;
  var at = x2_decode(i, nb);
  for (; i < p.n; i += stride) {
    let w = walk_of(at.k, at.bd, at.nc);
    var c = Cache(0xffffffffu, 0xffffffffu, vec4<f32>(0.0), vec4<f32>(0.0));
    let oh0 = at.bh * HSEG;
    let oh1 = min(oh0 + HSEG, p.outd.y);
    let ow = 4u * at.k;
    let o = (at.nc * p.outd.x + at.bd) * p.outd.y;
    for (var oh = oh0; oh < oh1; oh++) {
      let v = hstep(w, oh, &c);
      let d = (o + oh) * p.outd.z + ow;
      dst[d] = v.x;
      if (ow + 1u < p.outd.z) { dst[d + 1u] = v.y; }
      if (ow + 2u < p.outd.z) { dst[d + 2u] = v.z; }
      if (ow + 3u < p.outd.z) { dst[d + 3u] = v.w; }
    }
    at = x2_advance(at, step, nb);
  }
}

// ms_deform_attn3d composed from tfjs's own ops, as a user would write it: tfjs has no
// grid-sample, so each level is sampled trilinearly with gathers. Per level: value → a
// [N*nH*D*H*W, Dh] table; sample positions loc*size − 0.5 (align_corners = false); for the 8
// corners, flat row indices (clamped, with a 0/1 validity mask for zeros padding) and weights
// attn × Π(frac or 1 − frac); one gather per corner, weighted and accumulated, summed over
// points; levels summed; → [N, Lq, nH*Dh]. Same shapes and data as ours (checked against
// our output by bench/kernels.ts before timing).

/** value [N, S, nH, Dh], loc [N, Lq, nH, nL, nP, 3] (x→W, y→H, z→D in [0, 1]),
 * attn [N, Lq, nH, nL, nP] (tfjs tensors) → [N, Lq, nH*Dh]. */
export function tfMsDeformAttn3d(tf: any, value: any, loc: any, attn: any, shapes: readonly (readonly [number, number, number])[]): any {
  // tfjs-webgpu's broadcasting binary ops stop at rank 4 ("cannot index type 'vec5'"), so
  // everything is reshaped to rank <= 4 first, as a user would have to
  const [N, S, nH, Dh] = value.shape as number[];
  const [, Lq, , nL, nP] = loc.shape as number[];
  const Q = N * Lq * nH, M = Q * nP; // rows (n, q, h) and samples (n, q, h, p) of one level
  const loc4 = tf.reshape(loc, [Q, nL, nP, 3]);
  const attn3 = tf.reshape(attn, [Q, nL, nP]);
  // sample m = ((n*Lq + q)*nH + h)*nP + p → (n*nH + h), the table block of its head
  const m = tf.range(0, M, 1, "int32");
  const head = tf.add(tf.mul(tf.floorDiv(m, nP * nH * Lq), nH), tf.mod(tf.floorDiv(m, nP), nH));
  let start = 0;
  let out: any = null;
  for (let l = 0; l < nL; l++) {
    const [D, H, W] = shapes[l]!;
    const V = D * H * W;
    // [N, V, nH, Dh] → [N, nH, V, Dh] → table [N*nH*V, Dh]
    const table = tf.reshape(tf.transpose(tf.slice(value, [0, start, 0, 0], [N, V, nH, Dh]), [0, 2, 1, 3]), [N * nH * V, Dh]);
    start += V;
    const pos = tf.sub(tf.mul(tf.reshape(tf.slice(loc4, [0, l, 0, 0], [Q, 1, nP, 3]), [M, 3]), tf.tensor1d([W, H, D])), 0.5);
    const f0 = tf.floor(pos);
    const fr = tf.sub(pos, f0);
    const [x0, y0, z0] = tf.split(f0, 3, 1).map((t: any) => tf.reshape(t, [M]));
    const [fx, fy, fz] = tf.split(fr, 3, 1).map((t: any) => tf.reshape(t, [M]));
    const a = tf.reshape(tf.slice(attn3, [0, l, 0], [Q, 1, nP]), [M]);
    const headBase = tf.mul(tf.cast(head, "float32"), V);
    let acc: any = null; // [M, Dh]
    for (let k = 0; k < 8; k++) {
      const bx = k & 1, by = (k >> 1) & 1, bz = k >> 2;
      const cx = tf.add(x0, bx), cy = tf.add(y0, by), cz = tf.add(z0, bz);
      const inside = (c: any, size: number) => tf.logicalAnd(tf.greaterEqual(c, 0), tf.less(c, size));
      const valid = tf.cast(tf.logicalAnd(tf.logicalAnd(inside(cx, W), inside(cy, H)), inside(cz, D)), "float32");
      const vox = tf.add(tf.mul(tf.add(tf.mul(tf.clipByValue(cz, 0, D - 1), H), tf.clipByValue(cy, 0, H - 1)), W), tf.clipByValue(cx, 0, W - 1));
      const w = tf.mul(tf.mul(bx ? fx : tf.sub(1, fx), by ? fy : tf.sub(1, fy)), bz ? fz : tf.sub(1, fz));
      // one gather per corner: a single gather of all 8 corners' rows exceeds the 128 MiB
      // storage binding at the size (8 × 186,624 rows × 64 channels × 4 B = 382 MB)
      const rows = tf.gather(table, tf.cast(tf.add(headBase, vox), "int32")); // [M, Dh]
      const term = tf.mul(rows, tf.reshape(tf.mul(tf.mul(w, valid), a), [M, 1]));
      acc = acc ? tf.add(acc, term) : term;
    }
    const summed = tf.sum(tf.reshape(acc, [Q, nP, Dh]), 1); // [Q, Dh]
    out = out ? tf.add(out, summed) : summed;
  }
  return tf.reshape(out, [N, Lq, nH * Dh]);
}

// Running (count, mean, M2) statistics, spliced in with `// #include "common/welford"`: Welford's
// update per value, Chan's update per vec4 and for merging two partial results. Never
// E[x^2] - E[x]^2, which cancels for large means.
struct Acc { n: f32, m: f32, q: f32 }

// Chan et al.: n = na+nb, d = mb-ma, mean = ma + d*nb/n, M2 = M2a + M2b + d^2*na*nb/n.
fn merge(a: Acc, b: Acc) -> Acc {
  if (b.n == 0.0) { return a; }
  if (a.n == 0.0) { return b; }
  let n = a.n + b.n;
  let d = b.m - a.m;
  let f = b.n / n;
  return Acc(n, a.m + d * f, a.q + b.q + d * d * a.n * f);
}

fn add4(a: Acc, v: vec4<f32>) -> Acc {
  let mb = dot(v, vec4<f32>(0.25));
  let e = v - mb;
  let n = a.n + 4.0;
  let d = mb - a.m;
  let f = 4.0 / n;
  return Acc(n, a.m + d * f, a.q + dot(e, e) + d * d * a.n * f);
}

fn add1(a: Acc, v: f32) -> Acc {
  let n = a.n + 1.0;
  let d = v - a.m;
  let m = a.m + d / n;
  return Acc(n, m, a.q + d * (v - m));
}

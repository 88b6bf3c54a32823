// Shared scalar helpers, spliced in with `// #include "common/activations"`.

// Logistic sigmoid, split by sign so exp never overflows.
fn sigmoid_(v: f32) -> f32 {
  if (v >= 0.0) { return 1.0 / (1.0 + exp(-v)); }
  let e = exp(v);
  return e / (1.0 + e);
}

// tanh via exp, clamped: the builtin is NaN past about ±44 on some drivers.
fn tanh_(v: f32) -> f32 {
  let a = min(abs(v), 20.0);
  let e = exp(2.0 * a);
  let t = 1.0 - 2.0 / (e + 1.0);
  return select(-t, t, v >= 0.0);
}

// erf to ~1.2e-7 relative (Numerical Recipes erfc Chebyshev fit); WGSL has no erf builtin.
fn erf_(v: f32) -> f32 {
  let z = abs(v);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, v >= 0.0);
}

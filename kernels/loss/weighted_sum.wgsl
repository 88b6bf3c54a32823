// Deep-supervision combination y = sum_i w_i * L_i of [1] losses, one dispatch per term (a fixed
// order, so deterministic): `main` writes y[0] = (first ? 0 : acc[0]) + w * x[0]; `scale` is the
// backward of one term, dx[0] = w * dy[0].
// Bindings: 0 uniforms, 1 x, 2 acc (aliased to x when first = 1), 3 y, 4 dy, 5 dx.
struct Params { w: f32, first: u32 }
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> acc: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(1)
fn main() {
  var s = u.w * x[0];
  if (u.first == 0u) { s = acc[0] + s; }
  y[0] = s;
}

@compute @workgroup_size(1)
fn scale() {
  dx[0] = u.w * dy[0];
}

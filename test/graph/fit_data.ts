import { Module, nn, relu, type Device, type Sample, type Tensor } from "../../src/node.ts";

/** Seeded spheres-in-noise volumes: one or two balls of random centre and radius (intensity 1 on
 * 0) plus Gaussian noise; the target holds class indices (0 background, 1 ball) [1, 1, s, s, s]. */
export function spheres(count: number, seed: number, s = 16, noise = 0.35): Sample[] {
  let state = seed >>> 0;
  const rnd = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const out: Sample[] = [];
  for (let k = 0; k < count; k++) {
    const balls = Array.from({ length: rnd() < 0.5 ? 1 : 2 }, () => {
      const r = 2.5 + rnd() * 2.5;
      const c = [0, 1, 2].map(() => r + rnd() * (s - 2 * r));
      return { r, c };
    });
    const data = new Float32Array(s ** 3), target = new Float32Array(s ** 3);
    for (let z = 0; z < s; z++) for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      const i = (z * s + y) * s + x;
      const inside = balls.some(({ r, c }) => (z - c[0]!) ** 2 + (y - c[1]!) ** 2 + (x - c[2]!) ** 2 <= r * r);
      target[i] = inside ? 1 : 0;
      data[i] = (inside ? 1 : 0) + noise * gauss();
    }
    out.push({ input: { data, shape: [1, 1, s, s, s] }, target: { data: target, shape: [1, 1, s, s, s] } });
  }
  return out;
}

/** conv3d(1→4, k3) → batch norm → ReLU → conv3d(4→1, k1), seeded init: the small net of the fit and soak tests. */
export class TinyNet extends Module {
  conv1: nn.Conv3d;
  bn: nn.BatchNorm;
  conv2: nn.Conv3d;
  constructor(d: Device) {
    super(d);
    nn.setInitSeed(3);
    this.conv1 = this.child("conv1", new nn.Conv3d(d, 1, 4, 3, { padding: 1 }));
    this.bn = this.child("bn", new nn.BatchNorm(d, 4));
    this.conv2 = this.child("conv2", new nn.Conv3d(d, 4, 1, 1));
  }
  forward(x: Tensor): Tensor {
    return this.conv2.forward(relu(this.bn.forward(this.conv1.forward(x))));
  }
}

/** A bright blob on a noisy background; the target is the blob. */
export function blob(seed: number): Sample {
  const s = 8, data = new Float32Array(s ** 3), target = new Float32Array(s ** 3);
  let r = seed;
  const rnd = () => ((r = (r * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const c = [2 + rnd() * 4, 2 + rnd() * 4, 2 + rnd() * 4];
  for (let z = 0; z < s; z++) for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
    const i = (z * s + y) * s + x;
    const inside = (z - c[0]!) ** 2 + (y - c[1]!) ** 2 + (x - c[2]!) ** 2 < 5;
    target[i] = inside ? 1 : 0;
    data[i] = (inside ? 1 : 0) + 0.3 * (rnd() - 0.5);
  }
  return { input: { data, shape: [1, 1, s, s, s] }, target: { data: target, shape: [1, 1, s, s, s] } };
}

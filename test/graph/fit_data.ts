import type { Sample } from "../../src/node.ts";

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

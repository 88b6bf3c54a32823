import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { Module, nn, Adam, ReduceLROnPlateau, fit, bceWithLogitsLoss, relu, Tensor, type Device, type Sample } from "../../src/node.ts";

class TinyNet extends Module {
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
function blob(seed: number): Sample {
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

describe("fit on a small net", () => {
  const dev = useDevice();
  it("fits a blob, steps a plateau schedule on the validation loss and keeps the pool flat", async () => {
    const d = dev();
    const net = new TinyNet(d);
    const opt = new Adam(net.parameters(), { lr: 0.05 });
    const schedule = new ReduceLROnPlateau(0.05, 0.5, 0);
    const samples = [1, 2, 3, 4].map(blob);
    const allocated: number[] = [];
    const lrs: number[] = [];
    const history = await fit({
      model: net, optimizer: opt, loss: bceWithLogitsLoss, epochs: 6,
      samples, validation: samples.slice(0, 2), schedule,
      saveCheckpoint: () => { allocated.push(d.pool.allocatedBytes); lrs.push(opt.lr); },
    });
    expect(history).toHaveLength(6);
    expect(history.at(-1)!.loss).toBeLessThan(history[0]!.loss * 0.6);
    expect(history.every((h) => Number.isFinite(h.valLoss))).toBe(true);
    expect(lrs.every((lr, i) => i === 0 || lr <= lrs[i - 1]!)).toBe(true);
    expect(new Set(allocated.slice(1)).size).toBeLessThanOrEqual(1);
  });
});

import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import {
  Adam,
  SGD,
  Module,
  nn,
  fit,
  full,
  noGrad,
  record,
  mulScalar,
  relu,
  diceCeLoss,
  diceBceLoss,
  loadCheckpoint,
  checkpointFile,
  terminalProgress,
  segmentationDice,
  shuffledOrder,
  stackHost,
  Tensor,
  type Device,
  type Sample,
} from "../../src/node.ts";
import { factory as unet3d } from "../../src/models/unet3d.ts";
import { spheres } from "./fit_data.ts";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "pulmo-fit-"));
  dirs.push(d);
  return d;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** conv → (BN) → ReLU → conv, one output channel (sigmoid). */
class TinyNet extends Module {
  conv1: nn.Conv3d;
  bn: nn.BatchNorm | null;
  conv2: nn.Conv3d;
  constructor(d: Device, bn = true, seed = 3) {
    super(d);
    nn.setInitSeed(seed);
    this.conv1 = this.child("conv1", new nn.Conv3d(d, 1, 4, 3, { padding: 1 }));
    this.bn = bn ? this.child("bn", new nn.BatchNorm(d, 4)) : null;
    this.conv2 = this.child("conv2", new nn.Conv3d(d, 4, 1, 1));
  }
  forward(x: Tensor): Tensor {
    const h = this.conv1.forward(x);
    return this.conv2.forward(relu(this.bn ? this.bn.forward(h) : h));
  }
}

/** Registers `head` before `body` but applies it after, with an optional op between them whose
 * backward returns NaN: body's gradients go non-finite while the loss and head's stay finite, so
 * the first non-finite parameter in state-dict order is `body.weight`, not the first parameter. */
class PoisonNet extends Module {
  head: nn.Conv3d;
  body: nn.Conv3d;
  poison = false;
  poisonValue = NaN;
  constructor(d: Device) {
    super(d);
    nn.setInitSeed(5);
    this.head = this.child("head", new nn.Conv3d(d, 2, 1, 1));
    this.body = this.child("body", new nn.Conv3d(d, 1, 2, 3, { padding: 1 }));
  }
  forward(x: Tensor): Tensor {
    let h = this.body.forward(x);
    if (this.poison) {
      const y = noGrad(() => mulScalar(h, 1));
      h = record("poison", y, [h], [], (dy) => [full(dy.device, dy.shape, this.poisonValue)]);
    }
    return this.head.forward(h);
  }
}

/** Binary-mask samples (1 channel, for sigmoid nets) at 8³. */
function blobs(count: number, seed: number): Sample[] {
  return spheres(count, seed, 8, 0.25);
}

const bitsEqual = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

describe("fit helpers", () => {
  it("stacks host arrays along N and rejects mismatched trailing dims", () => {
    const a = { data: Float32Array.of(1, 2), shape: [1, 2] };
    const b = { data: Float32Array.of(3, 4, 5, 6), shape: [2, 2] };
    const s = stackHost([a, b]);
    expect(s.shape).toEqual([3, 2]);
    expect([...s.data]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => stackHost([a, { data: Float32Array.of(1, 2, 3), shape: [1, 3] }])).toThrow(/only dim 0 may differ/);
  });
  it("shuffles with a seeded permutation per epoch", () => {
    const o = shuffledOrder(10, 7, 0);
    expect([...o].sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
    expect(shuffledOrder(10, 7, 0)).toEqual(o);
    expect(shuffledOrder(10, 7, 1)).not.toEqual(o);
    expect(shuffledOrder(10, 8, 0)).not.toEqual(o);
  });
  it("computes the Dice of thresholded sigmoid and softmax outputs", () => {
    // sigmoid, [2, 1, 4]: logit > 0 is foreground
    const logits = Float32Array.of(1, 1, -1, -1, /**/ -1, -1, -1, -1);
    const t = Float32Array.of(1, 0, 0, 0, /**/ 0, 0, 0, 0);
    expect(segmentationDice(logits, [2, 1, 4], t, [2, 1, 4], "sigmoid")).toEqual([2 / 3, 1]);
    // softmax, [1, 3, 4] with class indices: argmax = [0, 1, 2, 2]
    const z = Float32Array.of(5, 0, 0, 0, /**/ 0, 5, 0, 0, /**/ 0, 0, 5, 5);
    const idx = Float32Array.of(0, 1, 1, 2);
    // class 1: tp 1, fn 1 → 2/3; class 2: tp 1, fp 1 → 2/3
    expect(segmentationDice(z, [1, 3, 4], idx, [1, 1, 4], "softmax")[0]).toBeCloseTo(2 / 3, 6);
    const onehot = Float32Array.of(1, 0, 0, 0, /**/ 0, 1, 1, 0, /**/ 0, 0, 0, 1);
    expect(segmentationDice(z, [1, 3, 4], onehot, [1, 3, 4], "softmax")[0]).toBeCloseTo(2 / 3, 6);
    expect(() => segmentationDice(logits, [2, 1, 4], t, [2, 4], "sigmoid")).toThrow(/output's shape/);
  });
});

describe("fit", () => {
  const dev = useDevice();

  it("trains a 3D U-Net from scratch on spheres in noise to validation Dice >= 0.9", async () => {
    const d = dev();
    nn.setInitSeed(1);
    const net = unet3d(d, { in_channels: 1, num_classes: 2, enc: [[4, 8], [8, 16], [16, 16]], dec: [[8, 8], [8, 8]] });
    const train = spheres(24, 1);
    const val = spheres(8, 1001); // a separate seed: unseen volumes
    // what plain thresholding of the noisy intensities reaches: the net must do much better
    let tp = 0, fpn = 0;
    for (const s of val)
      s.input.data.forEach((v, i) => {
        const p = v > 0.5, g = s.target.data[i]! > 0.5;
        if (p && g) tp++;
        else if (p || g) fpn++;
      });
    const baseline = (2 * tp) / (2 * tp + fpn);
    const t0 = performance.now();
    const history = await fit({
      model: net, optimizer: new Adam(net.parameters(), { lr: 1e-2 }), loss: diceCeLoss,
      samples: train, validation: val, epochs: 12, batchSize: 4, shuffle: true, seed: 1, patience: 5,
    });
    const seconds = (performance.now() - t0) / 1000;
    const best = Math.max(...history.map((h) => h.valDice!));
    console.log(`unet3d fit: ${history.length} epochs in ${seconds.toFixed(1)} s, best val Dice ${best.toFixed(4)} (threshold baseline ${baseline.toFixed(4)})`);
    expect(best).toBeGreaterThanOrEqual(0.9);
    expect(best).toBeGreaterThan(baseline + 0.1);
    expect(history[0]!.valDice!).toBeLessThan(0.9); // it learned: it did not start there
    expect(history.every((h) => Number.isFinite(h.loss) && Number.isFinite(h.valLoss!) && h.seconds > 0)).toBe(true);
    expect(seconds).toBeLessThan(300);
    net.dispose();
  }, 300_000);

  it("keeps the pool's allocatedBytes flat over 200 steps", async () => {
    const d = dev();
    const net = new TinyNet(d);
    const allocated: number[] = [];
    const history = await fit({
      model: net, optimizer: new Adam(net.parameters(), { lr: 1e-2 }), loss: diceBceLoss,
      samples: blobs(20, 11), validation: blobs(4, 12), epochs: 20, batchSize: 2, shuffle: true,
      onStep: () => { allocated.push(d.pool.allocatedBytes); },
    });
    expect(allocated).toHaveLength(200);
    expect(history).toHaveLength(20);
    expect(new Set(allocated.slice(1)).size).toBe(1);
    expect(history.at(-1)!.loss).toBeLessThan(history[0]!.loss);
    net.dispose();
  }, 120_000);

  it("stacks batchSize samples along N, keeps a smaller last batch unless dropLast", async () => {
    const d = dev();
    const net = new TinyNet(d, false);
    const seen: number[][] = [];
    const loss = (out: Tensor, t: Tensor) => {
      seen.push([out.shape[0]!, t.shape[0]!]);
      return diceBceLoss(out, t);
    };
    const samples = blobs(7, 3);
    await fit({ model: net, optimizer: new Adam(net.parameters()), loss, samples, epochs: 1, batchSize: 3 });
    expect(seen).toEqual([[3, 3], [3, 3], [1, 1]]);
    seen.length = 0;
    await fit({ model: net, optimizer: new Adam(net.parameters()), loss, samples: () => samples, epochs: 1, batchSize: 3, dropLast: true });
    expect(seen).toEqual([[3, 3], [3, 3]]);
    net.dispose();
  });

  it("writes the checkpoint only on a new best validation Dice, atomically", async () => {
    const d = dev();
    const dir = tempDir();
    const path = join(dir, "best.safetensors");
    const net = new TinyNet(d);
    const opt = new Adam(net.parameters(), { lr: 2e-2 });
    const writes: { epoch: number; bytes: Uint8Array }[] = [];
    const write = checkpointFile(path);
    const history = await fit({
      model: net, optimizer: opt, loss: diceBceLoss, samples: blobs(6, 21), validation: blobs(3, 22), epochs: 8, batchSize: 2,
      saveCheckpoint: (bytes, info) => { writes.push({ epoch: info.epoch, bytes }); write(bytes); },
    });
    let best = -Infinity;
    const improved = history.map((h) => (h.valDice! > best ? ((best = h.valDice!), true) : false));
    expect(writes.map((w) => w.epoch)).toEqual(history.filter((_, i) => improved[i]).map((h) => h.epoch));
    expect(history.map((h) => h.saved === true)).toEqual(improved);
    expect(writes.length).toBeGreaterThan(1);
    expect(writes.length).toBeLessThan(history.length + 1);
    expect(readdirSync(dir)).toEqual(["best.safetensors"]); // no temporary file left
    const onDisk = new Uint8Array(readFileSync(path));
    expect(bitsEqual(onDisk, writes.at(-1)!.bytes)).toBe(true);
    // the file restores the best epoch's model
    const fresh = new TinyNet(d, true, 99);
    const { epoch } = loadCheckpoint(onDisk, { model: fresh });
    expect(epoch).toBe(writes.at(-1)!.epoch);
    const ref = await net.conv2.weight.readFloat();
    const got = await fresh.conv2.weight.readFloat();
    if (writes.at(-1)!.epoch === history.at(-1)!.epoch) expect([...got]).toEqual([...ref]);
    else expect([...got]).not.toEqual([...ref]);
    net.dispose();
    fresh.dispose();
  });

  it("stops early after `patience` epochs without a Dice improvement", async () => {
    const d = dev();
    const net = new TinyNet(d, false);
    const lines: [string, boolean][] = [];
    let saves = 0;
    const history = await fit({
      model: net, optimizer: new SGD(net.parameters(), { lr: 0 }), loss: diceBceLoss, samples: blobs(4, 31), validation: blobs(2, 32),
      epochs: 10, patience: 2, saveCheckpoint: () => { saves++; }, progress: (l, f) => lines.push([l, f]),
    });
    expect(history.map((h) => h.epoch)).toEqual([0, 1, 2]); // the weights never change: no improvement after epoch 0
    expect(saves).toBe(1);
    expect(lines.at(-1)).toEqual([expect.stringMatching(/^early stopping: no validation Dice improvement for 2 epochs \(best [0-9.]+ at epoch 1\)$/), true]);
    const running = lines.filter(([, f]) => !f).map(([l]) => l);
    expect(running.length).toBeGreaterThan(0);
    expect(running[0]).toMatch(/^epoch 1\/10 \[#+\.*\] \d+\/4 loss \d\.\d{4} dice - [0-9.]+ it\/s ETA \d\d:\d\d$/);
    expect(lines.filter(([, f]) => f)[0]![0]).toMatch(/^epoch 1\/10 .* val_loss \d\.\d{4} val_dice \d\.\d{4} \* .* it\/s .*s lr 0\.00e\+0 saved$/);
    await expect(fit({ model: net, optimizer: new SGD(net.parameters(), { lr: 0 }), loss: diceBceLoss, samples: blobs(2, 1), epochs: 2, patience: 1 })).rejects.toThrow(/needs validation/);
    net.dispose();
  });

  it("writes plain lines when stdout is not a TTY and redraws in place on a TTY", async () => {
    const d = dev();
    const net = new TinyNet(d, false);
    const run = async (isTTY: boolean) => {
      const writes: string[] = [];
      await fit({
        model: net, optimizer: new Adam(net.parameters()), loss: diceBceLoss, samples: blobs(4, 41), validation: blobs(2, 42), epochs: 3,
        progress: terminalProgress({ isTTY, columns: 200, write: (s: string) => writes.push(s) }),
      });
      return writes;
    };
    const plain = await run(false);
    expect(plain).toHaveLength(3); // one line per epoch; running lines at most every 30 s
    for (const w of plain) {
      expect(w).toMatch(/^epoch \d\/3 [^\r\x1b\n]* val_dice \d\.\d{4}[^\r\x1b\n]*\n$/);
    }
    const tty = await run(true);
    expect(tty.length).toBeGreaterThan(3);
    expect(tty.every((w) => w.startsWith("\r") && w.includes("\x1b[K"))).toBe(true);
    expect(tty.filter((w) => w.endsWith("\n"))).toHaveLength(3);
    expect(tty.some((w) => /ETA/.test(w) && !w.endsWith("\n"))).toBe(true);
    net.dispose();
  });

  it.each([NaN, -Infinity])("stops on a %s gradient naming the first parameter, and keeps the last checkpoint intact", async (value) => {
    const d = dev();
    const dir = tempDir();
    const path = join(dir, "ckpt.safetensors");
    const net = new PoisonNet(d);
    net.poisonValue = value;
    let written: Uint8Array | null = null;
    const write = checkpointFile(path);
    const samples = blobs(4, 51);
    const err = await fit({
      model: net, optimizer: new Adam(net.parameters(), { lr: 1e-2 }), loss: diceBceLoss, validation: blobs(2, 52), epochs: 5, batchSize: 2,
      samples: (epoch) => { net.poison = epoch === 2; return samples; },
      saveCheckpoint: (bytes) => { written = bytes; write(bytes); },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe("PulmoError");
    expect((err as Error).message).toMatch(/^fit: non-finite gradient at epoch 2, step 4: the gradient of 'body\.weight' is non-finite \(the first in state-dict order; 2 of 4 parameters/);
    expect(written).not.toBeNull();
    expect(bitsEqual(new Uint8Array(readFileSync(path)), written!)).toBe(true);
    expect(readdirSync(dir)).toEqual(["ckpt.safetensors"]);
    // the bad step was never applied
    for (const p of net.parameters()) expect((await p.readFloat()).every(Number.isFinite)).toBe(true);
    expect(net.parameters().every((p) => p.grad === null)).toBe(true);
    net.dispose();
  });

  it("stops on a non-finite loss from a NaN input, naming epoch, step and parameter", async () => {
    const d = dev();
    const dir = tempDir();
    const path = join(dir, "ckpt.safetensors");
    const net = new TinyNet(d);
    const good = blobs(4, 61);
    const bad = good.map((s, i) => (i === 1 ? { ...s, input: { ...s.input, data: s.input.data.map((v, k) => (k === 100 ? NaN : v)) } } : s));
    let before: Uint8Array | null = null;
    const write = checkpointFile(path);
    const err = await fit({
      model: net, optimizer: new Adam(net.parameters(), { lr: 1e-2 }), loss: diceBceLoss, validation: blobs(2, 62), epochs: 4,
      samples: (epoch) => (epoch === 1 ? bad : good),
      saveCheckpoint: (bytes) => { write(bytes); before = new Uint8Array(readFileSync(path)); },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^fit: (loss is NaN|non-finite gradient) at epoch 1, step 5[:;] .*the gradient of 'conv1\.weight' is non-finite \(the first in state-dict order/);
    expect(bitsEqual(new Uint8Array(readFileSync(path)), before!)).toBe(true);
    for (const p of net.parameters()) expect((await p.readFloat()).every(Number.isFinite)).toBe(true);
    net.dispose();
  });

  it("stops at once when cancelled", async () => {
    const d = dev();
    const net = new TinyNet(d);
    const ac = new AbortController();
    let steps = 0;
    await expect(
      fit({
        model: net, optimizer: new Adam(net.parameters()), loss: diceBceLoss, samples: blobs(6, 71), epochs: 3, signal: ac.signal,
        onStep: () => { if (++steps === 3) ac.abort(); },
      }),
    ).rejects.toThrow(/^training cancelled \(epoch 0, step 3\)$/);
    expect(steps).toBe(3);
    net.dispose();
  });
});

import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { useDevice } from "../helpers.ts";
import { Module, Adam, PolyLR, Tensor, checkpointBytes, loadCheckpoint, writeFileAtomic, type Device } from "../../src/node.ts";

class Tiny extends Module {
  w: Tensor;
  constructor(d: Device) {
    super(d);
    this.w = this.param("w", [5], Float32Array.from([0.5, -1, 2, 0.25, 3]));
    this.buffer("count", [1]);
  }
}

const grads = [1, 2, 3, 4].map((k) => Float32Array.from({ length: 5 }, (_, i) => Math.sin(k * 7 + i)));

function step(d: Device, m: Tiny, opt: Adam, sched: PolyLR, k: number) {
  m.w.grad?.dispose();
  m.w.grad = Tensor.from(d, grads[k]!, [5]);
  opt.lr = sched.lr;
  opt.step();
  sched.step();
}

describe("checkpoints", () => {
  const dev = useDevice();
  it("resuming gives the same parameters as the uninterrupted run", async () => {
    const d = dev();
    const a = new Tiny(d), optA = new Adam(a.parameters(), { lr: 0.1 }), schA = new PolyLR(0.1, 10);
    for (let k = 0; k < 4; k++) step(d, a, optA, schA, k);
    const uninterrupted = await a.w.read();

    const b = new Tiny(d), optB = new Adam(b.parameters(), { lr: 0.1 }), schB = new PolyLR(0.1, 10);
    for (let k = 0; k < 2; k++) step(d, b, optB, schB, k);
    const dir = mkdtempSync(join(tmpdir(), "pulmo-ckpt-"));
    const path = join(dir, "ckpt.safetensors");
    writeFileAtomic(path, await checkpointBytes({ model: b, optimizer: optB, schedule: schB, epoch: 2, config: { name: "tiny" } }));
    expect(readdirSync(dir)).toEqual(["ckpt.safetensors"]); // no temporary left behind

    const c = new Tiny(d), optC = new Adam(c.parameters(), { lr: 0.1 }), schC = new PolyLR(0.1, 10);
    const meta = loadCheckpoint(readFileSync(path), { model: c, optimizer: optC, schedule: schC });
    expect(meta).toEqual({ epoch: 2, config: { name: "tiny" } });
    expect(optC.stepCount).toBe(2);
    for (let k = 2; k < 4; k++) step(d, c, optC, schC, k);
    expect([...(await c.w.read())]).toEqual([...uninterrupted]);
  });
  it("a checkpoint missing a tensor is refused by name", async () => {
    const d = dev();
    const m = new Tiny(d);
    const bytes = await checkpointBytes({ model: m });
    class Other extends Tiny {
      constructor(d: Device) {
        super(d);
        this.param("extra", [2]);
      }
    }
    expect(() => loadCheckpoint(bytes, { model: new Other(d) })).toThrow(/missing extra \[2\]/);
    expect(() => loadCheckpoint(bytes, { model: new Tiny(d), optimizer: new Adam(m.parameters()) })).toThrow(/no optimizer state/);
  });
});

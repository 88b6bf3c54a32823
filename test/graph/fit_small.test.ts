import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { Adam, ReduceLROnPlateau, fit, bceWithLogitsLoss } from "../../src/node.ts";
import { TinyNet, blob } from "./fit_data.ts";

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

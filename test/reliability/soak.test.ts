// Short soak (npm run soak runs 1,000 inferences and 200 steps): the buffer pool neither grows nor
// creates buffers after warm-up, every run's buffers are released, and RSS stays in a small band.
import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { soakInference, soakTraining, type SoakSummary } from "./soak.ts";

function expectFlat(s: SoakSummary): void {
  expect(s.poolAllocatedAtEnd).toBe(s.poolAllocatedAfterWarmup);
  expect(s.poolAllocatedMax).toBe(s.poolAllocatedAfterWarmup);
  expect(s.buffersCreatedAtEnd).toBe(s.buffersCreatedAfterWarmup);
  expect(s.poolInUseAtEnd).toBe(s.poolInUseAfterWarmup);
  // sampled after a full collection; a leak of 100 kB per iteration would add about 10 MiB here
  expect(Math.abs(s.rssGrowthMiB)).toBeLessThan(8);
}

describe("soak (short)", () => {
  const dev = useDevice();
  it("150 consecutive segment() calls keep the pool and RSS flat", async () => {
    const s = await soakInference(dev(), 150, { warmup: 20, every: 5 });
    expect(s.iterations).toBe(150);
    expectFlat(s);
  });
  it("40 training steps keep the pool and RSS flat", async () => {
    const s = await soakTraining(dev(), 40, { warmup: 8 });
    expect(s.iterations).toBe(40);
    expectFlat(s);
    expect(s.lastLoss).toBeLessThan(s.firstLoss);
  });
});

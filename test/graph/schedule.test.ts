import { describe, expect, it } from "vitest";
import { ConstantLR, StepLR, PolyLR, ReduceLROnPlateau } from "../../src/graph/schedule.ts";

describe("schedules", () => {
  it("constant, step and poly follow their formulas", () => {
    const c = new ConstantLR(0.1), s = new StepLR(0.1, 2, 0.5), p = new PolyLR(0.01, 10);
    const lrs = (sch: { lr: number; step(): number }) => [sch.lr, ...Array.from({ length: 4 }, () => sch.step())];
    expect(lrs(c)).toEqual([0.1, 0.1, 0.1, 0.1, 0.1]);
    expect(lrs(s)).toEqual([0.1, 0.1, 0.05, 0.05, 0.025]);
    lrs(p).forEach((lr, e) => expect(lr).toBeCloseTo(0.01 * (1 - e / 10) ** 0.9, 12));
  });
  it("ReduceLROnPlateau halves after more than 3 epochs without improvement and resumes from its state", () => {
    const r = new ReduceLROnPlateau(1e-3);
    const seq = [1, 0.9, 0.9, 0.9, 0.9, 0.95].map((m) => r.step(m));
    expect(seq).toEqual([1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 5e-4]);
    const resumed = new ReduceLROnPlateau(1e-3);
    resumed.loadState(r.state());
    expect([0.9, 0.9, 0.9, 0.9].map((m) => resumed.step(m))).toEqual([5e-4, 5e-4, 5e-4, 2.5e-4]);
    expect(() => r.step(NaN)).toThrow(/finite metric/);
  });
});

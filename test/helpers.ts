import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createDevice, tidy, type Device, type DeviceOptions, type Tensor } from "../src/node.ts";
import { parseCase, runCase } from "../src/golden/runner.ts";
import type { GoldenCase } from "../src/golden/case.ts";

export const GOLDEN_OPS_DIR = join(import.meta.dirname, "golden", "ops");

export function goldenCases(): GoldenCase[] {
  return readdirSync(GOLDEN_OPS_DIR)
    .filter((f) => f.endsWith(".safetensors"))
    .sort()
    .map((f) => parseCase(f.replace(/\.safetensors$/, ""), readFileSync(join(GOLDEN_OPS_DIR, f))));
}

/** One device per test file, destroyed at the end. */
export function useDevice(options?: DeviceOptions): () => Device {
  let device: Device | undefined;
  beforeAll(async () => {
    device = await createDevice(options);
  });
  afterAll(() => device?.destroy());
  return () => device!;
}

/** Runs `step` inside `tidy` `steps` times, clearing the gradients of `params` after each, and
 * returns the pool's bytes in use and allocated after each step (flushed), for tests that the
 * pool stays flat over repeated forward + backward steps. */
export async function poolAfterSteps(
  d: Device,
  params: readonly Tensor[],
  step: () => void,
  steps = 4,
): Promise<{ inUse: number[]; allocated: number[] }> {
  const inUse: number[] = [];
  const allocated: number[] = [];
  for (let k = 0; k < steps; k++) {
    tidy(d, step);
    for (const p of params) {
      p.grad!.dispose();
      p.grad = null;
    }
    await d.flush();
    inUse.push(d.pool.inUseBytes);
    allocated.push(d.pool.allocatedBytes);
  }
  return { inUse, allocated };
}

/** A test per golden case of the given ops, forward and backward, through the same runner as
 * `pulmo check-golden`. */
export function goldenSuite(ops: string[]): void {
  const dev = useDevice();
  const cases = goldenCases().filter((c) => ops.includes(c.op));
  it("has golden cases", () => expect(cases.length).toBeGreaterThan(0));
  for (const c of cases)
    it(`${c.name} (${c.op}${Object.keys(c.grads).length ? ", forward + backward" : ""})`, async () => {
      const r = await runCase(dev(), c);
      expect(r.detail).toBe("");
      expect(r.pass).toBe(true);
    });
}

export const GOLDEN_MODELS_DIR = join(import.meta.dirname, "golden", "models");

/** The whole-model golden case of one network (eval, loss, gradients, BN stats, Adam), through
 * the same runner as `pulmo check-golden`. */
export function modelGoldenTest(name: string): void {
  const dev = useDevice();
  it(`${name} whole-model golden case`, async () => {
    const { runGoldenFile } = await import("../src/golden/run_file.ts");
    const r = await runGoldenFile(dev(), name, readFileSync(join(GOLDEN_MODELS_DIR, `${name}.safetensors`)));
    expect(r.detail).toBe("");
    expect(r.pass).toBe(true);
  });
}

/** The reference state-dict key list of a network at its paper preset
 * (test/golden/models/keys/<name>.txt): every "key [shape]" line, and those left once PyTorch's
 * BN step counters (num_batches_tracked: the engine keeps none, loadStateDict skips them) are dropped. */
export function referenceKeyLines(name: string): { lines: string[]; kept: string[] } {
  const lines = readFileSync(join(GOLDEN_MODELS_DIR, "keys", `${name}.txt`), "utf8").split("\n").filter((l) => l && !l.startsWith("#"));
  return { lines, kept: lines.filter((l) => !/\.num_batches_tracked \[\]$/.test(l)).map((l) => l.trim()) };
}

/** A module's state dict as "key [shape]" lines, comparable with referenceKeyLines. */
export const stateDictLines = (m: { stateDict(): Map<string, { shape: readonly number[] }> }): string[] =>
  [...m.stateDict()].map(([k, t]) => `${k} [${t.shape.join(", ")}]`);

/** `actual` matches a float64 reference within the golden README's default tolerances
 * (rel_l2 1e-5, max_abs_rel 1e-4), every value finite. */
export function expectGoldenClose(actual: ArrayLike<number>, ref: ArrayLike<number>, what: string): void {
  expect(actual.length, what).toBe(ref.length);
  let diff2 = 0, ref2 = 0, maxDiff = 0, maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const dd = Math.abs(actual[i]! - ref[i]!);
    expect(Number.isFinite(actual[i]!), `${what}[${i}] finite`).toBe(true);
    diff2 += dd * dd;
    ref2 += ref[i]! * ref[i]!;
    maxDiff = Math.max(maxDiff, dd);
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  expect(Math.sqrt(diff2) / Math.max(Math.sqrt(ref2), 1e-12), `${what} rel_l2`).toBeLessThan(1e-5);
  expect(maxDiff / Math.max(maxRef, 1e-12), `${what} max_abs_rel`).toBeLessThan(1e-4);
}

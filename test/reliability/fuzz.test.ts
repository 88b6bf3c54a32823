// The seeded quick fuzz run (1,000 inputs per parser; `npm run fuzz` runs 10,000) and the saved
// regression inputs of test/fixtures/fuzz/: every input must parse or be rejected with a
// PulmoError, none may hang or ask for an allocation larger than the file justifies.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fuzzTarget, replayFiles, type TargetResult } from "../fuzz/run.ts";
import { TARGET_NAMES } from "../fuzz/names.ts";

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "fuzz");
const QUICK_INPUTS = 1000;

function expectClean(r: TargetResult): void {
  // failures first: their messages say what broke
  expect(r.failures.map((f) => `#${f.index} ${f.outcome}: ${f.error}`)).toEqual([]);
  expect(r.otherExceptions).toBe(0);
  expect(r.hangs).toBe(0);
  expect(r.oversizedAllocations).toBe(0);
  expect(r.parsed + r.rejectedWithOurError).toBe(r.inputsTried);
}

describe("fuzzed parsers (seeded quick run)", () => {
  for (const name of TARGET_NAMES)
    it(`${name}: ${QUICK_INPUTS} mutated inputs parse or fail with our error`, async () => {
      const r = await fuzzTarget(name, { inputs: QUICK_INPUTS, seed: 20261202, hangMs: 10_000, quick: true });
      expect(r.inputsTried).toBe(QUICK_INPUTS);
      expectClean(r);
      // the mutations reach both sides: some inputs still parse, most are rejected
      expect(r.parsed).toBeGreaterThan(0);
      expect(r.rejectedWithOurError).toBeGreaterThan(QUICK_INPUTS / 2);
    });
});

describe("fuzz harness", () => {
  it("counts planted crashes, over-allocations and hangs (a target with bugs fails the checks)", async () => {
    // the selfcheck target's bug is chosen by input length mod 40 (test/fuzz/targets.ts)
    const dir = mkdtempSync(join(tmpdir(), "pulmo-selfcheck-"));
    try {
      const files = [30, 42, 1, 0, 50, 43, 60].map((n, i) => {
        const p = join(dir, `${i}.bin`);
        writeFileSync(p, new Uint8Array(n));
        return p;
      });
      const r = await replayFiles("selfcheck", files, { hangMs: 1000 });
      expect(r.inputsTried).toBe(7);
      expect(r.parsed).toBe(1); // 30
      expect(r.otherExceptions).toBe(2); // 42, 43
      expect(r.oversizedAllocations).toBe(1); // 1
      expect(r.hangs).toBe(1); // 0
      expect(r.rejectedWithOurError).toBe(2); // 50, 60
      expect(r.failures.map((f) => [f.index, f.outcome])).toEqual([[1, "other"], [2, "alloc"], [3, "hang"], [5, "other"]]);
      expect(r.failures[1]!.error).toMatch(/new Float32Array of 4000000000000 bytes exceeds/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("fuzz regression inputs (test/fixtures/fuzz)", () => {
  const files = readdirSync(FIXTURES).sort();
  it("has fixtures", () => expect(files.length).toBeGreaterThan(0));
  const byTarget = new Map<string, string[]>();
  for (const f of files) {
    const target = f.slice(0, f.indexOf("-"));
    byTarget.set(target, [...(byTarget.get(target) ?? []), join(FIXTURES, f)]);
  }
  for (const [target, paths] of byTarget)
    it(`${target}: ${paths.length} saved input(s) are rejected with our error, quickly, without oversized allocations`, async () => {
      expect(TARGET_NAMES).toContain(target);
      const r = await replayFiles(target, paths, { hangMs: 5_000 });
      expectClean(r);
      expect(r.rejectedWithOurError).toBe(paths.length);
      expect(r.slowest[0]!.ms).toBeLessThan(2_000);
    });
});

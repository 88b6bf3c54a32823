import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors } from "../../weights/safetensors.ts";
import { ADAPTERS } from "../../src/golden/adapters/index.ts";
import { GOLDEN_OPS_DIR, goldenCases } from "../helpers.ts";

const root = join(import.meta.dirname, "..", "..");

describe("golden coverage", () => {
  it("every op in the golden set has an adapter", () => {
    const missing = [...new Set(goldenCases().map((c) => c.op))].filter((op) => !ADAPTERS[op]);
    expect(missing).toEqual([]);
  });
});

describe("pulmo check-golden", () => {
  it("prints a line per case, FAILs an unsupported op with the reason, ends with the count, exits 1", () => {
    const dir = mkdtempSync(join(tmpdir(), "pulmo-golden-"));
    copyFileSync(join(GOLDEN_OPS_DIR, "relu_0.safetensors"), join(dir, "relu_0.safetensors"));
    const bogus = writeSafetensors(
      { x: { shape: [2], data: [1, 2] }, y: { shape: [2], data: [1, 2] } },
      { case: JSON.stringify({ op: "conv4d", attrs: {}, inputs: ["x"], outputs: ["y"], tol: { rel_l2: 1e-5, max_abs_rel: 1e-4 } }) },
    );
    writeFileSync(join(dir, "zz_conv4d_0.safetensors"), bogus);
    writeFileSync(join(dir, "zz_truncated.safetensors"), bogus.subarray(0, 20));
    const r = spawnSync(process.execPath, [join(root, "bin", "pulmo.js"), "check-golden", dir], { encoding: "utf8", timeout: 60_000 });
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^PASS relu_0 /);
    expect(lines[1]).toMatch(/^FAIL zz_conv4d_0 .*unsupported op conv4d/);
    expect(lines[2]).toMatch(/^FAIL zz_truncated .*safetensors: /);
    expect(lines.at(-1)).toBe("1 passed, 2 failed");
    expect(r.status).toBe(1);
  });
});

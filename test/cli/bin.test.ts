import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { COMMANDS } from "../../src/cli/main.ts";
import { pulmo } from "./helpers.ts";

const bin = join(import.meta.dirname, "..", "..", "bin", "pulmo.js");
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" } });

describe("bin/pulmo.js exit codes", () => {
  it("0 for help, 2 for a usage error, 1 for a failure, each with its message", () => {
    const help = run("evaluate", "--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/usage: pulmo evaluate/);
    const usage = run("segment", "ct.nii.gz", "--overlap", "2");
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/pulmo segment: --overlap must be in \[0, 1\), got "2"/);
    const failure = run("evaluate", "--pred", "/nonexistent/p.nii.gz", "--ref", "/nonexistent/r.nii.gz");
    expect(failure.status).toBe(1);
    expect(failure.stderr).toMatch(/pulmo evaluate: reference \/nonexistent\/r.nii.gz: no such file/);
    const unknown = run("segmnt");
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "segmnt"/);
  });
});

describe("help", () => {
  it("every command has --help and `pulmo help <command>`, and the overview lists them all", async () => {
    const overview = await pulmo("help");
    expect(overview.code).toBe(0);
    for (const c of COMMANDS) {
      expect(overview.out).toContain(c.name);
      const a = await pulmo(c.name, "--help");
      const b = await pulmo("help", c.name);
      expect(a.code).toBe(0);
      expect(a.out).toBe(b.out);
      expect(a.out).toMatch(new RegExp(`^usage: pulmo ${c.name}`));
    }
    expect((await pulmo()).code).toBe(2);
    // bench: the suite and the suite-specific options are checked before anything runs
    expect((await pulmo("bench", "gpu")).err).toMatch(/unknown suite "gpu" \(kernels, models\)/);
    expect((await pulmo("bench", "kernels", "--size", "paper")).err).toMatch(/--size is an option of the models suite/);
    expect((await pulmo("bench")).code).toBe(2);
    expect((await pulmo("help", "nope")).code).toBe(2);
  });
});

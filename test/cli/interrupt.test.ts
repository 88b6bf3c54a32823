// Ctrl-C during `pulmo segment` over a folder: the run stops at the next window with a message,
// exits 1, and leaves only complete outputs (no partial file under a final name).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makePhantom } from "../../src/pipeline/phantom.ts";
import { useTmp, writeVolume } from "./helpers.ts";

const bin = join(import.meta.dirname, "..", "..", "bin", "pulmo.js");

describe("SIGINT", () => {
  const tmp = useTmp("interrupt");
  it("stops a folder run of pulmo segment within a window, exit 1, only whole outputs", async () => {
    const cases = join(tmp(), "cases");
    const out = join(tmp(), "masks");
    mkdirSync(cases);
    for (let k = 0; k < 4; k++) {
      const p = makePhantom({ seed: 50 + k, shape: [24, 64, 64], spacing: [6, 4.8, 4.8] });
      writeVolume(join(cases, `case${k}.nii.gz`), p.ct, p.shape, p.spacing, "int16");
    }
    const child = spawn(process.execPath, [bin, "segment", cases, "--out", out], {
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" },
    });
    let err = "";
    let sent = false;
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      // interrupt once the model is loaded and the first case has started
      if (!sent && /model: /.test(err)) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    expect(sent).toBe(true);
    expect(code, err).toBe(1);
    expect(err).toMatch(/interrupted: stopping after the current window/);
    expect(err).toMatch(/cancelled/);
    const written = (existsSync(out) ? readdirSync(out, { withFileTypes: true }) : []).filter((e) => e.isFile()).map((e) => e.name);
    expect(written.length).toBeLessThan(4);
    for (const f of written) expect(f).toMatch(/^case\d\.nii\.gz$/);
  });
});

// SIGKILL during writes: a child rewrites a 48 MiB checkpoint, a NIfTI mask and an RTSTRUCT with
// writeFileAtomic in a loop and is killed at arbitrary moments. Each final name must then hold a
// complete file of a generation at least as new as the last one reported, nothing partial may sit
// under a final name, and the temporaries a killed writer leaves are removed by the next writer.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readSafetensors } from "../../weights/safetensors.ts";
import { readNifti } from "../../src/io/nifti.ts";
import { listRois } from "../../src/io/dicom/index.ts";

const dir = mkdtempSync(join(tmpdir(), "pulmo-atomic-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const FINAL = ["mask.nii.gz", "model.safetensors", "rtstruct.dcm"];
type Kind = "checkpoint" | "mask" | "rtstruct";

/** Runs the writer until `until(progress)` holds, then SIGKILLs it: `"in-write"` as soon as a
 * temporary file appears (the kill lands while a file is being written, unless the write wins the
 * race), or a number of milliseconds later. */
function runAndKill(until: (last: Record<Kind, number>) => boolean, when: "in-write" | number): Promise<Record<Kind, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "atomic_child.ts"), dir], { stdio: ["ignore", "pipe", "pipe"] });
    const last: Record<Kind, number> = { checkpoint: 0, mask: 0, rtstruct: 0 };
    let buffered = "", stderr = "", killing = false;
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const [kind, gen] = line.split(" ");
        last[kind as Kind] = Number(gen);
      }
      if (!killing && until(last)) {
        killing = true;
        if (typeof when === "number") setTimeout(() => child.kill("SIGKILL"), when);
        else {
          const deadline = Date.now() + 5000;
          const poll = () => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            if (leftovers().some((n) => n.endsWith(".tmp")) || Date.now() > deadline) child.kill("SIGKILL");
            else setImmediate(poll);
          };
          poll();
        }
      }
    });
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("exit", (code, signal) => (signal === "SIGKILL" ? resolve({ ...last }) : reject(new Error(`writer exited with ${code}: ${stderr}`))));
  });
}

/** Every final file parses completely and is of generation ≥ the last one reported. */
function checkFinals(last: Record<Kind, number>): void {
  const ckpt = readSafetensors(new Uint8Array(readFileSync(join(dir, "model.safetensors"))));
  const gen = Number(ckpt.metadata.generation);
  expect(gen).toBeGreaterThanOrEqual(last.checkpoint);
  const w = ckpt.float32("w");
  expect(w.length).toBe(12 * 1024 * 1024);
  expect(w[0]).toBe(gen);
  expect(w[w.length - 1]).toBe(gen); // the tail too: the file is whole
  const mask = readNifti(new Uint8Array(readFileSync(join(dir, "mask.nii.gz"))));
  expect(mask.shape).toEqual([48, 64, 64]);
  expect(mask.data.some((v) => v === 1)).toBe(true);
  const rois = listRois(new Uint8Array(readFileSync(join(dir, "rtstruct.dcm"))));
  expect(rois).toHaveLength(1);
  expect(Number(rois[0]!.name.replace("GTV gen ", ""))).toBeGreaterThanOrEqual(last.rtstruct);
}

/** Names in the folder other than the three finals: only writers' temporaries. */
const leftovers = () => readdirSync(dir).filter((n) => !FINAL.includes(n));

describe("atomic outputs under SIGKILL", () => {
  it("killed mid-write and at other moments, the previous files stay intact and nothing partial is under a final name", async () => {
    let sawTemp = false;
    const seenTemps = new Set<string>();
    for (const when of ["in-write", 13, "in-write", 37, "in-write", "in-write"] as const) {
      const last = await runAndKill((l) => l.rtstruct >= 1 && l.checkpoint >= 2, when);
      expect(readdirSync(dir).filter((n) => FINAL.includes(n)).sort()).toEqual(FINAL);
      checkFinals(last);
      const temps = leftovers();
      for (const t of temps) {
        expect(t).toMatch(/^\.(mask\.nii\.gz|model\.safetensors|rtstruct\.dcm)\.[A-Za-z0-9-]+\.\d+\.[0-9a-z]+\.tmp$/);
        seenTemps.add(t);
      }
      if (temps.length) sawTemp = true;
    }
    // the kills did land inside writes (a temporary was left behind at least once) ...
    expect(sawTemp).toBe(true);
    // ... and every temporary of a killed writer was removed by a later writer of the same name
    const final = await runAndKill((l) => l.rtstruct >= 1 && l.checkpoint >= 2, 0);
    // (a kill at 0 ms may itself leave a fresh temporary: only the earlier ones must be gone)
    checkFinals(final);
    const stillThere = leftovers().filter((t) => seenTemps.has(t));
    expect(stillThere).toEqual([]);
  }, 240_000);
});

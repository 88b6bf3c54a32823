// Shared helpers of the CLI tests: temporary folders, small NIfTI files, captured console output.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, vi } from "vitest";
import { writeNifti } from "../../src/io/nifti.ts";
import { main } from "../../src/cli/main.ts";

/** A fresh temporary folder per test file, removed afterwards. */
export function useTmp(prefix: string): () => string {
  const dir = mkdtempSync(join(tmpdir(), `pulmo-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

export function writeVolume(path: string, data: ArrayLike<number>, shape: [number, number, number], spacing: [number, number, number] = [2.5, 0.9, 0.9], datatype: "uint8" | "int16" | "float32" = "uint8"): void {
  writeFileSync(path, writeNifti({ data: Float32Array.from(data), shape, spacing }, { datatype, gzip: path.endsWith(".gz") }));
}

/** Runs `pulmo ARGV` in-process; returns the exit code and what went to stdout and stderr. */
export async function pulmo(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  const error = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(" ")));
  const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    const code = await main(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    log.mockRestore();
    error.mockRestore();
    stderr.mockRestore();
  }
}

/** Names in `dir` (temporary files of atomic writes start with "."). */
export const listing = (dir: string) => readdirSync(dir).sort();

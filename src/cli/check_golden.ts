import { readFileSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { commandDevice } from "./device.ts";
import { runGoldenFile } from "../golden/run_file.ts";
import { UsageError, type Command } from "./args.ts";

/** `pulmo check-golden DIR...`: one line per case (op or whole-model), then `N passed, M failed`;
 * exit 1 on any failure. */
export async function checkGolden(dirs: readonly string[]): Promise<number> {
  const files: string[] = [];
  for (const dir of dirs)
    try {
      files.push(
        ...(statSync(dir).isDirectory()
          ? readdirSync(dir).filter((f) => f.endsWith(".safetensors")).sort().map((f) => join(dir, f))
          : [dir]),
      );
    } catch {
      throw new UsageError(`check-golden: cannot read ${dir}`);
    }
  const device = await commandDevice();
  let passed = 0,
    failed = 0;
  try {
    for (const f of files) {
      const name = basename(f, ".safetensors");
      let line: string;
      try {
        const r = await runGoldenFile(device, name, readFileSync(f));
        line = `${r.pass ? "PASS" : "FAIL"} ${name.padEnd(32)} ${r.op.padEnd(20)} worst rel_l2 ${Number.isFinite(r.worst) ? r.worst.toExponential(2) : "-"}${r.detail ? `  ${r.detail}` : ""}`;
        r.pass ? passed++ : failed++;
      } catch (e) {
        line = `FAIL ${name.padEnd(32)} error: ${(e as Error).message}`;
        failed++;
      }
      console.log(line);
    }
  } finally {
    device.destroy();
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

export const checkGoldenCommand: Command = {
  name: "check-golden",
  summary: "run every golden case (op or whole model) in each DIR on the GPU",
  usage: "pulmo check-golden DIR|FILE...",
  description: "Each .safetensors golden file is run forward (and backward where it has gradients) and compared\nwith its stored outputs. One PASS/FAIL line per case, then a count; exit 1 if any case fails.",
  flags: {},
  positionals: { name: "DIR|FILE...", help: "folders of golden .safetensors files, or single files", min: 1, max: Infinity },
  examples: ["pulmo check-golden test/golden/ops test/golden/models"],
  run: (a) => checkGolden(a.positionals),
};

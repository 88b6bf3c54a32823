import { readFileSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { createDevice } from "../node.ts";
import { runGoldenFile } from "../golden/run_file.ts";

/** `pulmo check-golden DIR...`: one line per case (op or whole-model), then `N passed, M failed`;
 * exit 1 on any failure. */
export async function checkGolden(args: string[]): Promise<number> {
  if (args.length === 0) {
    console.error("usage: pulmo check-golden DIR...");
    return 2;
  }
  const files: string[] = [];
  for (const dir of args)
    try {
      files.push(
        ...(statSync(dir).isDirectory()
          ? readdirSync(dir).filter((f) => f.endsWith(".safetensors")).sort().map((f) => join(dir, f))
          : [dir]),
      );
    } catch {
      console.error(`check-golden: cannot read ${dir}`);
      return 2;
    }
  const device = await createDevice();
  let passed = 0,
    failed = 0;
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
  console.log(`${passed} passed, ${failed} failed`);
  device.destroy();
  return failed ? 1 : 0;
}

// npm run fuzz: every parser's fuzz set (default 10,000 inputs each, seed 1) → test/results/fuzz.json.
// Inputs that crash or over-allocate are written to test/results/fuzz-failures/ for triage; once a
// bug is fixed its input belongs in test/fixtures/fuzz/ (replayed by test/reliability/fuzz.test.ts).
// Usage: tsx scripts/fuzz.ts [--inputs N] [--seed S] [--only name,name] [--out file]
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fuzzTarget, type TargetResult } from "../test/fuzz/run.ts";
import { TARGET_NAMES } from "../test/fuzz/names.ts";

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const inputs = Number(arg("inputs") ?? 10_000);
const seed = Number(arg("seed") ?? 1);
const only = arg("only")?.split(",") ?? TARGET_NAMES;
const root = join(import.meta.dirname, "..");
const out = arg("out") ?? join(root, "test", "results", "fuzz.json");

const results: Omit<TargetResult, "failures">[] = [];
const failureDir = join(root, "test", "results", "fuzz-failures");
let bad = 0;
for (const name of only) {
  process.stdout.write(`${name}: ${inputs} inputs… `);
  const r = await fuzzTarget(name, { inputs, seed });
  const { failures, ...summary } = r;
  results.push({ ...summary, failures: failures.map(({ input: _input, ...f }) => f) } as Omit<TargetResult, "failures">);
  for (const f of failures)
    if (f.input) {
      mkdirSync(failureDir, { recursive: true });
      writeFileSync(join(failureDir, `${name}-${seed}-${f.index}.bin`), f.input);
    }
  bad += r.otherExceptions + r.hangs + r.oversizedAllocations;
  console.log(
    `${r.parsed} parsed, ${r.rejectedWithOurError} rejected with our error, ${r.otherExceptions} other exceptions, ` +
      `${r.hangs} hangs, ${r.oversizedAllocations} oversized allocations, ${r.seconds} s`,
  );
  for (const f of failures.slice(0, 5)) console.log(`  #${f.index} ${f.outcome}: ${f.error}`);
}
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  JSON.stringify({ date: new Date().toISOString(), node: process.version, seed, inputsPerParser: inputs, parsers: results }, null, 2) + "\n",
);
console.log(`wrote ${out}`);
process.exitCode = bad ? 1 : 0;

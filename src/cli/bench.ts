import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError, type Command } from "./args.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SUITES = ["kernels", "models"] as const;

/** Runs bench/<suite>.ts through tsx as a child process with its output passed through; resolves
 * to the child's exit code (1 if it died of a signal). */
export function runBench(suite: string, extra: readonly string[]): Promise<number> {
  if (!(SUITES as readonly string[]).includes(suite)) throw new UsageError(`bench: unknown suite ${JSON.stringify(suite)} (kernels, models)`);
  const script = join(repoRoot, "bench", `${suite}.ts`);
  if (!existsSync(script)) throw new UsageError(`bench: ${script} not found (bench/ ships with the repository, not the package)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...extra], { cwd: repoRoot, stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

export const benchCommand: Command = {
  name: "bench",
  summary: "run the kernel or the model benchmark (bench/kernels.ts, bench/models.ts)",
  usage: "pulmo bench kernels|models [--quick] [models options]",
  description: "Runs the benchmark script as a child process; results go to bench/results/ (see bench/NOTES.md).",
  flags: {
    quick: { type: "boolean", help: "kernels: sizes halved per axis and 3 repetitions (a smoke run)" },
    size: { type: "string", choices: ["reduced", "paper"], help: "models: input sizes" },
    reps: { type: "int", min: 3, help: "models: timed repetitions per figure" },
    "budget-s": { type: "number", min: 0, help: "models: stop starting new models after this many seconds" },
    models: { type: "string", value: "A,B", help: "models: only these registry names" },
  },
  positionals: { name: "SUITE", help: "kernels or models", min: 1, max: 1 },
  examples: ["pulmo bench kernels --quick", "pulmo bench models --models unet3d,resunet"],
  run: (a) => {
    const suite = a.positionals[0]!;
    const extra: string[] = [];
    if (a.bool("quick")) extra.push("--quick");
    for (const f of ["size", "reps", "budget-s", "models"] as const) {
      if (!a.has(f)) continue;
      if (suite !== "models") throw new UsageError(`bench: --${f} is an option of the models suite`);
      extra.push(`--${f}`, String(f === "size" || f === "models" ? a.str(f) : a.num(f)));
    }
    return runBench(suite, extra);
  },
};

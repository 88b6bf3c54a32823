// Runs fuzz inputs [start, end) of one target and posts one message per input. Runs in a worker
// thread so the parent can kill it when an input hangs (a synchronous parser cannot be
// interrupted from inside).
import { parentPort, workerData } from "node:worker_threads";
import { installAllocationWatch } from "./alloc.ts";

export interface WorkerJob {
  target: string;
  seed: number;
  start: number;
  end: number;
  /** replay these files (inputs start..end of the list) instead of generating inputs */
  files?: string[];
  /** smaller "enormous" inputs (the test suite's quick run) */
  quick?: boolean;
}

export type Outcome = "parsed" | "rejected" | "other" | "alloc";

export interface InputResult {
  index: number;
  outcome: Outcome;
  ms: number;
  /** largest single allocation / input bytes */
  largest: number;
  inputBytes: number;
  /** error name and message (rejected, other, alloc) */
  error?: string;
  /** the input itself, for other and alloc outcomes (to keep as a regression fixture) */
  input?: Uint8Array;
}

const watch = installAllocationWatch();
const { PulmoError } = await import("../../src/runtime/errors.ts");
const { makeTarget, ALLOC_SLACK } = await import("./targets.ts");
const { applyCase, caseArb, drawCase } = await import("./mutate.ts");
const { readFileSync } = await import("node:fs");

const job = workerData as WorkerJob;
const target = makeTarget(job.target, job.quick);
const arb = caseArb(target.seeds.length, target.fields.length);
for (let index = job.start; index < job.end; index++) {
  watch.reset(Infinity);
  const input = job.files ? new Uint8Array(readFileSync(job.files[index]!)) : applyCase(drawCase(arb, job.seed, index), target.seeds, target.fields);
  watch.reset(target.allocFactor * input.byteLength + ALLOC_SLACK);
  const t0 = performance.now();
  let outcome: Outcome = "parsed";
  let error: string | undefined;
  try {
    target.run(input);
  } catch (e) {
    error = e instanceof Error ? `${e.name}: ${e.message}`.slice(0, 300) : String(e);
    outcome = e instanceof PulmoError ? "rejected" : "other";
  }
  const ms = performance.now() - t0;
  if (watch.violation) {
    outcome = "alloc";
    error = `${watch.violation.message}${error && !error.startsWith("AllocationLimitError") ? ` (then ${error})` : ""}`;
  }
  const bad = outcome === "other" || outcome === "alloc";
  parentPort!.postMessage({ index, outcome, ms, largest: watch.largest / Math.max(1, input.byteLength), inputBytes: input.byteLength, error, ...(bad ? { input } : {}) } satisfies InputResult);
}
target.cleanup?.();
parentPort!.postMessage({ done: true });

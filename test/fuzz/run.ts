// Fuzz driver: runs each target's inputs in a worker thread, with a per-input time bound (a
// worker silent for longer is killed, the input counted as a hang, and a fresh worker resumes
// after it), and tallies the outcomes. `npm run fuzz` runs the full set (scripts/fuzz.ts); the test
// suite runs a seeded quick set (test/reliability/fuzz.test.ts).
import { Worker } from "node:worker_threads";
import type { InputResult, WorkerJob } from "./worker.ts";

export interface FuzzOptions {
  inputs: number;
  seed: number;
  /** an input running longer than this is a hang (ms) */
  hangMs?: number;
  /** inputs slower than this are counted as slow (ms) */
  slowMs?: number;
  /** smaller "enormous" inputs, for the test suite */
  quick?: boolean;
}

export interface Failure {
  index: number;
  outcome: "other" | "alloc" | "hang";
  error: string;
  input?: Uint8Array;
}

export interface TargetResult {
  parser: string;
  inputsTried: number;
  parsed: number;
  rejectedWithOurError: number;
  otherExceptions: number;
  hangs: number;
  /** inputs that asked for a single allocation over the bound (allocFactor × bytes + 1 MiB) */
  oversizedAllocations: number;
  seconds: number;
  /** slowest inputs */
  slowest: { index: number; ms: number; inputBytes: number }[];
  /** inputs slower than slowMs */
  slow: number;
  /** largest single allocation seen relative to its input's size */
  largestAllocationPerInputByte: number;
  /** the most common rejection messages (digits folded), so the report shows what was caught */
  topRejections: { message: string; count: number }[];
  failures: Failure[];
}

/** Runs saved inputs (regression fixtures) of one target through the same worker and checks. */
export function replayFiles(target: string, files: string[], o: Omit<FuzzOptions, "inputs" | "seed"> = {}): Promise<TargetResult> {
  return fuzzTarget(target, { ...o, inputs: files.length, seed: 0 }, files);
}

export async function fuzzTarget(target: string, o: FuzzOptions, files?: string[]): Promise<TargetResult> {
  const hangMs = o.hangMs ?? 10_000;
  const slowMs = o.slowMs ?? 1_000;
  const r: TargetResult = {
    parser: target, inputsTried: 0, parsed: 0, rejectedWithOurError: 0, otherExceptions: 0, hangs: 0, oversizedAllocations: 0,
    seconds: 0, slowest: [], slow: 0, largestAllocationPerInputByte: 0, topRejections: [], failures: [],
  };
  const rejections = new Map<string, number>();
  const t0 = performance.now();
  let next = 0;
  while (next < o.inputs) {
    next = await new Promise<number>((resolve, reject) => {
      const job: WorkerJob = { target, seed: o.seed, start: next, end: o.inputs, files, quick: o.quick };
      const worker = new Worker(new URL("./worker.mjs", import.meta.url), { workerData: job });
      let expected = next;
      let settled = false;
      // the first message also waits for the worker to load its modules
      let timer = setTimeout(onHang, hangMs + 20_000);
      function finish(resumeAt: number) {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        void worker.terminate();
        resolve(resumeAt);
      }
      function onHang() {
        r.inputsTried++;
        r.hangs++;
        r.failures.push({ index: expected, outcome: "hang", error: `no result within ${hangMs} ms` });
        finish(expected + 1);
      }
      worker.on("message", (m: InputResult | { done: true }) => {
        if ("done" in m) return finish(o.inputs);
        clearTimeout(timer);
        timer = setTimeout(onHang, hangMs);
        expected = m.index + 1;
        r.inputsTried++;
        if (m.outcome === "parsed") r.parsed++;
        else if (m.outcome === "rejected") {
          r.rejectedWithOurError++;
          const key = (m.error ?? "").replace(/\d+(\.\d+)?(e[+-]?\d+)?/g, "N").replace(/'[^']*'/g, "'…'").slice(0, 120);
          rejections.set(key, (rejections.get(key) ?? 0) + 1);
        } else {
          if (m.outcome === "other") r.otherExceptions++;
          else r.oversizedAllocations++;
          if (r.failures.length < 50) r.failures.push({ index: m.index, outcome: m.outcome, error: m.error ?? "", input: m.input });
        }
        if (m.ms > slowMs) r.slow++;
        r.slowest.push({ index: m.index, ms: Math.round(m.ms * 10) / 10, inputBytes: m.inputBytes });
        if (r.slowest.length > 20) r.slowest = r.slowest.sort((a, b) => b.ms - a.ms).slice(0, 5);
        r.largestAllocationPerInputByte = Math.max(r.largestAllocationPerInputByte, m.largest);
      });
      worker.on("error", (e: Error) => {
        // an exception that escaped the worker's own try (e.g. out of memory while building an input)
        r.inputsTried++;
        r.otherExceptions++;
        r.failures.push({ index: expected, outcome: "other", error: `worker died: ${e.message}` });
        finish(expected + 1);
      });
      worker.on("exit", (code) => {
        if (!settled) reject(new Error(`fuzz worker for ${target} exited with code ${code} before finishing`));
      });
    });
  }
  r.seconds = Math.round((performance.now() - t0) / 10) / 100;
  r.slowest = r.slowest.sort((a, b) => b.ms - a.ms).slice(0, 5);
  r.largestAllocationPerInputByte = Math.round(r.largestAllocationPerInputByte * 100) / 100;
  r.topRejections = [...rejections].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([message, count]) => ({ message, count }));
  return r;
}

// Golden-case page: runs test/golden/ops (copied to golden/ops/ by build:web) on this browser's
// WebGPU through src/golden, the runner `pulmo check-golden` uses. The browser test calls
// window.pulmoGolden.run(); a person presses the button.
import { createDevice } from "../src/browser.ts";
import { runGoldenFile } from "../src/golden/run_file.ts";
import type { CaseResult } from "../src/golden/runner.ts";
import { explain } from "./messages.ts";

export interface GoldenReport {
  adapter: string;
  results: (CaseResult & { ms: number })[];
  passed: number;
  failed: number;
  ms: number;
}

async function run(filter?: (name: string) => boolean): Promise<GoldenReport> {
  const names: string[] = await (await fetch("golden/ops/index.json")).json();
  const device = await createDevice();
  const table = document.getElementById("cases") as HTMLTableElement;
  const report: GoldenReport = { adapter: device.adapterDescription, results: [], passed: 0, failed: 0, ms: 0 };
  const t0 = performance.now();
  try {
    for (const name of names.filter((n) => !filter || filter(n))) {
      const t = performance.now();
      const res = await fetch(`golden/ops/${name}.safetensors`);
      let r: CaseResult;
      try {
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        r = await runGoldenFile(device, name, new Uint8Array(await res.arrayBuffer()));
      } catch (e) {
        r = { name, op: "?", pass: false, worst: Infinity, detail: `error: ${(e as Error).message}` };
      }
      const ms = performance.now() - t;
      report.results.push({ ...r, ms });
      r.pass ? report.passed++ : report.failed++;
      const row = table.insertRow();
      for (const v of [name, r.op, r.pass ? "PASS" : "FAIL", Number.isFinite(r.worst) ? r.worst.toExponential(2) : "-", ms.toFixed(0), r.detail])
        row.insertCell().textContent = v;
      document.getElementById("summary")!.textContent = `${report.passed} passed, ${report.failed} failed on ${report.adapter}`;
    }
  } finally {
    device.destroy();
  }
  report.ms = performance.now() - t0;
  return report;
}

(window as any).pulmoGolden = { run };
document.getElementById("run")!.addEventListener("click", async () => {
  document.body.dataset.state = "running";
  try {
    await run();
    document.body.dataset.state = "done";
  } catch (e) {
    const box = document.getElementById("message")!;
    box.hidden = false;
    box.textContent = explain(e, "running the golden cases");
    document.body.dataset.state = "error";
  }
});

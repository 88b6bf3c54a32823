// `npm run test:browser`: the page and the golden cases in Debian's headless Chromium on its WebGPU
// (SwiftShader), driven by playwright-core. A plain script (not a vitest file) so `npm test` never
// starts a browser. Builds dist/web first, serves it on 127.0.0.1, then:
//   1. every public golden op case, forward and backward, through src/golden in the page: all must pass;
//   2. the demo: phantom → segmentation → overlay drawn, Dice ≥ 0.8, screenshot in test/artifacts/;
//      a file that is not NIfTI gives the page's message;
//   3. without WebGPU (no --enable-unsafe-webgpu) the page says so;
// and fails on any uncaught page error or console error. Flags: ../shared/RECIPES.md.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { startServer } from "../../scripts/serve_web.mjs";

const root = join(import.meta.dirname, "..", "..");
const artifacts = join(root, "test", "artifacts");
const COMMON_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
// SwiftShader with canvas and screenshots (one --enable-features switch: only the last one counts)
const WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--enable-features=Vulkan,CDPScreenshotNewSurface,SkipListAccountsWithoutGaiaCookies", "--use-vulkan=swiftshader", "--use-angle=vulkan"];

const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
};
const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

async function launch(args: string[]): Promise<{ context: BrowserContext; page: Page; close: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "pulmo-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: "/usr/bin/chromium", headless: true, args: [...COMMON_ARGS, ...args] });
  const page = context.pages()[0] ?? (await context.newPage());
  // (c) any uncaught error or console error fails the run
  page.on("pageerror", (e) => check(false, `no uncaught page error (got: ${e.message})`));
  page.on("console", (m) => {
    if (m.type() === "error") check(false, `no console error (got: ${m.text()})`);
  });
  return { context, page, close: async () => (await context.close(), rmSync(profile, { recursive: true, force: true })) };
}

async function goldenCases(page: Page, url: string): Promise<void> {
  const expected = readdirSync(join(root, "test", "golden", "ops")).filter((f) => f.endsWith(".safetensors")).length;
  await page.goto(`${url}golden.html`);
  const t0 = performance.now();
  const report = await page.evaluate(() => (window as any).pulmoGolden.run());
  for (const r of report.results) if (!r.pass) console.log(`  FAIL ${r.name} (${r.op}): ${r.detail}`);
  const slowest = [...report.results].sort((a: any, b: any) => b.ms - a.ms).slice(0, 3).map((r: any) => `${r.name} ${(r.ms / 1000).toFixed(1)} s`);
  console.log(`  adapter: ${report.adapter}; ${report.results.length} cases in ${seconds(t0)}; slowest: ${slowest.join(", ")}`);
  check(report.results.length === expected && report.failed === 0, `golden op cases in the browser: ${report.passed}/${expected} pass`);
}

// Counted in the page. A string, because tsx would wrap a function's inner helpers in its own
// __name() calls, which do not exist in the page.
const CANVAS_STATS = `(() => {
  const pixels = (id) => { const c = document.getElementById(id); return c.getContext("2d").getImageData(0, 0, c.width, c.height).data; };
  const o = pixels("overlay"), ct = pixels("ct-canvas");
  let predicted = 0, reference = 0;
  for (let i = 0; i < o.length; i += 4) {
    if (o[i + 3] === 0) continue;
    if (o[i] > 200 && o[i + 1] < 100) predicted++;
    else if (o[i + 1] > 200 && o[i] < 100) reference++;
  }
  const greys = new Set();
  for (let i = 0; i < ct.length; i += 4) greys.add(ct[i]);
  return { predicted, reference, greys: greys.size };
})()`;

/** Waits for the page's model list; true when it offers bundled weights (not only the user's own file). */
async function bundledWeightsListed(page: Page): Promise<boolean> {
  await page.waitForFunction(() => (document.getElementById("model") as HTMLSelectElement).options.length > 0);
  return page.evaluate(() => (document.getElementById("model") as HTMLSelectElement).options.length > 1);
}

async function demo(page: Page, url: string): Promise<void> {
  await page.goto(url);
  const bundled = await bundledWeightsListed(page);
  check(bundled, "the page offers bundled weights (assets/weights/*.safetensors)");
  if (!bundled) return;
  // a file that is not NIfTI: the page names the problem
  await page.setInputFiles("#ct-file", { name: "notes.nii", mimeType: "application/octet-stream", buffer: Buffer.from("this is not a NIfTI file, only text ".repeat(20)) });
  await page.waitForSelector("#message:not([hidden])");
  const msg = (await page.textContent("#message")) ?? "";
  check(/notes\.nii is not a readable NIfTI-1 file/.test(msg), `a non-NIfTI file is reported (${JSON.stringify(msg.slice(0, 90))})`);

  await page.click("#phantom");
  await page.waitForFunction(() => !(document.getElementById("run") as HTMLButtonElement).disabled);
  const t0 = performance.now();
  await page.click("#run");
  await page.waitForFunction(() => document.body.dataset.state === "done" || document.body.dataset.state === "error", null, { timeout: 600_000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state === "error") console.log(`  page message: ${await page.textContent("#message")}`);
  check(state === "done", `phantom segmented (${seconds(t0)}; ${await page.textContent("#stage")})`);
  const times = await page.evaluate(() => ["t-pre", "t-inf", "t-post"].map((id) => document.getElementById(id)!.textContent));
  console.log(`  stage times: preprocess ${times[0]}, inference ${times[1]}, post-process ${times[2]}`);
  const dice = Number(await page.getAttribute("#dice", "data-value"));
  check(dice >= 0.8, `Dice against the phantom's GTV ≥ 0.8 (got ${dice.toFixed(3)}, HD95 ${await page.textContent("#hd95")})`);
  const pixels: { predicted: number; reference: number; greys: number } = await page.evaluate(CANVAS_STATS);
  check(pixels.predicted >= 20 && pixels.reference >= 20, `overlay contours drawn (${pixels.predicted} prediction, ${pixels.reference} reference pixels)`);
  check(pixels.greys >= 16, `CT slice drawn (${pixels.greys} grey levels)`);
  const download = page.waitForEvent("download");
  await page.click("#download");
  check(/_mask\.nii\.gz$/.test((await download).suggestedFilename()), "mask downloads as NIfTI");
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "demo.png"), fullPage: true });
  console.log(`  screenshot: test/artifacts/demo.png`);
}

async function withoutWebGpu(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await bundledWeightsListed(page); // the device is requested before any weights are read
  await page.click("#phantom");
  await page.waitForFunction(() => !(document.getElementById("run") as HTMLButtonElement).disabled);
  await page.click("#run");
  await page.waitForFunction(() => document.body.dataset.state === "error", null, { timeout: 60_000 });
  const msg = (await page.textContent("#message")) ?? "";
  check(/WebGPU is not available/.test(msg), `without WebGPU the page says so (${JSON.stringify(msg.slice(0, 60))})`);
}

const only = process.argv.slice(2); // optional: golden, demo, nowebgpu
const wants = (part: string) => only.length === 0 || only.includes(part);
const t0 = performance.now();
execFileSync(process.execPath, [join(root, "scripts", "build_web.mjs")], { stdio: "inherit" });
const server = await startServer({ root: join(root, "dist", "web"), port: 0 });
try {
  const browser = await launch(WEBGPU_ARGS);
  try {
    if (wants("golden")) await goldenCases(browser.page, server.url);
    if (wants("demo")) await demo(browser.page, server.url);
  } finally {
    await browser.close();
  }
  if (wants("nowebgpu")) {
    const plain = await launch([]);
    try {
      await withoutWebGpu(plain.page, server.url);
    } finally {
      await plain.close();
    }
  }
} catch (e) {
  check(false, `browser test ran to the end (${(e as Error).stack ?? e})`);
} finally {
  await server.close();
}
console.log(`${failures.length ? `${failures.length} failed` : "all passed"} in ${seconds(t0)}`);
process.exit(failures.length ? 1 : 0);

import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");

// A user's program, type-checked against the shipped declarations through the package's own
// "exports" (self-reference by name), once as Node sees it and once with the "browser" condition.
const consumer = `
import { createDevice, loadModel, segment, readNifti, readBytes, evaluateCase, maskMetrics, makePhantom, Tensor, PulmoError, type SegmentResult } from "pulmo";
export async function run(bytes: ArrayBuffer, url: URL): Promise<SegmentResult> {
  const device = await createDevice();
  const { net, spec } = await loadModel(device, url);
  const ct = readNifti(await readBytes(bytes));
  const p = makePhantom({ shape: [8, 16, 16] });
  maskMetrics({ data: p.masks.gtv, shape: p.shape }, { data: p.masks.gtv, shape: p.shape }, p.spacing);
  evaluateCase({ data: p.masks.gtv, shape: p.shape, spacing: p.spacing }, { data: p.masks.gtv, shape: p.shape, spacing: p.spacing });
  Tensor.from(device, new Float32Array(4), [4]).dispose();
  // @ts-expect-error segment needs its options: the declarations are real types, not any
  await segment(net, ct);
  if (!(ct.data instanceof Float32Array)) throw new PulmoError("unreachable");
  return segment(net, ct, spec);
}
`;

describe("package entry", () => {
  it("builds both bundles with one API and declarations a user's program type-checks against", () => {
    const out = execFileSync(process.execPath, [join(root, "scripts", "build.mjs")], { encoding: "utf8" });
    expect(out).toMatch(/both entries export the same \d+ names/);
    const dir = join(root, "dist", "consumer-check");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "consumer.ts"), consumer);
    // Browser: WebGPU types from the DOM lib, and library checking on, so the shipped declarations
    // themselves are type-checked. Node: WebGPU types from @webgpu/types (which needs the DOM lib and
    // clashes with its WebGPU part, hence skipLibCheck, as in this repository's own tsconfig).
    const setups = {
      browser: { lib: ["ES2022", "DOM"], types: [], customConditions: ["browser"], skipLibCheck: false },
      node: { lib: ["ES2022", "DOM"], types: ["node", "@webgpu/types"], skipLibCheck: true },
    };
    for (const [name, extra] of Object.entries(setups)) {
      const config = { compilerOptions: { target: "ES2022", module: "ESNext", moduleResolution: "Bundler", strict: true, noEmit: true, ...extra }, files: ["consumer.ts"] };
      writeFileSync(join(dir, `tsconfig.${name}.json`), JSON.stringify(config));
      // throws (with tsc's messages) on any type error
      execFileSync(process.execPath, [tsc, "-p", join(dir, `tsconfig.${name}.json`)], { encoding: "utf8", cwd: dir });
    }
  });

  it("imports as `pulmo` in Node and runs a kernel from the bundle", () => {
    const script = `
      import * as p from "pulmo";
      const device = await p.createDevice();
      const y = p.relu(p.Tensor.from(device, new Float32Array([-1, 2, -3, 4]), [4]));
      console.log(JSON.stringify({ y: [...(await y.read())], n: Object.keys(p).length }));
      device.destroy();`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", cwd: root, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp" } });
    const r = JSON.parse(out.trim().split("\n").at(-1)!);
    expect(r.y).toEqual([0, 2, 0, 4]);
    expect(r.n).toBeGreaterThan(100);
  });
});

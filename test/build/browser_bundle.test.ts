import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");

describe("browser bundle", () => {
  it("builds with every kernel inlined and no Node built-in reachable", () => {
    const out = execFileSync(process.execPath, [join(root, "scripts", "build.mjs")], { encoding: "utf8" });
    expect(out).toMatch(/built dist\/pulmo.browser.js: [\d.]+ KiB/);
    const bundle = readFileSync(join(root, "dist", "pulmo.browser.js"), "utf8");
    expect(bundle).not.toMatch(/from\s*"node:|require\("(node:)?(fs|path|zlib)"\)/);
    // every kernel's WGSL is in the bundle (names are keys of the inlined map)
    const kernels = (dir: string, prefix = ""): string[] =>
      readdirSync(join(root, "kernels", dir), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? kernels(join(dir, e.name), `${prefix}${e.name}/`) : e.name.endsWith(".wgsl") ? [`${prefix}${e.name.slice(0, -5)}`] : [],
      );
    for (const k of kernels("")) expect(bundle).toContain(`"${k}"`);
  });
});

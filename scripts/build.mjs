// Bundles the browser entry with esbuild, inlining every kernels/**/*.wgsl through a virtual
// module, and reports the bundle size.
import { build } from "esbuild";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const kernelDir = join(root, "kernels");

function wgslFiles(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? wgslFiles(p) : f.endsWith(".wgsl") ? [p] : [];
  });
}

const inlineKernels = {
  name: "pulmo-kernels",
  setup(b) {
    b.onResolve({ filter: /^pulmo:kernels$/ }, () => ({ path: "kernels", namespace: "pulmo" }));
    b.onLoad({ filter: /.*/, namespace: "pulmo" }, () => {
      const map = Object.fromEntries(
        wgslFiles(kernelDir).map((p) => [relative(kernelDir, p).replace(/\\/g, "/").replace(/\.wgsl$/, ""), readFileSync(p, "utf8")]),
      );
      return { contents: `export const KERNELS = ${JSON.stringify(map)};`, loader: "js", watchFiles: wgslFiles(kernelDir) };
    });
  },
};

const outfile = join(root, "dist", "pulmo.browser.js");
const result = await build({
  entryPoints: [join(root, "src", "browser.ts")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: true,
  outfile,
  metafile: true,
  plugins: [inlineKernels],
  logLevel: "warning",
});
const bytes = statSync(outfile).size;
console.log(`built ${relative(root, outfile)}: ${(bytes / 1024).toFixed(1)} KiB (${Object.keys(result.metafile.inputs).length} inputs)`);

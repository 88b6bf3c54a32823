// esbuild plugin shared by the library and page builds: the virtual module `pulmo:kernels` holds
// every kernels/**/*.wgsl by name (path under kernels/ without .wgsl), so bundles need no file access.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const kernelDir = join(root, "kernels");

function wgslFiles(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? wgslFiles(p) : f.endsWith(".wgsl") ? [p] : [];
  });
}

export const inlineKernels = {
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

/** The options every browser bundle shares (library and page). */
export const browserBuild = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: true,
  metafile: true,
  plugins: [inlineKernels],
  logLevel: "warning",
};

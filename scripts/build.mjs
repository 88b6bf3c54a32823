// `npm run build`: the package's two entries and its types.
//   dist/pulmo.browser.js  ESM browser bundle of src/browser.ts (every WGSL inlined, no Node built-in)
//   dist/pulmo.node.js     ESM Node bundle of src/node.ts (kernels inlined, dependencies external)
//   dist/types/            declarations (tsc), the package's "types"
// Reports the sizes and checks that both entries export the same library API.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { browserBuild, inlineKernels, root } from "./esbuild_kernels.mjs";

/** Exports only the Node entry has: file-system, terminal and thread-priority helpers (src/node.ts). */
export const NODE_ONLY = ["writeFileAtomic", "checkpointFile", "terminalProgress", "fitNode", "fromKerasH5", "fromKerasWeights", "deprioritizeMainThread"];

const browserOut = join(root, "dist", "pulmo.browser.js");
const browser = await build({ ...browserBuild, entryPoints: [join(root, "src", "browser.ts")], outfile: browserOut });
const kib = (f) => (statSync(f).size / 1024).toFixed(1);
const gz = (f) => (gzipSync(readFileSync(f)).length / 1024).toFixed(1);
console.log(`built ${relative(root, browserOut)}: ${kib(browserOut)} KiB, ${gz(browserOut)} KiB gzipped (${Object.keys(browser.metafile.inputs).length} inputs)`);

const nodeOut = join(root, "dist", "pulmo.node.js");
const node = await build({
  entryPoints: [join(root, "src", "platform", "node_bundle.ts")],
  outfile: nodeOut,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  sourcemap: true,
  metafile: true,
  plugins: [inlineKernels],
  logLevel: "warning",
});
console.log(`built ${relative(root, nodeOut)}: ${kib(nodeOut)} KiB`);

const exportsOf = (r, out) => r.metafile.outputs[relative(process.cwd(), out)]?.exports ?? r.metafile.outputs[Object.keys(r.metafile.outputs).find((k) => k.endsWith(".js"))].exports;
const b = new Set(exportsOf(browser, browserOut)), n = new Set(exportsOf(node, nodeOut));
const onlyBrowser = [...b].filter((e) => !n.has(e)), onlyNode = [...n].filter((e) => !b.has(e) && !NODE_ONLY.includes(e));
if (onlyBrowser.length || onlyNode.length) {
  console.error(`the entries differ: only in the browser: ${onlyBrowser.join(", ") || "-"}; only in Node: ${onlyNode.join(", ") || "-"}`);
  process.exit(1);
}
console.log(`both entries export the same ${b.size} names (Node adds ${NODE_ONLY.length} Node-only helpers: files, training, Keras import, thread priority)`);

execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.types.json")], { stdio: "inherit" });
console.log(`built dist/types (declarations of src/node.ts and src/browser.ts)`);

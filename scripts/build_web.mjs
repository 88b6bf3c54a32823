// `npm run build:web`: the demo page and the golden-case page into dist/web/ (ESM bundles with every
// WGSL kernel inlined), the bundled weights from assets/weights/ and the public golden op cases
// (test/golden/ops), each folder with an index.json listing.
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { browserBuild, root } from "./esbuild_kernels.mjs";

const out = join(root, "dist", "web");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  ...browserBuild,
  entryPoints: { app: join(root, "web", "app.ts"), golden: join(root, "web", "golden.ts") },
  outdir: out,
});
for (const f of ["index.html", "golden.html", "style.css"]) copyFileSync(join(root, "web", f), join(out, f));

/** Copies dir's files ending in `ext` into dist/web/<to> and writes the listing `list(names)` there. */
function copyListed(dir, ext, to, list) {
  mkdirSync(join(out, to), { recursive: true });
  const names = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(ext)).sort() : [];
  for (const f of names) copyFileSync(join(dir, f), join(out, to, f));
  writeFileSync(join(out, to, "index.json"), JSON.stringify(list(names)));
  return names;
}
const weights = copyListed(join(root, "assets", "weights"), ".safetensors", "weights", (names) =>
  names.map((f) => ({ name: f.replace(/\.safetensors$/, ""), file: `weights/${f}`, bytes: statSync(join(root, "assets", "weights", f)).size })),
);
const cases = copyListed(join(root, "test", "golden", "ops"), ".safetensors", "golden/ops", (names) => names.map((f) => f.replace(/\.safetensors$/, "")));

const kib = (f) => (statSync(join(out, f)).size / 1024).toFixed(1);
console.log(`built ${relative(root, out)}: app.js ${kib("app.js")} KiB, golden.js ${kib("golden.js")} KiB, ${weights.length} bundled weight file(s), ${cases.length} golden cases`);
if (!weights.length) console.log("note: assets/weights/ has no .safetensors: the page offers the user's own bundle only");

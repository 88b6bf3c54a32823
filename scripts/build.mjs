// Bundles the browser entry with esbuild, inlining every kernels/**/*.wgsl through a virtual
// module, and reports the bundle size.
import { build } from "esbuild";
import { statSync } from "node:fs";
import { join, relative } from "node:path";
import { browserBuild, root } from "./esbuild_kernels.mjs";

const outfile = join(root, "dist", "pulmo.browser.js");
const result = await build({ ...browserBuild, entryPoints: [join(root, "src", "browser.ts")], outfile });
const bytes = statSync(outfile).size;
console.log(`built ${relative(root, outfile)}: ${(bytes / 1024).toFixed(1)} KiB (${Object.keys(result.metafile.inputs).length} inputs)`);

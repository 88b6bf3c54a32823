// Entry of dist/pulmo.node.js (the package's Node entry): src/node.ts with the kernels inlined, so
// the bundle needs no kernels/ folder beside it. Imported after node.ts, so its loader wins.
export * from "../node.ts";
import "../inlined_kernels.ts";

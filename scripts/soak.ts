// npm run soak: 1,000 consecutive segment() calls of a tiny 3D U-Net and 200 fit() steps, sampling
// the buffer pool and the process RSS → test/results/soak.json. Run with --expose-gc (the npm
// script does) so RSS samples are taken after a full collection.
// Usage: node --expose-gc --import tsx scripts/soak.ts [--inferences N] [--steps N]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createDevice } from "../src/node.ts";
import { soakInference, soakTraining } from "../test/reliability/soak.ts";

const args = process.argv.slice(2);
const arg = (name: string, d: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const device = await createDevice();
try {
  const inference = await soakInference(device, arg("inferences", 1000));
  console.log("inference", inference);
  const training = await soakTraining(device, arg("steps", 200));
  console.log("training", training);
  const out = join(import.meta.dirname, "..", "test", "results", "soak.json");
  mkdirSync(join(out, ".."), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify({ date: new Date().toISOString(), node: process.version, gc: typeof (globalThis as { gc?: unknown }).gc === "function", adapter: device.adapterDescription, inference, training }, null, 2) + "\n",
  );
  console.log(`wrote ${out}`);
} finally {
  device.destroy();
}

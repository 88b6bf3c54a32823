// Trains the bundled demo model (assets/weights/demo-unet3d.safetensors) on synthetic phantoms with
// the project's own training loop, reproducibly (every random choice is seeded).
//
//   npx tsx scripts/train_demo.ts [--out assets/weights] [--epochs N] [--quick]
//
// Phantom seeds 1001.. train, 2001.. validate; the demo's default phantom (seed 1) is never seen.
// Inputs are prepared exactly as segment() will prepare them at inference (the bundle's
// preprocess: HU window → [0, 1], resampling to the working spacing), then cut into random crops,
// four fifths of them around a tumour. Details and the last run's numbers: docs/demo.md.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  Adam, PolyLR, buildModel, createDevice, diceCeLoss, fitNode, maskMetrics, nn, preprocess, resample, segment, writeFileAtomic,
  type FitEpoch, type Sample,
} from "../src/node.ts";
import { rng } from "../src/graph/fit.ts";
import { makePhantom, type Phantom } from "../src/pipeline/phantom.ts";
import { bundleSegmentOptions, readModelBundle, writeModelBundle, type ModelBundleSpec } from "../src/pipeline/bundle.ts";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const QUICK = process.argv.includes("--quick"); // a smoke run of the script itself (minutes less, not for the bundle)
const OUT_DIR = flag("out", "assets/weights");
const EPOCHS = Number(flag("epochs", QUICK ? "2" : "72"));
const SEED = 20261202;
const TRAIN_SEEDS = Array.from({ length: QUICK ? 4 : 32 }, (_, i) => 1001 + i);
const VAL_SEEDS = Array.from({ length: QUICK ? 2 : 6 }, (_, i) => 2001 + i);
const CROPS_PER_EPOCH = QUICK ? 4 : 32;
const CROP = [16, 24, 24] as const; // on the working grid: 48 × 115 × 115 mm
const BATCH = 4;
const LR = 5e-3;

/** What the demo bundle prescribes; training prepares its inputs with the same preprocess. */
// Few channels at full resolution and up_keep_channels false (each ConvT maps to its skip width):
// the cost per voxel is what limits training on a software GPU.
const CONFIG = { in_channels: 1, num_classes: 2, enc: [[4, 8], [16, 16], [32, 32]], dec: [[16, 16], [4, 4]], up_keep_channels: false };
const PREPROCESS: ModelBundleSpec["preprocess"] = {
  normalization: { kind: "window-minmax", window: [-1000, 500], range: "window" },
  targetSpacing: [3, 4.8, 4.8],
};
const WINDOW: ModelBundleSpec["window"] = { patch: [48, 64, 64], overlap: 0.25, batch: 1, gaussian: true, mirror: false };
const POSTPROCESS: ModelBundleSpec["postprocess"] = { minVolumeCc: 0.03, fillHoles: true };

interface Case {
  seed: number;
  input: Float32Array; // normalised CT on the working grid
  target: Float32Array; // 0/1 GTV on the working grid
  shape: [number, number, number];
  tumourVoxels: number[]; // indices of GTV voxels (working grid)
}

/** The phantom on the working grid; the GTV is box-averaged (linear resampling) and set where at
 * least half of the fine voxels are tumour. */
function prepare(p: Phantom, seed: number): Case {
  const pre = preprocess({ data: p.ct, shape: p.shape }, { ...PREPROCESS, spacing: p.spacing });
  const frac = resample({ data: Float32Array.from(p.masks.gtv), shape: p.shape }, pre.shape, "linear");
  const target = frac.map((v) => (v >= 0.5 ? 1 : 0));
  const tumourVoxels: number[] = [];
  target.forEach((v, i) => v && tumourVoxels.push(i));
  return { seed, input: pre.data, target, shape: [...pre.shape], tumourVoxels };
}

function cropAt(c: Case, start: readonly number[]): Sample {
  const [, H, W] = c.shape;
  const [d, h, w] = CROP;
  const input = new Float32Array(d * h * w), target = new Float32Array(d * h * w);
  for (let z = 0; z < d; z++)
    for (let y = 0; y < h; y++) {
      const src = ((start[0]! + z) * H + start[1]! + y) * W + start[2]!;
      input.set(c.input.subarray(src, src + w), (z * h + y) * w);
      target.set(c.target.subarray(src, src + w), (z * h + y) * w);
    }
  return { input: { data: input, shape: [1, 1, d, h, w] }, target: { data: target, shape: [1, 1, d, h, w] } };
}

/** A crop around voxel `idx` (placed in the central half of the crop), or anywhere. */
function randomCrop(c: Case, r: () => number, around: number | null): Sample {
  const [D, H, W] = c.shape;
  const centre = around === null ? null : [Math.floor(around / (H * W)), Math.floor(around / W) % H, around % W];
  const start = [D, H, W].map((n, a) => {
    const size = CROP[a]!, max = n - size;
    if (max < 0) throw new Error(`working grid ${c.shape} is smaller than the crop ${CROP}`);
    if (!centre) return Math.floor(r() * (max + 1));
    const lo = Math.min(max, Math.max(0, centre[a]! - Math.floor((3 * size) / 4))), hi = Math.max(lo, Math.min(max, centre[a]! - Math.floor(size / 4)));
    return lo + Math.floor(r() * (hi - lo + 1));
  });
  return cropAt(c, start);
}

function epochSamples(cases: Case[], epoch: number): Sample[] {
  const r = rng(SEED + 7919 * (epoch + 1));
  return Array.from({ length: CROPS_PER_EPOCH }, (_, k) => {
    const c = cases[Math.floor(r() * cases.length)]!;
    const fg = k % 5 !== 4 && c.tumourVoxels.length > 0; // four fifths around a tumour
    return randomCrop(c, r, fg ? c.tumourVoxels[Math.floor(r() * c.tumourVoxels.length)]! : null);
  });
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const log = (m: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}`);
  const phantoms = new Map<number, Phantom>();
  const make = (seed: number) => {
    const p = makePhantom({ seed });
    phantoms.set(seed, p);
    return prepare(p, seed);
  };
  const train = TRAIN_SEEDS.map(make);
  const val = VAL_SEEDS.map(make);
  log(`${train.length} training and ${val.length} validation phantoms on the working grid ${train[0]!.shape.join("×")}`);
  // validation: a crop around each phantom's tumour voxels and one anywhere, fixed for every epoch
  const rv = rng(SEED + 1);
  const validation = val.flatMap((c) => [randomCrop(c, rv, c.tumourVoxels[Math.floor(rv() * c.tumourVoxels.length)]!), randomCrop(c, rv, null)]);

  const device = await createDevice();
  nn.setInitSeed(SEED);
  const net = buildModel(device, "unet3d", CONFIG);
  const optimizer = new Adam(net.parameters(), { lr: LR });
  const spec = (training?: ModelBundleSpec["training"]): ModelBundleSpec => ({
    model: "unet3d",
    config: net.config,
    preprocess: PREPROCESS,
    window: WINDOW,
    postprocess: POSTPROCESS,
    description:
      "Demo GTV model: a small 3D U-Net (3 levels, 4-8/16/32 channels) trained on Pulmo's synthetic chest-CT phantoms only. " +
      "Not for clinical use: it has never seen a real CT.",
    ...(training ? { training } : {}),
  });
  let best: { epoch: number; dice: number; bytes: Uint8Array } | null = null;
  const tFit = performance.now();
  const history: FitEpoch[] = await fitNode({
    model: net,
    optimizer,
    schedule: new PolyLR(LR, EPOCHS),
    loss: diceCeLoss,
    samples: (epoch) => epochSamples(train, epoch),
    validation,
    epochs: EPOCHS,
    batchSize: BATCH,
    validationBatchSize: 2,
    // keep the best weights in memory as a bundle; the file is written once, at the end
    saveCheckpoint: async (_bytes, info) => {
      best = { epoch: info.epoch, dice: info.valDice ?? NaN, bytes: await writeModelBundle(net, spec()) };
    },
  });
  const fitSeconds = (performance.now() - tFit) / 1000;
  if (!best) throw new Error("no checkpoint was kept");
  const kept = best as { epoch: number; dice: number; bytes: Uint8Array };
  log(`fit: ${history.length} epochs in ${fitSeconds.toFixed(0)} s; best crop validation Dice ${kept.dice.toFixed(4)} at epoch ${kept.epoch}`);

  // the kept weights on whole validation phantoms, through the same segment() the demo uses
  net.dispose();
  const { net: bestNet, spec: bestSpec } = readModelBundle(device, kept.bytes);
  const volumeDice: number[] = [];
  for (const seed of VAL_SEEDS.slice(0, QUICK ? 1 : 3)) {
    const p = phantoms.get(seed)!;
    const r = await segment(bestNet, { data: p.ct, shape: p.shape, spacing: p.spacing }, bundleSegmentOptions(bestSpec));
    const m = maskMetrics({ data: r.mask, shape: p.shape }, { data: p.masks.gtv, shape: p.shape }, p.spacing);
    volumeDice.push(m.dice);
    log(`validation phantom ${seed}: Dice ${m.dice.toFixed(4)} (${p.tumours.map((t) => `${t.volumeCc.toFixed(2)} cc ${t.site}`).join(", ")}), ${(r.timings.inferenceMs / 1000).toFixed(1)} s inference`);
  }
  bestNet.dispose();
  const seconds = (performance.now() - t0) / 1000;
  const training = {
    script: "npx tsx scripts/train_demo.ts",
    seconds: Math.round(seconds),
    fitSeconds: Math.round(fitSeconds),
    samples: CROPS_PER_EPOCH,
    epochs: history.length,
    bestEpoch: kept.epoch,
    validationDice: Math.round(kept.dice * 10000) / 10000,
    validationVolumeDice: volumeDice.map((d) => Math.round(d * 10000) / 10000),
    crop: CROP,
    batchSize: BATCH,
    learningRate: LR,
    optimizer: "Adam, PolyLR(0.9)",
    loss: "diceCeLoss",
    seed: SEED,
    trainPhantomSeeds: [TRAIN_SEEDS[0], TRAIN_SEEDS.at(-1)],
    validationPhantomSeeds: [VAL_SEEDS[0], VAL_SEEDS.at(-1)],
    quick: QUICK,
  };
  // rebuild the bundle from the kept weights with the training record in its metadata
  const { net: finalNet } = readModelBundle(device, kept.bytes);
  const bundle = await writeModelBundle(finalNet, spec(training));
  finalNet.dispose();
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileAtomic(join(OUT_DIR, "demo-unet3d.safetensors"), bundle);
  const summary = { ...spec(training), history: history.map((e) => ({ ...e, seconds: Math.round(e.seconds * 10) / 10 })) };
  writeFileAtomic(join(OUT_DIR, "demo-unet3d.json"), new TextEncoder().encode(JSON.stringify(summary, null, 2) + "\n"));
  log(`wrote ${join(OUT_DIR, "demo-unet3d.safetensors")} (${(bundle.length / 1024).toFixed(0)} KiB) and demo-unet3d.json; total ${seconds.toFixed(0)} s`);
  device.destroy();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

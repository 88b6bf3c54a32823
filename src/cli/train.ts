// `pulmo train`: trains or fine-tunes a registry model on NIfTI cases with fitNode: random crops
// (a share centred on the tumour), the model preset's preprocessing, Dice+CE (softmax) or Dice+BCE
// (one channel) loss, Adam, a validation split, checkpoints that resume, and a model bundle at the end.
import { interruptOnSigint } from "./interrupt.ts";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PulmoError, shapeStr } from "../runtime/errors.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { fitNode, terminalProgress } from "../node.ts";
import { commandDevice } from "./device.ts";
import { Adam } from "../graph/optim.ts";
import { checkpointBytes, loadCheckpoint } from "../graph/checkpoint.ts";
import { diceBceLoss, diceCeLoss } from "../graph/ops/loss.ts";
import type { Sample } from "../graph/fit.ts";
import { shuffledOrder } from "../graph/fit.ts";
import { preprocess, resample } from "../pipeline/preprocess.ts";
import { presetFor, presetOptions } from "../pipeline/presets.ts";
import { checkSameGrid } from "../pipeline/evaluate.ts";
import { randomCrops, validationCrops, type TrainingVolume } from "../pipeline/training_data.ts";
import { writeModelBundle, type ModelBundleSpec } from "../pipeline/bundle.ts";
import { UsageError, type Command } from "./args.ts";
import { listCases, readVolume, writeOutput } from "./files.ts";
import { checkModelName, loadStateDictModel, parseConfig } from "./model_source.ts";
import { parseHuWindow } from "./segment.ts";

export interface TrainCase {
  name: string;
  image: string;
  label: string;
}

/** The (image, label) pairs: two folders matched by case name, or one folder per case. */
export function trainCases(o: { images?: string; labels?: string; cases?: string; imageFile?: string; labelFile?: string }): TrainCase[] {
  if (o.cases) {
    if (o.images || o.labels) throw new UsageError("train: give --cases, or --images and --labels, not both");
    if (!o.imageFile || !o.labelFile) throw new UsageError("train: --cases needs --image-file and --label-file (the file names inside each case folder)");
    const images = listCases(o.cases, o.imageFile);
    return images.map((c) => ({ name: c.name, image: c.path, label: join(c.folder ?? o.cases!, o.labelFile!) }));
  }
  if (!o.images || !o.labels) throw new UsageError("train: give --images DIR and --labels DIR, or --cases DIR");
  const labels = new Map(listCases(o.labels).map((c) => [c.name, c.path]));
  const images = listCases(o.images);
  const missing = images.filter((c) => !labels.has(c.name)).map((c) => c.name);
  if (missing.length) throw new PulmoError(`train: no label in ${o.labels} for case(s) ${missing.join(", ")}`);
  return images.map((c) => ({ name: c.name, image: c.path, label: labels.get(c.name)! }));
}

/** Reads, checks and preprocesses one case as the model's preset does at inference. */
function loadTrainingVolume(c: TrainCase, pre: (shape: [number, number, number]) => ReturnType<typeof presetOptions>["preprocess"]): TrainingVolume {
  const img = readVolume(c.image, `image of case ${c.name}`);
  const lab = readVolume(c.label, `label of case ${c.name}`);
  checkSameGrid(img, lab, `the label ${c.label}`, `the image ${c.image}`);
  const p = preprocess(img, { ...pre(img.shape), spacing: img.spacing });
  const same = p.shape.every((d, a) => d === img.shape[a]);
  const labData = same ? lab.data : resample({ data: lab.data, shape: img.shape }, p.shape, "nearest-exact");
  const label = Uint8Array.from(labData, (v) => {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new PulmoError(`label ${c.label}: value ${v} is not a class index 0..255`);
    return v;
  });
  return { input: p.data, channels: p.channels, label, shape: p.shape };
}

/** Drops the depth axis of [1, C, 1, h, w] crops for 2D networks. */
function to2d(s: Sample): Sample {
  const [n, c, , h, w] = s.input.shape as number[];
  return { input: { data: s.input.data, shape: [n!, c!, h!, w!] }, target: { data: s.target.data, shape: [n!, 1, h!, w!] } };
}

/** Dice + cross-entropy over a softmax, or Dice + BCE for a one-channel (sigmoid) output. */
export const segmentationLoss = (out: Tensor, target: Tensor): Tensor => (out.shape[1] === 1 ? diceBceLoss(out, target) : diceCeLoss(out, target));

export const trainCommand: Command = {
  name: "train",
  summary: "train or fine-tune a model on NIfTI cases (random crops, Adam, validation Dice, resumable)",
  usage: "pulmo train --model NAME [--config JSON] [--weights INIT] (--images DIR --labels DIR | --cases DIR --image-file F --label-file F) --patch D,H,W --out DIR [options]",
  description: [
    "Each case is preprocessed as the model's preset does at inference (docs/inference.md), then every epoch",
    "takes --crops random crops per training case, --foreground-fraction of them centred on a foreground voxel.",
    "Loss: Dice + cross-entropy (softmax outputs) or Dice + BCE (one channel); Adam. With a validation split",
    "the best validation Dice is kept. --out DIR receives last.safetensors (every epoch: a rerun resumes from it),",
    "best.safetensors (best validation Dice) and model.safetensors, a model bundle of the best weights that",
    "`pulmo segment --weights` reads.",
  ].join("\n"),
  flags: {
    model: { type: "string", value: "NAME", help: "registry name" },
    config: { type: "string", value: "JSON|FILE", help: "model config (missing keys: paper values)" },
    weights: { type: "string", value: "FILE", help: "initial weights (state dict or bundle of the same model and config): fine-tuning" },
    images: { type: "string", value: "DIR", help: "folder of CT cases (NAME.nii[.gz])" },
    labels: { type: "string", value: "DIR", help: "folder of label masks, same case names" },
    cases: { type: "string", value: "DIR", help: "folder with one sub-folder per case" },
    "image-file": { type: "string", value: "NAME", help: "with --cases: the CT file in each case folder" },
    "label-file": { type: "string", value: "NAME", help: "with --cases: the label file in each case folder" },
    patch: { type: "string", value: "D,H,W", help: "crop size (1,H,W for 2D models)" },
    "hu-window": { type: "string", value: "LO,HI", help: "normalise by clipping to this HU window and min-max instead of the preset's (stored in the bundle)" },
    out: { type: "string", value: "DIR", alias: "-o", help: "checkpoints and the final bundle" },
    epochs: { type: "int", min: 1, default: 50, help: "total epochs (a resumed run continues up to this)" },
    lr: { type: "number", min: 0, default: 1e-3, help: "Adam learning rate" },
    batch: { type: "int", min: 1, default: 2, help: "crops per step" },
    crops: { type: "int", min: 1, default: 4, help: "crops per training case per epoch" },
    "foreground-fraction": { type: "number", min: 0, max: 1, default: 1 / 3, help: "share of the crops centred on a foreground voxel (nnU-Net: 1/3)" },
    "val-fraction": { type: "number", min: 0, below: 1, default: 0.2, help: "share of the cases held out for validation" },
    freeze: { type: "list", value: "PREFIX", help: "freeze the parameters under this state-dict prefix" },
    patience: { type: "int", min: 1, help: "stop after this many epochs without a validation-Dice gain" },
    seed: { type: "int", default: 0, help: "seed of the split, the crops and the shuffling" },
    population: { type: "string", value: "MEAN,SD", help: "grey-level population statistics (resnet34_fpn, unet2d presets)" },
    restart: { type: "boolean", help: "ignore an existing last.safetensors and start over" },
  },
  examples: [
    "pulmo train --model unet3d --config '{\"enc\":[[8,16],[16,32],[32,64]],\"dec\":[[32,16],[16,16]]}' --cases phantoms --image-file ct.nii.gz --label-file gtv.nii.gz --patch 32,64,64 --epochs 40 --out runs/unet3d",
    "pulmo train --model unet3d --weights base.safetensors --freeze enc --images ct --labels gtv --patch 48,96,96 --epochs 10 --out runs/ft",
  ],
  run: async (a) => {
    const t0 = performance.now();
    const model = a.need("model");
    checkModelName(model);
    const config = parseConfig(a.str("config"));
    const out = a.need("out");
    const rawPatch = a.need("patch").split(/[,x×]/).map((s) => Number(s.trim()));
    if (rawPatch.length !== 3 || rawPatch.some((p) => !Number.isSafeInteger(p) || p < 1)) throw new UsageError(`train: --patch takes D,H,W (three positive whole numbers), got ${JSON.stringify(a.str("patch"))}`);
    const patch = rawPatch as [number, number, number];
    const popRaw = a.str("population")?.split(",").map(Number);
    if (popRaw && (popRaw.length !== 2 || !popRaw.every(Number.isFinite) || !(popRaw[1]! > 0))) throw new UsageError(`train: --population takes MEAN,SD (SD > 0), got ${JSON.stringify(a.str("population"))}`);
    const population = popRaw ? { mean: popRaw[0]!, sd: popRaw[1]! } : undefined;
    const preset = presetFor(model);
    const dims = preset.window.dims ?? 3;
    if (dims === 2 && patch[0] !== 1) throw new UsageError(`train: ${model} is a 2D model: --patch must be 1,H,W`);
    const cases = trainCases({ images: a.str("images"), labels: a.str("labels"), cases: a.str("cases"), imageFile: a.str("image-file"), labelFile: a.str("label-file") });
    if (cases.length === 0) throw new PulmoError("train: no cases found");
    const epochs = a.needNum("epochs"), seed = a.needNum("seed");
    const valFraction = a.needNum("val-fraction");
    const nVal = valFraction > 0 && cases.length > 1 ? Math.min(cases.length - 1, Math.max(1, Math.round(cases.length * valFraction))) : 0;
    const order = shuffledOrder(cases.length, seed, 0);
    const valCases = order.slice(cases.length - nVal).map((i) => cases[i]!);
    const trainSet = order.slice(0, cases.length - nVal).map((i) => cases[i]!);

    const huWindow = parseHuWindow(a.str("hu-window"), "train");
    const pre = (shape: [number, number, number]) => {
      const p = presetOptions(preset, { shape, config, population, inputs: {} }).preprocess;
      return huWindow ? { ...p, normalization: { kind: "window-minmax" as const, window: huWindow } } : p;
    };
    if (preset.inputs.length > 1) throw new PulmoError(`train: ${model} takes ${preset.inputs.join(" + ")} inputs; training it from the CLI is not supported yet`);
    console.error(`loading ${cases.length} cases (${trainSet.length} training, ${valCases.length} validation)`);
    const load = (c: TrainCase) => loadTrainingVolume(c, pre);
    const trainVols = trainSet.map(load), valVols = valCases.map(load);
    for (const v of [...trainVols, ...valVols])
      if (v.shape.some((d, k) => d < patch[k]!)) console.error(`note: a case of ${shapeStr(v.shape)} is smaller than the patch ${shapeStr(patch)} and is zero-padded`);
    const crops = randomCrops(trainVols, { patch, perVolume: a.needNum("crops"), foregroundFraction: a.needNum("foreground-fraction"), seed });
    const samples = dims === 2 ? (e: number) => crops(e).map(to2d) : crops;
    const validation = valVols.length ? validationCrops(valVols, patch).map((s) => (dims === 2 ? to2d(s) : s)) : undefined;

    const device = await commandDevice();
    try {
      const net = loadStateDictModel(device, model, config, a.str("weights"));
      try {
        const freeze = a.list("freeze");
        if (freeze.length) net.freeze(...freeze);
        const trainable = net.parameters().filter((p) => p.requiresGrad);
        if (trainable.length === 0) throw new PulmoError("train: --freeze left no trainable parameter");
        const optimizer = new Adam(trainable, { lr: a.needNum("lr") });
        const lastPath = join(out, "last.safetensors"), bestPath = join(out, "best.safetensors"), bundlePath = join(out, "model.safetensors");
        let startEpoch = 0;
        if (existsSync(lastPath) && !a.bool("restart")) {
          let stored: { epoch: number; config: unknown };
          try {
            stored = loadCheckpoint(new Uint8Array(readFileSync(lastPath)), { model: net, optimizer });
          } catch (e) {
            throw new PulmoError(`cannot resume from ${lastPath} (${(e as Error).message}); --restart to start over`);
          }
          if (JSON.stringify(stored.config) !== JSON.stringify(net.config)) throw new PulmoError(`${lastPath} was trained with config ${JSON.stringify(stored.config)}, not ${JSON.stringify(net.config)}; --restart to start over`);
          startEpoch = stored.epoch + 1;
          console.error(`resuming from ${lastPath}: epoch ${startEpoch} done`);
        }
        mkdirSync(out, { recursive: true }); // fitNode's checkpoint writer expects the folder
        let history: Awaited<ReturnType<typeof fitNode>> = [];
        const interrupt = interruptOnSigint();
        try {
          if (startEpoch < epochs)
            history = await fitNode({
              signal: interrupt.signal,
              model: net, optimizer, loss: segmentationLoss, samples, validation, epochs, startEpoch,
              batchSize: a.needNum("batch"), shuffle: true, seed,
              ...(a.has("patience") ? { patience: a.num("patience") } : {}),
              checkpointPath: bestPath,
              progress: terminalProgress(process.stderr, { tty: Boolean(process.stderr.isTTY) && !process.env.CI, plainInterval: 10_000 }),
              onEpoch: async (e) => writeOutput(lastPath, await checkpointBytes({ model: net, optimizer, epoch: e.epoch, config: net.config })),
            });
          else console.error(`already trained for ${epochs} epochs (raise --epochs to continue)`);
        } finally {
          interrupt.release();
        }
        // The bundle holds the best weights (the last ones without validation).
        if (existsSync(bestPath)) loadCheckpoint(new Uint8Array(readFileSync(bestPath)), { model: net });
        const seconds = (performance.now() - t0) / 1000;
        const dices = history.map((h) => h.valDice ?? NaN).filter(Number.isFinite);
        const bestDice = dices.length ? Math.max(...dices) : NaN;
        if (preset.inPlane || (preset.normalization === "population" && !population && !huWindow)) {
          console.error(`note: no bundle written: the ${model} preset's ${preset.inPlane ? "in-plane resize" : "population statistics"} cannot be stored in one; segment with --model ${model} --weights ${bestPath}`);
        } else {
          const spec: ModelBundleSpec = {
            model, config: net.config, description: `trained by pulmo train on ${trainSet.length} cases`,
            preprocess: { normalization: pre([patch[0], patch[1], patch[2]])!.normalization },
            window: { ...presetOptions(preset, { shape: patch, config, population }).window, patch },
            postprocess: { ...preset.postprocess },
            training: { script: `pulmo train ${process.argv.slice(3).join(" ")}`, seconds, samples: trainSet.length * a.needNum("crops"), epochs, validationDice: Number.isFinite(bestDice) ? bestDice : 0 },
          };
          writeOutput(bundlePath, await writeModelBundle(net, spec));
          console.log(`wrote ${bundlePath}`);
        }
        const last = history.at(-1);
        console.log(`${history.length} epoch(s) in ${seconds.toFixed(1)} s${last ? `, last loss ${last.loss.toFixed(4)}` : ""}${Number.isFinite(bestDice) ? `, best validation Dice ${bestDice.toFixed(4)}` : ""}`);
        return 0;
      } finally {
        net.dispose();
      }
    } finally {
      device.destroy();
    }
  },
};

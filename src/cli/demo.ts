// `pulmo demo`: the project end to end on one synthetic case. Makes the default phantom, segments it
// with the bundled demo model, compares with the phantom's own GTV and writes the mask, overlays,
// an RTSTRUCT with its CT series and a JSON report. What it shows: docs/demo.md.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { commandDevice } from "./device.ts";
import { PulmoError } from "../runtime/errors.ts";
import { segment } from "../pipeline/inference.ts";
import { bundleSegmentOptions, readModelBundle } from "../pipeline/bundle.ts";
import { evaluateCase, evaluationJson, evaluationRows, EMPTY_MASK_CONVENTIONS, formatTable } from "../pipeline/evaluate.ts";
import { overlayPngs, OVERLAY_COLOURS } from "../pipeline/overlay.ts";
import { makePhantom, PHANTOM_DEFAULTS } from "../pipeline/phantom.ts";
import type { Command } from "./args.ts";
import { readInput, writeOutput } from "./files.ts";
import { progressBar } from "./progress.ts";
import { DEFAULT_BUNDLE } from "./segment.ts";
import { phantomDicom, phantomNifti, writeSeriesFolder } from "./phantom.ts";

export interface DemoResult {
  dice: number;
  hausdorff95: number;
  seconds: number;
  files: string[];
}

/** Runs the demo into `out`; prints the table and stage times. */
export async function runDemo(o: { out: string; weights: string; seed: number; quiet?: boolean }): Promise<DemoResult> {
  const t0 = performance.now();
  const times: [string, number][] = [];
  let last = t0;
  const stage = (name: string) => {
    const now = performance.now();
    times.push([name, (now - last) / 1000]);
    last = now;
  };
  if (!existsSync(o.weights)) throw new PulmoError(`the demo model ${o.weights} is missing (it ships with the repository; retrain it with: npx tsx scripts/train_demo.ts)`);
  const bundleBytes = readInput(o.weights, "demo model");

  const p = makePhantom({ seed: o.seed });
  stage("phantom");
  const device = await commandDevice();
  const files: string[] = [];
  try {
    const { net, spec } = readModelBundle(device, bundleBytes);
    stage("model load");
    let seg;
    try {
      const options = bundleSegmentOptions(spec);
      let bar: ReturnType<typeof progressBar> | null = null;
      seg = await segment(net, { data: p.ct, shape: p.shape, spacing: p.spacing }, {
        ...options,
        onProgress: ({ done, total }) => {
          if (o.quiet) return;
          bar ??= progressBar("segment", total);
          bar.update(done, `windows of ${options.window.patch.join("×")}`);
        },
      });
      (bar as ReturnType<typeof progressBar> | null)?.finish(`${seg.windows} window(s)`);
    } finally {
      net.dispose();
    }
    stage("segment");
    times.push(["  preprocess", seg.timings.preprocessMs / 1000], ["  inference (GPU)", seg.timings.inferenceMs / 1000], ["  postprocess", seg.timings.postprocessMs / 1000]);
    const grid = { shape: p.shape, spacing: p.spacing };
    const evaluation = evaluateCase({ data: seg.mask, ...grid }, { data: p.masks.gtv, ...grid }, {
      oars: Object.fromEntries((["heart", "oesophagus", "bone"] as const).map((k) => [k, { data: p.masks[k], ...grid }])),
    });
    stage("metrics");

    const put = (name: string, bytes: Uint8Array) => {
      const path = join(o.out, name);
      writeOutput(path, bytes);
      files.push(path);
    };
    const nifti = phantomNifti(p, `Pulmo demo phantom seed ${o.seed}`);
    put("ct.nii.gz", nifti.ct(p.ct));
    put("gtv_reference.nii.gz", nifti.mask(p.masks.gtv));
    put("gtv_predicted.nii.gz", nifti.mask(seg.mask));
    const png = overlayPngs({ data: p.ct, shape: p.shape }, p.spacing, { reference: p.masks.gtv, prediction: seg.mask });
    put("overlay_axial.png", png.axial);
    put("overlay_coronal.png", png.coronal);
    put("overlay_sagittal.png", png.sagittal);
    const label = `${spec.model} demo bundle`;
    const dicom = phantomDicom(
      p,
      [
        { mask: seg.mask, name: "GTV_pulmo", colour: [...OVERLAY_COLOURS.prediction], interpretedType: "GTV", algorithm: "AUTOMATIC", description: label },
        { mask: p.masks.gtv, name: "GTV_reference", colour: [...OVERLAY_COLOURS.reference], interpretedType: "GTV", algorithm: "MANUAL", description: "phantom ground truth" },
      ],
      `pulmo-demo-${o.seed}`,
      `Pulmo demo phantom seed ${o.seed}`,
    );
    files.push(...writeSeriesFolder(join(o.out, "ct"), dicom.series));
    put("rtstruct.dcm", dicom.rtstruct);
    stage("write outputs");

    const seconds = (performance.now() - t0) / 1000;
    const report = {
      phantom: { seed: o.seed, shape: p.shape, spacing: p.spacing, tumours: p.tumours },
      model: { file: o.weights, model: spec.model, config: spec.config, description: spec.description, training: spec.training },
      evaluation: JSON.parse(evaluationJson([{ name: "phantom", evaluation }])),
      conventions: { emptyMasks: EMPTY_MASK_CONVENTIONS, overlays: "green = reference, red = prediction, yellow = both; lung window W 1500 L -600" },
      slicesThrough: png.centre,
      windows: seg.windows,
      timings: Object.fromEntries(times.map(([k, v]) => [k.trim(), +v.toFixed(3)])), // seconds; preprocess, inference and postprocess are parts of segment
      seconds: +seconds.toFixed(3),
      files: [...files.filter((f) => !f.includes(`${join(o.out, "ct")}/`)), `${join(o.out, "ct")}/ (${dicom.series.length} slices)`],
    };
    put("result.json", new TextEncoder().encode(JSON.stringify(report, null, 2) + "\n"));

    console.log(`phantom seed ${o.seed}: ${p.shape.join("×")} voxels at ${p.spacing.join("×")} mm, ${p.tumours.length} tumour(s): ${p.tumours.map((t) => `${t.volumeCc.toFixed(2)} cc (${t.site})`).join(", ")}`);
    console.log(`model: ${o.weights} (${spec.model}${spec.training ? `, trained ${spec.training.seconds} s, validation Dice ${spec.training.validationDice}` : ""})`);
    console.log("");
    const rows = evaluationRows([{ name: "GTV", evaluation }], 3);
    const keep = ["case", "Dice", "HD95 mm", "MSD mm", "precision", "recall", "pred cc", "ref cc", "ΔV %"];
    const cols = keep.map((k) => rows[0]!.indexOf(k)).filter((c) => c >= 0);
    console.log(formatTable(rows.map((r) => cols.map((c) => r[c]!))));
    console.log("");
    console.log(formatTable([["stage", "seconds"], ...times.map(([k, v]) => [k, v.toFixed(2)]), ["total", seconds.toFixed(2)]]));
    console.log("");
    console.log(`wrote ${o.out}/: ct.nii.gz, gtv_reference.nii.gz, gtv_predicted.nii.gz, overlay_{axial,coronal,sagittal}.png, rtstruct.dcm, ct/ (${dicom.series.length} DICOM slices), result.json`);
    console.log(`overlays: green = reference, red = prediction, yellow = both (slices through voxel [z, y, x] = [${png.centre.join(", ")}])`);
    return { dice: evaluation.dice, hausdorff95: evaluation.hausdorff95, seconds, files };
  } finally {
    device.destroy();
  }
}

export const demoCommand: Command = {
  name: "demo",
  summary: "segment a synthetic phantom with the bundled model: Dice, HD95, times, mask, overlays, RTSTRUCT",
  usage: "pulmo demo [--out DIR] [--seed N] [--weights FILE] [--min-dice X]",
  description:
    "Makes the default phantom (seed 1, never seen in training), segments its tumours with the bundled demo\n" +
    "model (assets/weights/demo-unet3d.safetensors, trained on other phantoms by scripts/train_demo.ts), and\n" +
    "compares the result with the phantom's GTV. Writes ct.nii.gz, gtv_reference.nii.gz, gtv_predicted.nii.gz,\n" +
    "overlay_axial/coronal/sagittal.png (green = reference, red = prediction, yellow = both), a DICOM CT\n" +
    "series (ct/) with rtstruct.dcm (ROIs GTV_pulmo and GTV_reference) and result.json.\n" +
    "Exits 1 when the Dice is below --min-dice (a regression of the engine or the weights).",
  flags: {
    out: { type: "string", value: "DIR", alias: "-o", default: "pulmo-demo", help: "output folder" },
    seed: { type: "int", value: "N", default: PHANTOM_DEFAULTS.seed, help: "phantom seed (default: the demo's)" },
    weights: { type: "string", value: "FILE", help: "model bundle (default: the bundled demo model)" },
    "min-dice": { type: "number", value: "X", min: 0, max: 1, default: 0.8, help: "fail (exit 1) below this Dice" },
    quiet: { type: "boolean", help: "no progress bar" },
  },
  examples: ["pulmo demo", "pulmo demo --out /tmp/demo --seed 3 --min-dice 0"],
  run: async (a) => {
    const r = await runDemo({ out: a.str("out")!, weights: a.str("weights") ?? DEFAULT_BUNDLE, seed: a.num("seed")!, quiet: a.bool("quiet") });
    const min = a.num("min-dice")!;
    if (r.dice < min) {
      console.error(`pulmo demo: Dice ${r.dice.toFixed(4)} is below ${min}: the engine or the weights have regressed`);
      return 1;
    }
    return 0;
  },
};

/** `pulmo demo ARGS`; returns the exit code. */
export async function demo(args: string[]): Promise<number> {
  // main.ts imports this module: import it lazily so neither sees the other half-initialised
  const { runCommand } = await import("./main.ts");
  return runCommand(demoCommand, args);
}

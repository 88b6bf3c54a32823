// Whole-network bench: each network's paper config (every width and depth as in the paper) at its
// paper input size or, by default on this machine, at a reduced input size, against the adapter's
// FMA ceiling measured in the same run and against the time each paper reports on its own GPU.
//
//   npm run bench:models                                  # --size reduced, every network
//   npm run bench:models -- --size paper                  # paper input sizes (minutes per network on lavapipe)
//   npm run bench:models -- --models unet3d,rdu --reps 5  # a subset; written to models.subset.*
//   options: --budget-s S (skip the networks not started after S seconds, recorded as skipped)
//            --out NAME (result files bench/results/NAME.json and NAME.md)
//
// Figures. forward: eval mode, noGrad, median of --reps (≥ 3) timed runs after one warm-up, each
// ended by device.flush() (GPU completion included). forward+backward: train mode, the same forward
// plus backward to every parameter from a fixed dL/dlogits seed on the main output (no loss, no
// optimizer step, no deep-supervision heads). GFLOP = 2 × forwardMacs(config, shape) of the
// network's own file (conv / conv-transpose / linear / attention MACs only; norms and activations
// are not counted, as in MODELS.md); forward+backward is counted as 3 × forward. Peak memory: the
// buffer pool's allocatedBytes high-water mark sampled after every forward and forward+backward of
// the network (the pool is trimmed before each network), so it counts pooled buffers: weights,
// activations, gradients and freed buffers kept for reuse; not the uniform ring, staging buffers
// or pipelines.
import { buildModel, Tensor, tidy, backward, noGrad, PulmoError, type Device, type SegmentationNet } from "../src/node.ts";
import * as attentionUnet from "../src/models/attention_unet.ts";
import * as coretr from "../src/models/coretr.ts";
import * as cotr from "../src/models/cotr.ts";
import * as ctvUnet from "../src/models/ctv_unet.ts";
import * as rdu from "../src/models/rdu.ts";
import * as resnet34Fpn from "../src/models/resnet34_fpn.ts";
import * as resunet from "../src/models/resunet.ts";
import * as unet2d from "../src/models/unet2d.ts";
import * as unet3d from "../src/models/unet3d.ts";
import * as unetr from "../src/models/unetr.ts";
import { fmaCeiling, rand, timings, writeResult } from "./common.ts";
import { commandDevice } from "../src/cli/device.ts";

// ---------------------------------------------------------------------------------------------
// Paper GPUs: fp32 peak = CUDA cores × boost clock × 2 FLOP per FMA (NVIDIA's launch figures:
// GTX 1070 1920 cores at 1683 MHz; GTX 1080 Ti 3584 at 1582 MHz; TITAN Xp 3840 at 1582 MHz).
// ---------------------------------------------------------------------------------------------
const GPUS = {
  "GTX 1070": { tflops: (1920 * 1.683 * 2) / 1000, basis: "1920 CUDA cores × 1683 MHz boost × 2" },
  "GTX 1080 Ti": { tflops: (3584 * 1.582 * 2) / 1000, basis: "3584 CUDA cores × 1582 MHz boost × 2" },
  "TITAN Xp": { tflops: (3840 * 1.582 * 2) / 1000, basis: "3840 CUDA cores × 1582 MHz boost × 2" },
} as const;
type GpuName = keyof typeof GPUS;

/** The CT the per-patient times refer to, D × H × W (the issue's 512 × 512 × ~120 slices). */
const CT: [number, number, number] = [120, 512, 512];
/** Sliding-window overlap assumed for the per-CT times (nnU-Net's default: half a patch). */
const OVERLAP = 0.5;

/** Windows per axis for a sliding window of `patch` over `size` with the given overlap, placed as
 * nnU-Net does (first at 0, last flush with the end, steps of at most patch × (1 − overlap)). */
function windows(size: number, patch: number, overlap: number): number {
  if (size <= patch) return 1;
  return Math.ceil((size - patch) / (patch * (1 - overlap))) + 1;
}

interface PaperTime {
  /** seconds for `unit`; a range where the paper gives one */
  seconds: number | [number, number];
  unit: string;
  gpu: GpuName;
  source: string;
}

interface FullVolume {
  /** forward passes at the paper input size for one whole CT */
  passes: number;
  how: string;
}

interface Net {
  name: string;
  network: string;
  mod: { forwardMacs(config: Record<string, any>, shape: readonly number[]): number; parameterCount(config: Record<string, any>): number };
  /** models.py PRESETS[name]["paper"] without input_shape */
  config: Record<string, any>;
  paperShape: number[];
  reducedShape: number[];
  reducedWhy: string;
  /** the config for an input shape (UNETR's position embedding is sized by img_size) */
  configFor?: (shape: number[]) => Record<string, any>;
  /** forward passes at paper size per unit of the paper's reported time, and per whole CT */
  perPaperUnit: { passes: number; how: string };
  full: FullVolume;
  paper: PaperTime | null;
}

const coretrTable = "Kunkyab et al. 2024 (Co-ReTr), Table 2, inference time per CT; GPU: GeForce GTX 1070 8GB";
const slidingWindow = (patch: readonly number[]): FullVolume => {
  const n = CT.map((s, i) => windows(s, patch[i]!, OVERLAP));
  return { passes: n[0]! * n[1]! * n[2]!, how: `${n.join("×")} windows of ${patch.join("×")} over a ${CT.join("×")} CT, ${OVERLAP * 100} % overlap` };
};
const perCt = (patch: readonly number[]) => { const f = slidingWindow(patch); return { full: f, perPaperUnit: f }; };

const UNETR_PAPER = { in_channels: 1, num_classes: 2, img_size: [96, 96, 96], feature_size: 16, hidden_size: 768, mlp_dim: 3072, num_heads: 12, num_layers: 12, skip_layers: [3, 6, 9], dropout: 0.0, qkv_bias: false };

// Configs: ../shared/reference/models.py PRESETS[name]["paper"] (input_shape moved to paperShape).
const NETS: Net[] = [
  {
    name: "coretr", network: "Co-ReTr", mod: coretr,
    config: { in_channels: 1, num_classes: 2, shallow_widths: [8, 16, 32, 64, 128], deep_widths: [16, 32, 64, 128, 192], shallow_blocks: [2, 2, 2], deep_blocks: [3, 3, 3], res_kernel: 5, dec_kernel: 3, d_model: 192, n_heads: 6, n_layers: 6, d_ffn: 768, n_points: 4, dropout: 0.1 },
    paperShape: [1, 1, 96, 96, 96], reducedShape: [1, 1, 32, 16, 16], reducedWhy: "32×16×16: the smallest its 16× downsampling and instance norms allow (16³ leaves 1 voxel per channel in the deep encoder, which instance norm rejects; 32³ is 20 GFLOP)",
    ...perCt([96, 96, 96]), paper: { seconds: 12.03, unit: "CT", gpu: "GTX 1070", source: coretrTable },
  },
  {
    name: "unetr", network: "UNETR", mod: unetr,
    config: UNETR_PAPER,
    configFor: (s) => ({ ...UNETR_PAPER, img_size: s.slice(2) }),
    paperShape: [1, 1, 96, 96, 96], reducedShape: [1, 1, 32, 32, 32], reducedWhy: "2³ = 8 tokens of 16³ (img_size set to 32³: position embedding 8×768 instead of 216×768)",
    ...perCt([96, 96, 96]), paper: { seconds: 12.08, unit: "CT", gpu: "GTX 1070", source: coretrTable },
  },
  {
    name: "cotr", network: "CoTr", mod: cotr,
    config: { in_channels: 1, num_classes: 2, act: "leakyrelu", stem_kernel: 7, stem_stride: [1, 2, 2], widths: [64, 192, 384, 384], blocks: [3, 3, 2], d_model: 384, n_heads: 6, n_layers: 6, d_ffn: 1536, n_points: 4, dropout: 0.1 },
    paperShape: [1, 1, 48, 192, 192], reducedShape: [1, 1, 8, 32, 32], reducedWhy: "the paper patch's 1:4:4 aspect at ÷6 (D ÷ 8, H and W ÷ 16 required)",
    ...perCt([48, 192, 192]), paper: { seconds: 19.21, unit: "CT", gpu: "GTX 1070", source: coretrTable },
  },
  {
    name: "resunet", network: "ResNet U-Net (MONAI UNet)", mod: resunet,
    config: { in_channels: 1, num_classes: 2, channels: [16, 32, 64, 128, 256], strides: [2, 2, 2, 2], kernel_size: 3, up_kernel_size: 3, num_res_units: 2, dropout: 0.0 },
    paperShape: [1, 1, 96, 96, 96], reducedShape: [1, 1, 32, 32, 32], reducedWhy: "32³",
    ...perCt([96, 96, 96]), paper: { seconds: 21.28, unit: "CT", gpu: "GTX 1070", source: coretrTable },
  },
  {
    name: "attention_unet", network: "Attention U-Net", mod: attentionUnet,
    config: { in_channels: 1, num_classes: 2, channels: [16, 32, 64, 128, 256], strides: [2, 2, 2, 2], kernel_size: 3, up_kernel_size: 3, dropout: 0.0 },
    paperShape: [1, 1, 96, 96, 96], reducedShape: [1, 1, 32, 32, 32], reducedWhy: "32³",
    ...perCt([96, 96, 96]), paper: { seconds: 22.19, unit: "CT", gpu: "GTX 1070", source: coretrTable },
  },
  {
    name: "unet3d", network: "3D U-Net (Çiçek)", mod: unet3d,
    config: { dims: 3, in_channels: 1, num_classes: 2, enc: [[32, 64], [64, 128], [128, 256], [256, 512]], dec: [[256, 256], [128, 128], [64, 64]], up_kernel: 2, up_keep_channels: true, up_bias: false },
    paperShape: [1, 1, 96, 96, 96], reducedShape: [1, 1, 16, 16, 16], reducedWhy: "16³ (32³ is 61 GFLOP, minutes here)",
    ...perCt([96, 96, 96]), paper: { seconds: 24.01, unit: "CT", gpu: "GTX 1070", source: coretrTable },
  },
  {
    name: "resnet34_fpn", network: "modified ResNet34 (2D)", mod: resnet34Fpn,
    config: { in_channels: 1, num_classes: 1, widths: [64, 64, 128, 256, 512], blocks: [3, 4, 6, 3], lat_channels: 64, fuse_channels: 128, out_channels: 32, dropout: 0.2 },
    paperShape: [1, 1, 512, 512], reducedShape: [1, 1, 128, 128], reducedWhy: "128²",
    perPaperUnit: { passes: 1, how: "one 512² slice" },
    full: { passes: CT[0], how: `${CT[0]} slices of 512²` },
    paper: { seconds: 0.021, unit: "512² slice", gpu: "GTX 1080 Ti", source: "Zhang et al. 2020 (modified ResNet34), 21 ± 7 ms per slice; GPU: GeForce GTX 1080 Ti 11 GB" },
  },
  {
    name: "unet2d", network: "2D U-Net", mod: unet2d,
    config: { dims: 2, in_channels: 1, num_classes: 1, enc: [[64, 64], [128, 128], [256, 256], [512, 512], [1024, 1024]], dec: [[512, 512], [256, 256], [128, 128], [64, 64]], up_kernel: 2, up_keep_channels: false, up_bias: true },
    paperShape: [1, 1, 512, 512], reducedShape: [1, 1, 64, 64], reducedWhy: "64² (128² is 24 GFLOP, minutes here)",
    perPaperUnit: { passes: 1, how: "one 512² slice" },
    full: { passes: CT[0], how: `${CT[0]} slices of 512²` },
    paper: { seconds: 0.028, unit: "512² slice", gpu: "GTX 1080 Ti", source: "Zhang et al. 2020 (modified ResNet34), U-Net benchmark 28 ± 8 ms per slice; GPU: GeForce GTX 1080 Ti 11 GB" },
  },
  {
    name: "ctv_unet", network: "CTV 3D U-Net", mod: ctvUnet,
    config: { dims: 3, in_channels: 2, num_classes: 1, enc: [[32, 32], [64, 64], [128, 128], [256, 256], [512, 512]], dec: [[256, 256], [128, 128], [64, 64], [32, 32]], up_kernel: 3, up_keep_channels: false, up_bias: false },
    paperShape: [1, 2, 128, 288, 416], reducedShape: [1, 2, 16, 32, 32], reducedWhy: "16×32×32 (16³ leaves 1 voxel per channel at the bottom, which train-mode BN rejects)",
    perPaperUnit: { passes: 1, how: "one pass over the 416×288×128 crop (the whole patient)" },
    full: { passes: 1, how: "the paper crops each CT to 416×288×128 and segments it in one pass" },
    paper: { seconds: [3.8, 4.0], unit: "patient", gpu: "TITAN Xp", source: "Xie et al. 2021 (CTV 3D U-Net), contouring time 3.8~4.0 s; GPU: NVidia Titan XP" },
  },
  {
    name: "rdu", network: "Recurrent 3D-DenseUNet", mod: rdu,
    config: { in_channels: 1, num_classes: 1, widths: [32, 64, 128, 256], n_lstm: 3, recurrent_activation: "hard_sigmoid", dropout: 0.1 },
    paperShape: [1, 1, 8, 256, 256], reducedShape: [1, 1, 8, 32, 32], reducedWhy: "8 slices (all ConvLSTM steps) at 32² (64² is 55 GFLOP)",
    perPaperUnit: { passes: 1, how: "one 8×256² window" },
    full: { passes: CT[0] - 8 + 1, how: `${CT[0] - 8 + 1} windows of 8 slices at stride 1 (the paper's inference), slices resized to 256²` },
    paper: null,
  },
];

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------
function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new PulmoError(`--${name} needs a value`);
  return v;
}
const size = option("size") ?? "reduced";
if (size !== "paper" && size !== "reduced") throw new PulmoError(`--size must be paper or reduced, got ${size}`);
const reps = Number(option("reps") ?? 3);
if (!Number.isInteger(reps) || reps < 3) throw new PulmoError(`--reps must be an integer ≥ 3`);
const budgetS = option("budget-s") === undefined ? Infinity : Number(option("budget-s"));
const picked = option("models")?.split(",").map((s) => s.trim()).filter(Boolean);
for (const m of picked ?? []) if (!NETS.some((n) => n.name === m)) throw new PulmoError(`unknown model '${m}' (known: ${NETS.map((n) => n.name).join(", ")})`);
const nets = picked ? NETS.filter((n) => picked.includes(n.name)) : NETS;
const outName = option("out") ?? `models${size === "paper" ? ".paper" : ""}${picked ? ".subset" : ""}`;

// ---------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------
interface Row {
  model: string;
  network: string;
  size: "paper" | "reduced";
  input_shape: number[];
  size_note: string;
  params: number;
  gflop_forward: number;
  forward_ms?: number;
  forward_times_ms?: number[];
  forward_gflops?: number;
  forward_fraction_of_fma?: number;
  train_ms?: number;
  train_times_ms?: number[];
  train_gflops?: number;
  train_fraction_of_fma?: number;
  peak_pool_mib_forward?: number;
  peak_pool_mib_train?: number;
  paper_input_shape: number[];
  paper_gflop_forward: number;
  est_paper_size_forward_ms?: number;
  full_volume: { passes: number; how: string; gflop: number; est_ms?: number };
  paper: null | {
    seconds: number | [number, number]; unit: string; source: string; gpu: GpuName; gpu_fp32_tflops: number;
    gflop_per_unit: number; passes_per_unit: string; implied_tflops: number | [number, number]; implied_fraction: number | [number, number];
    /** per-CT times only: the same with non-overlapping tiles (the fewest windows that cover the CT) */
    no_overlap?: { passes: number; implied_fraction: number | [number, number] };
  };
  meets_target?: boolean;
  status: string;
}

const device = await commandDevice(); // as the `pulmo` commands: main thread deprioritized
const t0 = performance.now();
const fma = await fmaCeiling(device, 5, 512);
console.log(`adapter: ${device.adapterDescription}`);
console.log(`FMA ceiling: ${fma.toFixed(1)} GFLOP/s; size ${size}; median of ${reps} after one warm-up`);

const mib = (b: number) => +(b / 2 ** 20).toFixed(1);
const r3 = (v: number) => +v.toPrecision(4);
const mapRange = (v: number | [number, number], f: (x: number) => number): number | [number, number] => (Array.isArray(v) ? [r3(f(v[0])), r3(f(v[1]))] : r3(f(v)));
const msgOf = (e: unknown) => (e instanceof Error ? e.message : String(e));
let runPeak = 0;

const rows: Row[] = [];
for (const net of nets) {
  const shape = size === "paper" ? net.paperShape : net.reducedShape;
  const cfg = net.configFor ? net.configFor(shape) : net.config;
  const paperCfg = net.configFor ? net.configFor(net.paperShape) : net.config;
  const gflop = (2 * net.mod.forwardMacs(cfg, shape)) / 1e9;
  const paperGflop = (2 * net.mod.forwardMacs(paperCfg, net.paperShape)) / 1e9;
  const fullGflop = paperGflop * net.full.passes;
  const row: Row = {
    model: net.name, network: net.network, size, input_shape: shape,
    size_note: size === "paper" ? "paper input size" : `reduced: ${net.reducedWhy}`,
    params: net.mod.parameterCount(cfg), gflop_forward: r3(gflop),
    paper_input_shape: net.paperShape, paper_gflop_forward: r3(paperGflop),
    full_volume: { passes: net.full.passes, how: net.full.how, gflop: r3(fullGflop) },
    paper: null, status: "ok",
  };
  if (net.paper) {
    const g = GPUS[net.paper.gpu];
    const unitGflop = paperGflop * net.perPaperUnit.passes;
    const implied = mapRange(net.paper.seconds, (s) => unitGflop / s / 1e3);
    row.paper = {
      seconds: net.paper.seconds, unit: net.paper.unit, source: net.paper.source, gpu: net.paper.gpu, gpu_fp32_tflops: r3(g.tflops),
      gflop_per_unit: r3(unitGflop), passes_per_unit: net.perPaperUnit.how, implied_tflops: implied,
      implied_fraction: mapRange(net.paper.seconds, (s) => unitGflop / s / 1e3 / g.tflops),
    };
    if (net.paper.unit === "CT") {
      const patch = net.paperShape.slice(2);
      const n = CT.map((s, i) => windows(s, patch[i]!, 0)).reduce((a, b) => a * b, 1);
      row.paper.no_overlap = { passes: n, implied_fraction: mapRange(net.paper.seconds, (s) => (paperGflop * n) / s / 1e3 / g.tflops) };
    }
  }
  rows.push(row);
  const label = `${net.name} ${shape.join("×")}`;
  if ((performance.now() - t0) / 1000 > budgetS) {
    row.status = `skipped: time budget of ${budgetS} s spent before this network`;
    console.log(`${label}: ${row.status}`);
    continue;
  }
  let model: SegmentationNet | null = null;
  let x: Tensor | null = null;
  let seed: Tensor | null = null;
  let peak = 0;
  const sample = () => { peak = Math.max(peak, device.pool.allocatedBytes); runPeak = Math.max(runPeak, peak); };
  try {
    device.trim();
    const tb = performance.now();
    model = buildModel(device, net.name, cfg);
    x = rand(device, shape);
    await device.flush();
    const buildS = (performance.now() - tb) / 1000;
    sample();
    const m = model, input = x;
    // forward (inference)
    m.eval();
    let outShape: readonly number[] = [];
    const f = await timings(device, () => tidy(device, () => { outShape = noGrad(() => m.forward(input)).shape; }), reps, sample);
    row.forward_ms = r3(f.median);
    row.forward_times_ms = f.times.map(r3);
    row.forward_gflops = r3(gflop / f.median * 1e3);
    row.forward_fraction_of_fma = r3(row.forward_gflops / fma);
    row.peak_pool_mib_forward = mib(peak);
    row.est_paper_size_forward_ms = r3(paperGflop / row.forward_gflops * 1e3);
    row.full_volume.est_ms = r3(fullGflop / row.forward_gflops * 1e3);
    if (row.paper) row.meets_target = row.forward_fraction_of_fma >= (Array.isArray(row.paper.implied_fraction) ? row.paper.implied_fraction[0] : row.paper.implied_fraction);
    console.log(`${label.padEnd(30)} build ${buildS.toFixed(1)} s; forward ${f.median.toFixed(1)} ms, ${row.forward_gflops} GFLOP/s (${(row.forward_fraction_of_fma * 100).toFixed(2)} % of FMA), pool peak ${row.peak_pool_mib_forward} MiB`);
    // forward + backward (training)
    try {
      m.train();
      const params = m.parameters();
      seed = rand(device, [...outShape], 1e-3);
      const s = seed;
      const t = await timings(device, () => tidy(device, () => {
        backward(m.forward(input), [s]);
        for (const p of params) { p.grad?.dispose(); p.grad = null; }
      }), reps, sample);
      row.train_ms = r3(t.median);
      row.train_times_ms = t.times.map(r3);
      row.train_gflops = r3(3 * gflop / t.median * 1e3);
      row.train_fraction_of_fma = r3(row.train_gflops / fma);
      row.peak_pool_mib_train = mib(peak);
      console.log(`${"".padEnd(30)} forward+backward ${t.median.toFixed(1)} ms, ≈${row.train_gflops} GFLOP/s, pool peak ${row.peak_pool_mib_train} MiB`);
    } catch (e) {
      row.status = `forward ok; forward+backward skipped: ${msgOf(e)}`;
      if (!(e instanceof PulmoError)) row.status = `forward ok; forward+backward failed (${(e as Error)?.name ?? "error"}): ${msgOf(e)}`;
      console.log(`${label}: ${row.status}`);
    }
  } catch (e) {
    row.status = e instanceof PulmoError ? `skipped: ${msgOf(e)}` : `failed (${(e as Error)?.name ?? "error"}): ${msgOf(e)}`;
    console.log(`${label}: ${row.status}`);
  } finally {
    for (const p of model?.parameters() ?? []) { p.grad?.dispose(); p.grad = null; }
    model?.dispose();
    x?.dispose();
    seed?.dispose();
    try { await device.flush(); } catch (e) { console.log(`  (after ${net.name}: ${msgOf(e)})`); }
  }
}
const fmaEnd = await fmaCeiling(device, 5, 512);
const totalS = (performance.now() - t0) / 1000;
console.log(`FMA ceiling at the end: ${fmaEnd.toFixed(1)} GFLOP/s; total ${totalS.toFixed(0)} s`);

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------
const result = {
  adapter: device.adapterDescription, date: new Date().toISOString(), size, reps,
  ceilings: { fma_gflops: r3(fma), fma_gflops_end: r3(fmaEnd) },
  peak_pool_mib_run: mib(runPeak), total_s: Math.round(totalS),
  assumptions: {
    ct: `${CT.join("×")} (D×H×W)`, sliding_window_overlap: OVERLAP,
    windows: "per axis ceil((size − patch) / (patch × (1 − overlap))) + 1 (nnU-Net placement; no mirroring)",
    gflop: "2 × forwardMacs (conv, conv-transpose, linear, attention MACs); forward+backward counted as 3 × forward",
    gpus: Object.fromEntries(Object.entries(GPUS).map(([k, v]) => [k, `${r3(v.tflops)} TFLOPS fp32 = ${v.basis}`])),
    peak_memory: "max of device.pool.allocatedBytes after each forward and forward+backward, pool trimmed before each network: pooled buffers only (weights, activations, gradients, freed buffers kept for reuse)",
  },
  rows,
};
writeResult(`${outName}.json`, JSON.stringify(result, null, 2) + "\n");

const fmt = (v: number | undefined, d = 1) => (v === undefined ? "–" : v.toFixed(d));
const pct = (v: number | undefined) => (v === undefined ? "–" : `${(v * 100).toFixed(2)} %`);
const rangeStr = (v: number | [number, number], f: (x: number) => string) => (Array.isArray(v) ? `${f(v[0])}–${f(v[1])}` : f(v));
const secs = (s: number) => (s < 1 ? `${+(s * 1000).toFixed(1)} ms` : `${s} s`);
const md = [
  `# Model bench (${size === "paper" ? "paper input sizes" : "reduced input sizes"})`, "",
  `Adapter: ${device.adapterDescription}. FMA ceiling measured in the same run: ${fma.toFixed(1)} GFLOP/s at the start, ${fmaEnd.toFixed(1)} at the end. ` +
  `Median of ${reps} timed runs after one warm-up, GPU completion included; total run ${Math.round(totalS)} s. ` +
  `Produced by \`npm run bench:models${size === "paper" ? " -- --size paper" : ""}\` (bench/models.ts); notes in [NOTES.md](../NOTES.md).`, "",
  "Every network has its paper config (all widths and depths). " +
  (size === "reduced" ? "**The input is reduced** (column *measured at*); the *paper-size* columns are computed, not measured: GFLOP from `forwardMacs` at the paper input, and an **estimate** of the paper-size time = paper GFLOP ÷ the GFLOP/s measured at the reduced size (small inputs usually run at a lower GFLOP/s, so it errs long). " : "") +
  "GFLOP = 2 × conv/linear/attention MACs (norms, activations not counted); forward+backward counts 3 × forward. " +
  "Peak memory = the buffer pool's allocatedBytes high-water mark (pooled buffers: weights, activations, gradients and freed buffers held for reuse).", "",
  "## Measured", "",
  "| model | measured at | GFLOP fwd | fwd ms | fwd GFLOP/s | % of FMA ceiling | fwd+bwd ms | fwd+bwd GFLOP/s | peak pool MiB (fwd / fwd+bwd) | status |",
  "|---|---|---|---|---|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.model} | ${r.input_shape.join("×")} (${r.size_note}) | ${fmt(r.gflop_forward, 2)} | ${fmt(r.forward_ms)} | ${fmt(r.forward_gflops, 2)} | ${pct(r.forward_fraction_of_fma)} | ${fmt(r.train_ms)} | ${fmt(r.train_gflops, 2)} | ${fmt(r.peak_pool_mib_forward)} / ${fmt(r.peak_pool_mib_train)} | ${r.status} |`),
  "",
  "## Paper size and whole CT" + (size === "reduced" ? " (estimates at the measured GFLOP/s)" : ""), "",
  `Whole CT = ${CT.join("×")} (D×H×W) by sliding window with ${OVERLAP * 100} % overlap for the 3D patch networks (nnU-Net's default placement, no mirroring), slice by slice for the 2D networks, 8-slice windows at stride 1 for rdu; the CTV network segments its 416×288×128 crop in one pass.`, "",
  `| model | paper input | paper GFLOP fwd | ${size === "reduced" ? "**estimated** paper-size ms" : "paper-size ms"} | whole CT: passes | whole CT GFLOP | ${size === "reduced" ? "**estimated** whole-CT s" : "whole-CT s"} |`,
  "|---|---|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.model} | ${r.paper_input_shape.join("×")} | ${fmt(r.paper_gflop_forward, 1)} | ${fmt(r.est_paper_size_forward_ms, 0)} | ${r.full_volume.passes} (${r.full_volume.how}) | ${fmt(r.full_volume.gflop, 0)} | ${r.full_volume.est_ms === undefined ? "–" : (r.full_volume.est_ms / 1000).toFixed(0)} |`),
  "",
  "## Against the papers", "",
  "Implied fraction = the paper's FLOPs for its reported unit ÷ its reported time ÷ its GPU's fp32 peak (cores × boost clock × 2). Target: our fraction of the measured FMA ceiling ≥ the paper's implied fraction. " +
  "A fraction above 100 % means the assumed work cannot have been done in fp32 on that GPU in that time: the paper's volume, overlap or network must have been smaller than assumed (the no-overlap column gives the fewest windows that cover the CT).", "",
  "| model | paper time | paper GPU | fp32 peak TFLOPS | paper GFLOP per unit | implied TFLOP/s | implied % of peak | same, no overlap | ours: % of FMA ceiling (fwd) | meets target |",
  "|---|---|---|---|---|---|---|---|---|---|",
  ...rows.map((r) => r.paper
    ? `| ${r.model} | ${rangeStr(r.paper.seconds, secs)} per ${r.paper.unit} | ${r.paper.gpu} | ${r.paper.gpu_fp32_tflops} | ${fmt(r.paper.gflop_per_unit, 0)} (${r.paper.passes_per_unit}) | ${rangeStr(r.paper.implied_tflops, (v) => v.toFixed(2))} | ${rangeStr(r.paper.implied_fraction, (v) => (v * 100).toFixed(1))} % | ${r.paper.no_overlap ? `${(r.paper.no_overlap.passes)} windows: ${rangeStr(r.paper.no_overlap.implied_fraction, (v) => (v * 100).toFixed(1))} %` : "–"} | ${pct(r.forward_fraction_of_fma)} | ${r.meets_target === undefined ? "–" : r.meets_target ? "yes" : "no"} |`
    : `| ${r.model} | not reported | – | – | – | – | – | – | ${pct(r.forward_fraction_of_fma)} | – |`),
  "",
  "Sources: " + [...new Set(rows.flatMap((r) => (r.paper ? [r.paper.source] : [])))].join("; ") + ". " +
  "GPU peaks: " + Object.entries(GPUS).map(([k, v]) => `${k} ${v.tflops.toFixed(2)} TFLOPS (${v.basis})`).join("; ") + ".",
].join("\n");
writeResult(`${outName}.md`, md + "\n");
console.log(`wrote bench/results/${outName}.json and .md`);
device.destroy();
process.exit(0);

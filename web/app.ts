// The demo page: CT from a NIfTI file or a phantom, segmentation on WebGPU, slice viewer, metrics,
// stage times and the mask as NIfTI. State lives in `state`; every action goes through `act`, which
// shows failures in the page.
import {
  createDevice, readNifti, writeNifti, writeMaskLike, evaluateCase, segment, readBytes, loadModel, makePhantom,
  PulmoError, type Device, type LoadedModel, type NiftiVolume, type SegmentResult,
} from "../src/browser.ts";
import { SliceViewer, busiestSlice, type Contour } from "./viewer.ts";
import { explain, NO_WEBGPU } from "./messages.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

interface BundledWeights {
  name: string;
  file: string;
  bytes: number;
}

const state: {
  ct: NiftiVolume | null;
  ctName: string;
  reference: Uint8Array | null;
  result: SegmentResult | null;
  device: Device | null;
  model: { key: string; loaded: LoadedModel } | null;
  busy: boolean;
} = { ct: null, ctName: "", reference: null, result: null, device: null, model: null, busy: false };

const viewer = new SliceViewer($<HTMLCanvasElement>("ct-canvas"), $<HTMLCanvasElement>("overlay"), (z, d) => {
  const slider = $<HTMLInputElement>("slice");
  slider.max = String(d - 1);
  slider.value = String(z);
  slider.disabled = false;
  $("slice-out").textContent = `${z + 1} / ${d}`;
});
$<HTMLInputElement>("slice").addEventListener("input", (e) => viewer.show(Number((e.target as HTMLInputElement).value)));

function showMessage(text: string | null, kind: "error" | "note" = "error"): void {
  const box = $("message");
  box.hidden = text === null;
  box.className = kind === "note" ? "note" : "";
  box.textContent = text ?? "";
}

function setState(s: "idle" | "running" | "done" | "error"): void {
  document.body.dataset.state = s;
}

/** Runs one user action; any failure ends up in the page (and the console), never unhandled. */
async function act(doing: string, fn: () => Promise<void>, file?: string): Promise<void> {
  if (state.busy) return;
  state.busy = true;
  updateButtons();
  showMessage(null);
  try {
    await fn();
  } catch (e) {
    const text = explain(e, doing, file);
    showMessage(text);
    console.warn(text); // handled: shown in the page (console.error is kept for what nobody caught)
    setState("error");
    if (/device lost/i.test(String(e)) || state.device?.lostReason) {
      state.device = null;
      state.model = null;
    }
  } finally {
    state.busy = false;
    updateButtons();
  }
}

function updateButtons(): void {
  $<HTMLButtonElement>("run").disabled = state.busy || !state.ct;
  $<HTMLButtonElement>("phantom").disabled = state.busy;
  $<HTMLButtonElement>("download").disabled = state.busy || !state.result;
}

function setCt(ct: NiftiVolume, name: string, reference: Uint8Array | null): void {
  state.ct = ct;
  state.ctName = name;
  state.reference = reference;
  state.result = null;
  const [d, h, w] = ct.shape;
  $("ct-info").textContent = `${name}: ${w}×${h}×${d} voxels, ${ct.spacing.slice().reverse().map((s) => s.toFixed(2)).join("×")} mm${reference ? ", with reference mask" : ""}`;
  $("times").hidden = true;
  $("metrics").hidden = true;
  viewer.setVolume({ data: ct.data, shape: ct.shape, spacing: ct.spacing });
  if (reference) {
    viewer.setContours([{ mask: reference, rgb: [60, 220, 120] }]);
    viewer.show(busiestSlice(reference, ct.shape));
  }
  setState("idle");
}

/** Lets the page paint a label before a long synchronous step. */
const nextFrame = () => new Promise<void>((r) => requestAnimationFrame(() => setTimeout(r, 0)));

function binaryMask(v: NiftiVolume): Uint8Array {
  const m = new Uint8Array(v.data.length);
  for (let i = 0; i < m.length; i++) m[i] = v.data[i]! > 0.5 ? 1 : 0;
  return m;
}

$<HTMLInputElement>("ct-file").addEventListener("change", (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (file) void act("reading", async () => setCt(readNifti(await readBytes(file, file.name)), file.name, null), file.name);
});

$<HTMLInputElement>("ref-file").addEventListener("change", (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (!file) return;
  void act("reading", async () => {
    if (!state.ct) throw new PulmoError("load the CT before its reference mask");
    const ref = readNifti(await readBytes(file, file.name));
    if (ref.shape.some((n, i) => n !== state.ct!.shape[i]))
      throw new PulmoError(`reference mask is ${ref.shape.join("×")} voxels (D×H×W), the CT is ${state.ct.shape.join("×")}`);
    setCt(state.ct, state.ctName, binaryMask(ref));
  }, file.name);
});

$("phantom").addEventListener("click", () =>
  void act("generating the phantom", async () => {
    const seed = Number($<HTMLInputElement>("seed").value);
    if (!Number.isInteger(seed)) throw new PulmoError(`the phantom seed must be an integer, got '${$<HTMLInputElement>("seed").value}'`);
    $("ct-info").textContent = "generating the phantom…";
    await nextFrame();
    const p = makePhantom({ seed });
    // a NIfTI round trip gives the phantom a header, so the mask downloads like a file's would
    const ct = readNifti(writeNifti({ data: Float32Array.from(p.ct), shape: p.shape, spacing: p.spacing }));
    setCt(ct, `phantom-${seed}`, p.masks.gtv);
  }),
);

// --- model choice ---
const modelSelect = $<HTMLSelectElement>("model");
const OWN_BUNDLE = "__own__";
async function listBundledWeights(): Promise<void> {
  let list: BundledWeights[] = [];
  try {
    const res = await fetch("weights/index.json");
    if (res.ok) list = await res.json();
  } catch {
    /* no bundled weights: the user's own bundle only */
  }
  for (const w of list) modelSelect.add(new Option(`${w.name} (bundled, ${(w.bytes / 1024).toFixed(0)} KiB)`, w.file));
  modelSelect.add(new Option("your own bundle file…", OWN_BUNDLE));
  if (!list.length) showMessage("This build has no bundled weights: choose your own model bundle.", "note");
  onModelChoice();
}
function onModelChoice(): void {
  $("bundle-label").hidden = modelSelect.value !== OWN_BUNDLE;
}
modelSelect.addEventListener("change", onModelChoice);

async function currentModel(device: Device): Promise<LoadedModel> {
  let key: string, source: File | string;
  if (modelSelect.value === OWN_BUNDLE) {
    const f = $<HTMLInputElement>("bundle-file").files?.[0];
    if (!f) throw new PulmoError("choose a model bundle file (.safetensors) first");
    key = `file:${f.name}:${f.size}:${f.lastModified}`;
    source = f;
  } else key = source = modelSelect.value;
  if (state.model?.key !== key) {
    state.model?.loaded.net.dispose();
    state.model = null;
    $("model-info").textContent = "loading weights…";
    const loaded = await loadModel(device, source);
    state.model = { key, loaded };
    $("model-info").textContent = describeModel(loaded);
  }
  return state.model.loaded;
}

function describeModel({ spec }: LoadedModel): string {
  const trained = spec.training ? `, validation Dice ${spec.training.validationDice.toFixed(3)}` : "";
  return `${spec.model}, window ${spec.window.patch.join("×")}${trained}. ${spec.description}`;
}

// --- segmentation ---
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

$("run").addEventListener("click", () =>
  void act("segmenting", async () => {
    const ct = state.ct!;
    setState("running");
    const progress = $<HTMLProgressElement>("progress");
    progress.value = 0;
    $("stage").textContent = "starting WebGPU…";
    state.device ??= await createDevice();
    $("stage").textContent = `loading the model on ${state.device.adapterDescription}…`;
    const { net, options } = await currentModel(state.device);
    $("stage").textContent = "preprocessing…";
    await nextFrame();
    const r = await segment(net, { data: ct.data, shape: ct.shape, spacing: ct.spacing }, {
      ...options,
      onProgress: ({ done, total }) => {
        progress.value = done / total;
        $("stage").textContent = done < total ? `inference: ${done} of ${total} windows` : "post-processing…";
      },
    });
    state.result = r;
    progress.value = 1;
    $("stage").textContent = `done: ${r.windows} windows on ${state.device.adapterDescription}`;
    const t = r.timings;
    $("t-pre").textContent = fmt(t.preprocessMs);
    $("t-inf").textContent = fmt(t.inferenceMs);
    $("t-post").textContent = fmt(t.postprocessMs);
    $("t-total").textContent = fmt(t.preprocessMs + t.inferenceMs + t.postprocessMs);
    $("times").hidden = false;
    const contours: Contour[] = [{ mask: r.mask, rgb: [255, 60, 60] }];
    if (state.reference) {
      const grid = { shape: ct.shape, spacing: ct.spacing, affine: ct.affine };
      const m = evaluateCase({ data: r.mask, ...grid }, { data: state.reference, ...grid });
      const dice = $("dice");
      dice.textContent = m.dice.toFixed(3);
      dice.dataset.value = String(m.dice);
      $("hd95").textContent = Number.isFinite(m.hausdorff95) ? `${m.hausdorff95.toFixed(2)} mm` : "– (an empty mask)";
      $("volumes").textContent = `${m.predictionCc.toFixed(2)} / ${m.referenceCc.toFixed(2)} cm³`;
      $("metrics").hidden = false;
      contours.unshift({ mask: state.reference, rgb: [60, 220, 120] });
    }
    viewer.setContours(contours);
    // open where the tumour is: the reference's largest slice when there is one
    viewer.show(busiestSlice(state.reference ?? r.mask, ct.shape));
    setState("done");
  }),
);

$("download").addEventListener("click", () =>
  void act("writing the mask", async () => {
    const bytes = writeMaskLike(state.ct!, state.result!.mask, { gzip: true });
    const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "application/gzip" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `${state.ctName.replace(/\.nii(\.gz)?$/i, "")}_mask.nii.gz`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }),
);

window.addEventListener("unhandledrejection", (e) => showMessage(explain(e.reason, "running the page")));
if (!("gpu" in navigator)) showMessage(NO_WEBGPU);
void listBundledWeights();
updateButtons();

// Keras HDF5 → engine state dict for the Recurrent 3D-DenseUNet (MODELS.md §7; docs/models/rdu.md
// "Keras weights"). The Keras model (muntakimrafi/TIA2020-Recurrent-3D-DenseUNet, TIA2020.py) works
// on (N, H, W, D, C) tensors; the engine port is NCDHW with D as the ConvLSTM time axis.
import { PulmoError } from "../runtime/errors.ts";
import type { HostArray } from "../graph/module.ts";
import { readKerasH5, weightKind, type KerasWeight } from "../../weights/keras_h5.ts";
import { resolveConfig } from "./rdu.ts";

/** Engine state-dict keys and shapes of an RDU config, in registration order (BN buffers included;
 * no num_batches_tracked). */
export function rduStateShapes(config: Record<string, any>): [string, number[]][] {
  const cfg = resolveConfig(config);
  const [a, b, c, L] = cfg.widths as [number, number, number, number];
  const i = cfg.in_channels;
  const k1 = i + a, k2 = k1 + b, k3 = k2 + c, u6 = c + k3, u7 = 2 * b, u8 = 2 * a;
  const out: [string, number[]][] = [];
  const conv = (n: string, cin: number, cout: number) => {
    out.push([`conv${n}.weight`, [cout, cin, 3, 3, 3]], [`conv${n}.bias`, [cout]]);
    bn(`bn${n}`, cout);
  };
  const bn = (n: string, ch: number) => {
    for (const s of ["weight", "bias", "running_mean", "running_var"]) out.push([`${n}.${s}`, [ch]]);
  };
  const up = (j: number, cin: number, cout: number) => out.push([`up${j}.weight`, [cin, cout, 1, 2, 2]], [`up${j}.bias`, [cout]]);
  conv("1_1", i, a), conv("1_2", i + a, a), conv("2_1", k1, b), conv("2_2", k1 + b, b), conv("3_1", k2, c), conv("3_2", k2 + c, c);
  for (let j = 1; j <= cfg.n_lstm; j++) {
    const cin = j === 1 ? k3 : L;
    out.push([`lstm${j}.conv.weight`, [4 * L, cin + L, 3, 3]], [`lstm${j}.conv.bias`, [4 * L]]);
    bn(`bn_lstm${j}`, L);
  }
  up(1, L, c), conv("4_1", u6, c), conv("4_2", u6 + c, c);
  up(2, u6 + c, b), conv("5_1", u7, b), conv("5_2", u7 + b, b);
  up(3, u7 + b, a), conv("6_1", u8, a), conv("6_2", u8 + a, a);
  out.push(["final.weight", [cfg.num_classes, u8 + a, 1, 1, 1]], ["final.bias", [cfg.num_classes]]);
  return out;
}

/** The explicitly named Conv3D layers of TIA2020.py (conv61 … is named conv4_1, etc.), = engine names. */
const CONV3D = ["1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "4_1", "4_2", "5_1", "5_2", "6_1", "6_2"].map((n) => `conv${n}`).concat("final");

const BN_KEYS: [string, string][] = [["gamma", "weight"], ["beta", "bias"], ["moving_mean", "running_mean"], ["moving_variance", "running_var"]];

const fail = (msg: string): never => {
  throw new PulmoError(`rdu fromKeras: ${msg}`);
};
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
const shp = (s: readonly number[]) => `[${s.join(", ")}]`;

/** out[perm-order index] = src: generic transpose of a row-major array. `perm[k]` is the source axis of
 * output axis k (numpy's `src.transpose(perm)`). */
function transpose(src: Float32Array, shape: readonly number[], perm: readonly number[]): { data: Float32Array; shape: number[] } {
  const n = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const srcStride = new Array<number>(n);
  for (let k = n - 1, s = 1; k >= 0; k--) (srcStride[k] = s), (s *= shape[k]!);
  const stride = perm.map((p) => srcStride[p]!); // source stride of each output axis
  const out = new Float32Array(src.length);
  const idx = new Array<number>(n).fill(0);
  let from = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = src[from]!;
    for (let k = n - 1; k >= 0; k--) {
      from += stride[k]!;
      if (++idx[k]! < outShape[k]!) break;
      from -= stride[k]! * outShape[k]!;
      idx[k] = 0;
    }
  }
  return { data: out, shape: outShape };
}

type Layer = { name: string; weights: Map<string, KerasWeight> };

/** Maps the weights of the Keras TIA2020 model (as read by readKerasH5) to the engine's RDU state
 * dict for `config` (MODELS.md §7 transposes):
 * - Conv3D `conv{1..6}_{1,2}`, `final` (by name): kernel (kH, kW, kD, I, O) → `[O, I, kD, kH, kW]`
 *   = `.transpose(4, 3, 2, 0, 1)`; bias as is.
 * - BatchNormalization layers (auto-named), in layer_names (graph) order: bn1_1 … bn3_2,
 *   bn_lstm1 … bn_lstm{n}, bn4_1 … bn6_2; gamma/beta/moving_mean/moving_variance →
 *   weight/bias/running_mean/running_var.
 * - ConvLSTM2D layers (those with a recurrent_kernel), in order → lstm1 … lstm{n}:
 *   `concat([kernel, recurrent_kernel], axis=2).transpose(3, 2, 0, 1)` → `[4L, Cin+L, 3, 3]`
 *   (gate order i, f, c, o = the engine's i, f, g, o); bias as is.
 * - (TimeDistributed) Conv2DTranspose layers (4-D kernel, no recurrent_kernel), in order → up1, up2,
 *   up3: kernel (kH, kW, O, I) → `.transpose(3, 2, 0, 1)[:, :, None]` = `[I, O, 1, kH, kW]`.
 * Every shape is checked against the config; a missing, extra or misshapen layer is a PulmoError.
 * Returns the state dict in the engine's registration order (loads with strict loadStateDict). */
export function fromKerasWeights(weights: readonly KerasWeight[], config: Record<string, any>): Map<string, HostArray> {
  const expected = new Map(rduStateShapes(config));
  const nLstm = resolveConfig(config).n_lstm;
  const layers: Layer[] = [];
  for (const w of weights) {
    let l = layers[layers.length - 1];
    if (!l || l.name !== w.layer) {
      if (layers.some((x) => x.name === w.layer)) fail(`layer '${w.layer}' appears twice`);
      layers.push((l = { name: w.layer, weights: new Map() }));
    }
    const kind = weightKind(w.name);
    if (l.weights.has(kind)) fail(`layer '${w.layer}' has two '${kind}' weights`);
    l.weights.set(kind, w);
  }

  const convs = new Map<string, Layer>(), bns: Layer[] = [], lstms: Layer[] = [], ups: Layer[] = [];
  for (const l of layers) {
    const kinds = [...l.weights.keys()].sort().join(",");
    if (l.weights.has("recurrent_kernel")) lstms.push(l);
    else if (l.weights.has("gamma") || l.weights.has("moving_mean")) bns.push(l);
    else if (CONV3D.includes(l.name)) convs.set(l.name, l);
    else if (l.weights.get("kernel")?.shape.length === 4) ups.push(l);
    else fail(`unexpected Keras layer '${l.name}' with weights ${kinds} (not part of the TIA2020 Recurrent 3D-DenseUNet)`);
  }
  const nBn = 12 + nLstm;
  const count = (what: string, got: Layer[], want: number) => {
    if (got.length !== want)
      fail(`expected ${want} ${what} layers, found ${got.length}${got.length ? ` (${got.map((l) => l.name).join(", ")})` : ""}`);
  };
  const missingConv = CONV3D.filter((n) => !convs.has(n));
  if (missingConv.length) fail(`missing Keras Conv3D layer(s) ${missingConv.join(", ")}`);
  count(`BatchNormalization (n_lstm=${nLstm})`, bns, nBn);
  count(`ConvLSTM2D (n_lstm=${nLstm})`, lstms, nLstm);
  count("Conv2DTranspose (up1..up3)", ups, 3);

  const out = new Map<string, HostArray>();
  const get = (l: Layer, kind: string): KerasWeight => l.weights.get(kind) ?? fail(`Keras layer '${l.name}' has no '${kind}' weight`);
  const put = (key: string, a: { data: Float32Array; shape: readonly number[] }, from: string) => {
    const want = expected.get(key) ?? fail(`internal: no engine key ${key}`);
    if (!sameShape(a.shape, want)) fail(`${from} gives ${key} shape ${shp(a.shape)}, the config needs ${shp(want)} (wrong config or wrong file?)`);
    out.set(key, { data: a.data, shape: [...want] });
  };
  const checkRank = (w: KerasWeight, rank: number, what: string) => {
    if (w.shape.length !== rank) fail(`${w.name} of layer '${w.layer}': ${what} must be ${rank}-D, got ${shp(w.shape)}`);
  };
  const asIs = (l: Layer, kind: string, key: string) => {
    const w = get(l, kind);
    put(key, { data: Float32Array.from(w.data), shape: w.shape }, `'${l.name}/${kind}'`);
  };
  const extra = (l: Layer, allowed: string[]) => {
    const bad = [...l.weights.keys()].filter((k) => !allowed.includes(k));
    if (bad.length) fail(`Keras layer '${l.name}' has unexpected weight(s) ${bad.join(", ")}`);
  };

  for (const name of CONV3D) {
    const l = convs.get(name)!;
    extra(l, ["kernel", "bias"]);
    const k = get(l, "kernel");
    checkRank(k, 5, "a Conv3D kernel (kH, kW, kD, I, O)");
    put(`${name}.weight`, transpose(k.data, k.shape, [4, 3, 2, 0, 1]), `'${name}/kernel' ${shp(k.shape)}`);
    asIs(l, "bias", `${name}.bias`);
  }
  const bnNames = [
    ...["1_1", "1_2", "2_1", "2_2", "3_1", "3_2"].map((n) => `bn${n}`),
    ...Array.from({ length: nLstm }, (_, j) => `bn_lstm${j + 1}`),
    ...["4_1", "4_2", "5_1", "5_2", "6_1", "6_2"].map((n) => `bn${n}`),
  ];
  bns.forEach((l, j) => {
    extra(l, BN_KEYS.map(([k]) => k));
    for (const [kind, s] of BN_KEYS) asIs(l, kind, `${bnNames[j]}.${s}`);
  });
  lstms.forEach((l, j) => {
    extra(l, ["kernel", "recurrent_kernel", "bias"]);
    const k = get(l, "kernel"), r = get(l, "recurrent_kernel");
    checkRank(k, 4, "a ConvLSTM2D kernel (k, k, Cin, 4L)");
    checkRank(r, 4, "a ConvLSTM2D recurrent_kernel (k, k, L, 4L)");
    const [kh, kw, cin, g4] = k.shape as [number, number, number, number];
    if (r.shape[0] !== kh || r.shape[1] !== kw || r.shape[3] !== g4)
      fail(`layer '${l.name}': kernel ${shp(k.shape)} and recurrent_kernel ${shp(r.shape)} do not fit together`);
    const hid = r.shape[2]!;
    // concat along axis 2 (input channels): (kh, kw, cin + hid, 4L), then transpose(3, 2, 0, 1)
    const cat = new Float32Array(kh * kw * (cin + hid) * g4);
    for (let p = 0; p < kh * kw; p++) {
      cat.set(k.data.subarray(p * cin * g4, (p + 1) * cin * g4), p * (cin + hid) * g4);
      cat.set(r.data.subarray(p * hid * g4, (p + 1) * hid * g4), (p * (cin + hid) + cin) * g4);
    }
    const key = `lstm${j + 1}.conv`;
    put(`${key}.weight`, transpose(cat, [kh, kw, cin + hid, g4], [3, 2, 0, 1]), `'${l.name}' kernel ${shp(k.shape)} + recurrent_kernel ${shp(r.shape)}`);
    asIs(l, "bias", `${key}.bias`);
  });
  ups.forEach((l, j) => {
    extra(l, ["kernel", "bias"]);
    const k = get(l, "kernel");
    const t = transpose(k.data, k.shape, [3, 2, 0, 1]); // (kH, kW, O, I) → [I, O, kH, kW]
    put(`up${j + 1}.weight`, { data: t.data, shape: [t.shape[0]!, t.shape[1]!, 1, t.shape[2]!, t.shape[3]!] }, `'${l.name}/kernel' ${shp(k.shape)}`);
    asIs(l, "bias", `up${j + 1}.bias`);
  });

  // registration order, and a final completeness check
  const ordered = new Map<string, HostArray>();
  for (const key of expected.keys()) ordered.set(key, out.get(key) ?? fail(`no Keras weight for ${key}`));
  return ordered;
}

/** Reads a Keras 2 HDF5 file of the TIA2020 Recurrent 3D-DenseUNet (model.save() or
 * model.save_weights()) and returns the engine state dict for `config` (see fromKerasWeights):
 * `new RDU(device, config).loadStateDict(await fromKerasH5(bytes, config))`. */
export async function fromKerasH5(bytes: Uint8Array | ArrayBuffer, config: Record<string, any>): Promise<Map<string, HostArray>> {
  resolveConfig(config); // a bad config fails before the file is parsed
  return fromKerasWeights(await readKerasH5(bytes), config);
}

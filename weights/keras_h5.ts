// Keras 2 HDF5 weights reader (model.save() files and model.save_weights() files), on top of the
// h5wasm library (the HDF5 C library compiled to WebAssembly; works in Node and browsers).
//
// Layout read (keras/engine/saving.py, Keras 2.x and tf.keras 2.x):
//   model.save():          /model_weights  attr layer_names = [layer, ...]
//                          /model_weights/<layer>  attr weight_names = ["<layer>/kernel:0", ...]
//                          /model_weights/<layer>/<weight name>  float dataset
//   model.save_weights():  the same, with the layer groups (and layer_names) at the root.
// Long attributes are split by Keras into layer_names0, layer_names1, ...; both forms are read.
// Converters from these tensors to an engine state dict live with their model
// (src/models/rdu_keras.ts). Format notes and errors: docs/weights.md.
import { PulmoError } from "../src/runtime/errors.ts";
import type * as H5 from "h5wasm";

export class KerasH5Error extends PulmoError {
  constructor(message: string) {
    super(`keras h5: ${message}`);
    this.name = "KerasH5Error";
  }
}

/** One weight tensor of a Keras layer, in the Keras layout (channels last, as stored). */
export interface KerasWeight {
  /** the layer (group) name, e.g. "conv1_1", "batch_normalization_3" */
  layer: string;
  /** the weight name as stored in weight_names, e.g. "conv1_1/kernel:0" */
  name: string;
  shape: number[];
  data: Float32Array;
}

/** "conv1_1/kernel:0" → "kernel": the last path part without the ":N" suffix. */
export function weightKind(name: string): string {
  const last = name.slice(name.lastIndexOf("/") + 1);
  const colon = last.lastIndexOf(":");
  return colon > 0 ? last.slice(0, colon) : last;
}

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]; // "\x89HDF\r\n\x1a\n"

/** Unsigned little-endian integer of `size` bytes at `at`; undefined for the undefined address (all ones). */
function readAddr(bytes: Uint8Array, at: number, size: number): number | undefined {
  let v = 0n, ones = true;
  for (let i = size - 1; i >= 0; i--) {
    const b = bytes[at + i]!;
    if (b !== 0xff) ones = false;
    v = (v << 8n) | BigInt(b);
  }
  return ones ? undefined : Number(v);
}

/** Checks the HDF5 signature and that the file is as long as its superblock says, so a non-HDF5
 * or cut-short file gets a clear error before the HDF5 library sees it. */
export function checkHdf5Bytes(bytes: Uint8Array): void {
  let off = -1;
  for (let at = 0; at + 8 <= bytes.length; at = at === 0 ? 512 : at * 2) {
    if (SIGNATURE.every((b, i) => bytes[at + i] === b)) {
      off = at;
      break;
    }
  }
  if (off < 0) {
    const head = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new KerasH5Error(`not an HDF5 file (no HDF5 signature at byte 0, 512, 1024, ...; ${bytes.length} bytes, starting ${head || "(empty)"})`);
  }
  const version = bytes[off + 8];
  let sizeOffsets: number | undefined, baseAt: number;
  if (version === 0 || version === 1) {
    sizeOffsets = bytes[off + 13];
    baseAt = off + (version === 0 ? 24 : 28);
  } else if (version !== undefined && version >= 2 && version <= 4) {
    sizeOffsets = bytes[off + 9];
    baseAt = off + 12;
  } else {
    throw new KerasH5Error(`truncated or unsupported HDF5 file: superblock version ${version ?? "(missing)"} at byte ${off}`);
  }
  if (sizeOffsets !== 2 && sizeOffsets !== 4 && sizeOffsets !== 8) {
    if (sizeOffsets === undefined) throw new KerasH5Error(`truncated HDF5 file: ${bytes.length} bytes end inside the superblock`);
    throw new KerasH5Error(`unsupported HDF5 file: ${sizeOffsets}-byte addresses`);
  }
  const eofAt = baseAt + 2 * sizeOffsets; // base address, then (free-space | extension) address, then end of file
  if (eofAt + sizeOffsets > bytes.length) throw new KerasH5Error(`truncated HDF5 file: ${bytes.length} bytes end inside the superblock`);
  const base = readAddr(bytes, baseAt, sizeOffsets) ?? 0;
  const eof = readAddr(bytes, eofAt, sizeOffsets);
  if (eof !== undefined && base + eof > bytes.length)
    throw new KerasH5Error(`truncated HDF5 file: the superblock says ${base + eof} bytes, got ${bytes.length}`);
}

type H5Lib = typeof H5.default;
let lib: Promise<H5Lib> | undefined;
/** Loads h5wasm (≈ 4 MB of WebAssembly) on first use only. */
async function h5wasm(): Promise<H5Lib> {
  lib ??= import("h5wasm").then(async (m) => {
    await m.default.ready;
    return m.default;
  });
  return lib;
}
let fileCounter = 0;

/** Strings of a Keras string-list attribute (fixed-length bytes, variable-length strings, or one
 * string); an empty list is stored by Keras as an empty float array. */
function stringList(value: unknown, what: string): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value as string[];
  if (ArrayBuffer.isView(value) && (value as unknown as ArrayLike<number>).length === 0) return [];
  if (value === null || (Array.isArray(value) && value.length === 0)) return [];
  throw new KerasH5Error(`${what} is not a list of strings`);
}

function attrList(obj: H5.Group, name: string, where: string): string[] | undefined {
  const attrs = obj.attrs;
  const one = (key: string): string[] => {
    const a = attrs[key]!;
    if (a.shape && a.shape.length > 0 && a.shape.reduce((x, y) => x * y, 1) === 0) return [];
    return stringList(a.value, `attribute ${key} of ${where}`);
  };
  if (name in attrs) return one(name);
  if (!(`${name}0` in attrs)) return undefined;
  const out: string[] = [];
  for (let i = 0; `${name}${i}` in attrs; i++) out.push(...one(`${name}${i}`)); // Keras splits attributes over 64 KB
  return out;
}

const H5T_INTEGER = 0, H5T_FLOAT = 1;

function readDataset(ds: H5.Dataset, layer: string, name: string): KerasWeight {
  const m = ds.metadata;
  const shape = m.shape ?? [];
  const dtype = `${m.type === H5T_FLOAT ? "float" : m.type === H5T_INTEGER ? (m.signed ? "int" : "uint") : `HDF5 class ${m.type} `}${m.size * 8}`;
  if (m.type !== H5T_FLOAT || (m.size !== 4 && m.size !== 8))
    throw new KerasH5Error(`weight '${name}' of layer '${layer}' has dtype ${dtype}; only float32 and float64 are read`);
  if (!m.littleEndian) throw new KerasH5Error(`weight '${name}' of layer '${layer}' is big-endian ${dtype}; only little-endian is read`);
  const v = ds.value;
  let data: Float32Array;
  if (v instanceof Float32Array) data = v;
  else if (v instanceof Float64Array) data = Float32Array.from(v); // rounded to nearest
  else throw new KerasH5Error(`weight '${name}' of layer '${layer}': could not read its ${dtype} data`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new KerasH5Error(`weight '${name}' of layer '${layer}': ${data.length} values for shape [${shape.join(", ")}]`);
  return { layer, name, shape: [...shape], data };
}

/** Reads every weight of a Keras 2 HDF5 file (model.save() or model.save_weights()), layers in
 * the order of the layer_names attribute (Keras' model.layers order) and weights in weight_names
 * order; weightless layers contribute nothing. Throws a KerasH5Error for a non-HDF5 or truncated
 * file, a file without Keras weights, a layer or weight named in the attributes but absent, and a
 * dtype other than little-endian float32/float64. */
export async function readKerasH5(input: Uint8Array | ArrayBuffer): Promise<KerasWeight[]> {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  checkHdf5Bytes(bytes);
  const h5 = await h5wasm();
  const FS = (await h5.ready).FS;
  const path = `/pulmo_keras_${++fileCounter}.h5`;
  FS.writeFile(path, bytes);
  let file: H5.File | undefined;
  try {
    file = new h5.File(path, "r");
    if (file.file_id < 0n) throw new KerasH5Error("the HDF5 library could not open the file (corrupt HDF5?)");
    let root: H5.Group = file;
    let where = "the file root";
    let layers = attrList(file, "layer_names", where);
    if (layers === undefined) {
      const mw = file.keys().includes("model_weights") ? file.get("model_weights") : null;
      if (mw instanceof h5.Group) {
        root = mw;
        where = "/model_weights";
        layers = attrList(mw, "layer_names", where);
      }
    }
    if (layers === undefined) {
      const keys = file.keys();
      const keras3 = keys.includes("layers") || keys.includes("_layer_checkpoint_dependencies");
      throw new KerasH5Error(
        keras3
          ? "this looks like a Keras 3 '.weights.h5' file (groups layers/…/vars); only the Keras 2 / tf.keras HDF5 layout is read"
          : `no Keras weights: neither the root nor /model_weights has a layer_names attribute (root holds: ${keys.join(", ") || "nothing"})`,
      );
    }
    const out: KerasWeight[] = [];
    const rootKeys = new Set(root.keys());
    for (const layer of layers) {
      const g = rootKeys.has(layer) ? root.get(layer) : null;
      if (!(g instanceof h5.Group)) throw new KerasH5Error(`layer '${layer}' is listed in layer_names of ${where} but has no group there`);
      const names = attrList(g, "weight_names", `layer '${layer}'`) ?? [];
      for (const name of names) {
        let ds: H5.Entity | null = null;
        try {
          ds = g.get(name);
        } catch {
          ds = null;
        }
        if (!(ds instanceof h5.Dataset)) throw new KerasH5Error(`weight '${name}' is listed in weight_names of layer '${layer}' but is not in the file`);
        out.push(readDataset(ds, layer, name));
      }
    }
    return out;
  } catch (e) {
    if (e instanceof KerasH5Error) throw e;
    throw new KerasH5Error(`the HDF5 library failed to read the file (corrupt HDF5?): ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    try {
      if (file && file.file_id >= 0n) file.close();
    } finally {
      FS.unlink(path);
    }
  }
}

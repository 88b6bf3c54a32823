// NIfTI-1 read and write (.nii and .nii.gz). Volumes use the engine's [D, H, W] order: a file of
// dim [nx, ny, nz] becomes shape [nz, ny, nx] with the data in the file's memory order (x fastest).
// The 348-byte header is kept and written back, so qform/sform and every other field round-trip.
import { Gunzip, gzipSync } from "fflate";
import { PulmoError } from "../runtime/errors.ts";

export class NiftiError extends PulmoError {
  constructor(message: string) {
    super(`nifti: ${message}`);
    this.name = "NiftiError";
  }
}

const fail = (m: string): never => {
  throw new NiftiError(m);
};

export type NiftiDtype = "uint8" | "int8" | "int16" | "uint16" | "int32" | "float32" | "float64";
const CODES: Record<number, { name: NiftiDtype; bytes: number }> = {
  2: { name: "uint8", bytes: 1 },
  4: { name: "int16", bytes: 2 },
  8: { name: "int32", bytes: 4 },
  16: { name: "float32", bytes: 4 },
  64: { name: "float64", bytes: 8 },
  256: { name: "int8", bytes: 1 },
  512: { name: "uint16", bytes: 2 },
};
const CODE_OF = Object.fromEntries(Object.entries(CODES).map(([c, d]) => [d.name, Number(c)])) as Record<NiftiDtype, number>;

export interface NiftiVolume {
  /** values after scl_slope/scl_inter, as float32 */
  data: Float32Array;
  /** [D, H, W] = [nz, ny, nx] */
  shape: [number, number, number];
  /** voxel size in mm, [dz, dy, dx] */
  spacing: [number, number, number];
  /** voxel (i=x, j=y, k=z) → patient mm, row-major 4×4: sform if set, else qform, else pixdim */
  affine: number[][];
  datatype: NiftiDtype;
  /** the original 348-byte header (little-endian after reading) */
  header: Uint8Array;
}

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/** Deflate expands data at most about 1032:1 (a 258-byte match costs at least 2 bits), so a header
 * claiming more image than that times the compressed size is corrupt. */
const MAX_DEFLATE_RATIO = 1032;

/** The header fields that fix how much data a file holds, validated. */
function headerLayout(bytes: Uint8Array) {
  if (bytes.byteLength < 348) fail(`truncated file: ${bytes.byteLength} bytes, a NIfTI-1 header needs 348`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = view.getInt32(0, true) === 348;
  if (!le && view.getInt32(0, false) !== 348) fail(`sizeof_hdr is ${view.getInt32(0, true)}, not 348: not a NIfTI-1 file`);
  const magic = String.fromCharCode(...bytes.subarray(344, 347));
  if (magic !== "n+1" && magic !== "ni1") fail(`bad magic '${magic}' (expected n+1)`);
  if (magic === "ni1") fail("two-file NIfTI (.hdr/.img) is not supported; convert to a single .nii");
  const i16 = (o: number) => view.getInt16(o, le);
  const ndim = i16(40);
  if (ndim < 1 || ndim > 7) fail(`dim[0] is ${ndim}, must be 1..7`);
  const dims = Array.from({ length: 7 }, (_, i) => (i < ndim ? i16(42 + 2 * i) : 1));
  if (dims.some((d) => d < 1)) fail(`dimensions [${dims.slice(0, ndim)}] must all be ≥ 1`);
  if (dims.slice(3).some((d) => d !== 1)) fail(`only 3D volumes are supported, got dims [${dims.slice(0, ndim)}]`);
  const code = i16(70);
  const dt = CODES[code] ?? fail(`unsupported datatype code ${code}`);
  const [nx, ny, nz] = dims as [number, number, number];
  const rawOffset = view.getFloat32(108, le);
  const voxOffset = Math.floor(rawOffset);
  if (!(voxOffset >= 348)) fail(`vox_offset ${rawOffset} is before the end of the header`);
  return { view, le, nx, ny, nz, n: nx * ny * nz, dt, voxOffset, end: voxOffset + nx * ny * nz * dt.bytes };
}

/** Inflates a .nii.gz only as far as its header says the data goes, refusing a header that claims
 * more than the stream could hold before allocating for it (fflate's gunzipSync would allocate
 * whatever the gzip trailer claims, up to 4 GiB). */
function gunzipNifti(input: Uint8Array): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let need = Infinity;
  const gz = new Gunzip((chunk) => {
    chunks.push(chunk);
    total += chunk.byteLength;
  });
  const STEP = 1 << 14;
  for (let at = 0; at < input.byteLength && total < need; at += STEP) {
    try {
      gz.push(input.subarray(at, at + STEP), at + STEP >= input.byteLength);
    } catch (e) {
      fail(`corrupt gzip stream (${(e as Error).message})`);
    }
    if (need === Infinity && total >= 348) {
      need = headerLayout(concat(chunks, 348)).end;
      if (need > MAX_DEFLATE_RATIO * input.byteLength + 348)
        fail(`header claims ${need} bytes of image, more than a ${input.byteLength}-byte gzip stream can hold (corrupt header?)`);
    }
  }
  return concat(chunks, Math.min(total, need));
}

function concat(chunks: Uint8Array[], bytes: number): Uint8Array {
  if (chunks.length === 1 && chunks[0]!.byteLength === bytes) return chunks[0]!;
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    if (at >= bytes) break;
    const part = c.subarray(0, bytes - at);
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Parses a .nii or .nii.gz file. Everything the header claims is checked against the bytes
 * before anything is allocated. */
export function readNifti(input: Uint8Array): NiftiVolume {
  const bytes = isGzip(input) ? gunzipNifti(input) : input;
  const { view, le, nx, ny, nz, n, dt, voxOffset } = headerLayout(bytes);
  const f32 = (o: number) => view.getFloat32(o, le);
  if (voxOffset + n * dt.bytes > bytes.byteLength)
    fail(`truncated data: dims [${nx}, ${ny}, ${nz}] of ${dt.name} need ${n * dt.bytes} bytes at offset ${voxOffset}, file has ${bytes.byteLength - voxOffset}`);
  let slope = f32(112);
  const inter = f32(116);
  if (slope === 0 || !Number.isFinite(slope)) slope = 1; // the standard: 0 means unscaled
  const data = new Float32Array(n);
  const read = {
    uint8: (o: number) => view.getUint8(o),
    int8: (o: number) => view.getInt8(o),
    int16: (o: number) => view.getInt16(o, le),
    uint16: (o: number) => view.getUint16(o, le),
    int32: (o: number) => view.getInt32(o, le),
    float32: (o: number) => view.getFloat32(o, le),
    float64: (o: number) => view.getFloat64(o, le),
  }[dt.name];
  for (let i = 0; i < n; i++) {
    data[i] = read(voxOffset + i * dt.bytes) * slope + (Number.isFinite(inter) ? inter : 0);
    // ±Infinity too (stored, or a float64/scaled value beyond float32): no image holds one
    if (!Number.isFinite(data[i]!)) fail(`voxel ${i} is ${data[i]}${Number.isNaN(data[i]!) ? "" : " (non-finite after scaling to float32)"}`);
  }
  const pix = [f32(80), f32(84), f32(88)].map((v) => (v > 0 ? v : 1)) as [number, number, number];
  const header = headerLittleEndian(bytes.subarray(0, 348), le);
  return { data, shape: [nz, ny, nx], spacing: [pix[2], pix[1], pix[0]], affine: affineOf(view, le, pix), datatype: dt.name, header };
}

/** qform from the quaternion (NIfTI-1 standard, method 2), sform rows (method 3), or pixdim. */
function affineOf(view: DataView, le: boolean, pix: [number, number, number]): number[][] {
  const i16 = (o: number) => view.getInt16(o, le);
  const f = (o: number) => view.getFloat32(o, le);
  if (i16(254) > 0) return [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => f(280 + 16 * r + 4 * c))).concat([[0, 0, 0, 1]]);
  if (i16(252) > 0) {
    const [b, c, d] = [f(256), f(260), f(264)];
    const a = Math.sqrt(Math.max(0, 1 - b * b - c * c - d * d));
    const qfac = f(76) < 0 ? -1 : 1;
    const R = [
      [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
      [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
      [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ];
    const scale = [pix[0], pix[1], qfac * pix[2]];
    const t = [f(268), f(272), f(276)];
    return R.map((row, r) => [...row.map((v, j) => v * scale[j]!), t[r]!]).concat([[0, 0, 0, 1]]);
  }
  return [[pix[0], 0, 0, 0], [0, pix[1], 0, 0], [0, 0, pix[2], 0], [0, 0, 0, 1]];
}

// Byte-swaps every multi-byte header field so the kept header is little-endian.
const FIELDS: [number, number, number][] = [
  // [offset, element size, count]
  [0, 4, 1], [32, 4, 1], [36, 2, 1], [40, 2, 8], [56, 4, 3], [68, 2, 3], [74, 2, 1], [76, 4, 8],
  [108, 4, 3], [120, 2, 1], [124, 4, 4], [140, 4, 2], [252, 2, 2], [256, 4, 6], [280, 4, 12],
];
function headerLittleEndian(h: Uint8Array, le: boolean): Uint8Array {
  const out = Uint8Array.from(h);
  if (le) return out;
  for (const [o, size, count] of FIELDS)
    for (let k = 0; k < count; k++) out.subarray(o + k * size, o + (k + 1) * size).reverse();
  return out;
}

export interface WriteOptions {
  datatype?: NiftiDtype;
  gzip?: boolean;
  /** stored values are (value − inter) / slope */
  slope?: number;
  inter?: number;
}

/** Writes a single-file NIfTI-1 volume. The header (affine, descriptions, units) comes from
 * `volume.header` when present, with dims, datatype, scaling and vox_offset set for this data. */
export function writeNifti(volume: Pick<NiftiVolume, "data" | "shape" | "spacing"> & Partial<Pick<NiftiVolume, "header">>, options: WriteOptions = {}): Uint8Array {
  const dtype = options.datatype ?? "float32";
  const code = CODE_OF[dtype] ?? fail(`cannot write datatype ${dtype}`);
  const bytesPer = CODES[code]!.bytes;
  const [nz, ny, nx] = volume.shape;
  const n = nx * ny * nz;
  if (volume.data.length !== n) fail(`data has ${volume.data.length} values, shape [${volume.shape}] needs ${n}`);
  const slope = options.slope ?? 1, inter = options.inter ?? 0;
  if (!(slope !== 0 && Number.isFinite(slope) && Number.isFinite(inter))) fail(`invalid scaling slope ${slope} inter ${inter}`);
  const out = new Uint8Array(352 + n * bytesPer);
  const v = new DataView(out.buffer);
  if (volume.header) out.set(volume.header.subarray(0, 348));
  else {
    v.setInt16(252, 0, true); // qform_code
    v.setInt16(254, 1, true); // sform_code: scanner-less identity scaled by spacing
    const [dz, dy, dx] = volume.spacing;
    [[dx, 0, 0, 0], [0, dy, 0, 0], [0, 0, dz, 0]].forEach((row, r) => row.forEach((x, c) => v.setFloat32(280 + 16 * r + 4 * c, x, true)));
    v.setUint8(123, 2); // xyzt_units: mm
  }
  v.setInt32(0, 348, true);
  [3, nx, ny, nz, 1, 1, 1, 1].forEach((d, i) => v.setInt16(40 + 2 * i, d, true));
  v.setInt16(70, code, true);
  v.setInt16(72, bytesPer * 8, true);
  const [dz, dy, dx] = volume.spacing;
  if (!volume.header) v.setFloat32(76, 1, true);
  [dx, dy, dz].forEach((d, i) => v.setFloat32(80 + 4 * i, d, true));
  v.setFloat32(108, 352, true);
  v.setFloat32(112, slope, true);
  v.setFloat32(116, inter, true);
  out.set([0x6e, 0x2b, 0x31, 0x00], 344); // "n+1\0"
  const write = {
    uint8: (o: number, x: number) => v.setUint8(o, x),
    int8: (o: number, x: number) => v.setInt8(o, x),
    int16: (o: number, x: number) => v.setInt16(o, x, true),
    uint16: (o: number, x: number) => v.setUint16(o, x, true),
    int32: (o: number, x: number) => v.setInt32(o, x, true),
    float32: (o: number, x: number) => v.setFloat32(o, x, true),
    float64: (o: number, x: number) => v.setFloat64(o, x, true),
  }[dtype];
  const integer = !dtype.startsWith("float");
  const [lo, hi] = { uint8: [0, 255], int8: [-128, 127], int16: [-32768, 32767], uint16: [0, 65535], int32: [-(2 ** 31), 2 ** 31 - 1], float32: [-Infinity, Infinity], float64: [-Infinity, Infinity] }[dtype];
  for (let i = 0; i < n; i++) {
    const x = volume.data[i]!;
    if (Number.isNaN(x)) fail(`voxel ${i} is NaN`);
    let s = (x - inter) / slope;
    if (integer) {
      s = Math.round(s);
      if (s < lo! || s > hi!) fail(`voxel ${i} value ${x} does not fit ${dtype} with slope ${slope}, inter ${inter}`);
    }
    write(352 + i * bytesPer, s);
  }
  return options.gzip ? gzipSync(out) : out;
}

/** A uint8 mask on the grid (and with the affine) of a reference volume. */
export function writeMaskLike(reference: NiftiVolume, mask: ArrayLike<number>, options: { gzip?: boolean } = {}): Uint8Array {
  const data = Float32Array.from(mask, (m) => (m ? 1 : 0));
  return writeNifti({ data, shape: reference.shape, spacing: reference.spacing, header: reference.header }, { datatype: "uint8", gzip: options.gzip });
}

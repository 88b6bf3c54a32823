// PNG overlays for a person to look at a segmentation: an axial, a coronal and a sagittal slice
// through the tumour, CT in a lung window, reference and prediction drawn as contours.
// Browser-safe. Conventions (colours, orientation): docs/demo.md.
import { PulmoError } from "../runtime/errors.ts";
import { encodePng, type RgbImage } from "../io/png.ts";
import { largestComponent } from "./masks/components.ts";
import { checkSpacing, checkVolume, voxelCount, type Shape3, type Spacing3, type Volume } from "./masks/volume.ts";

export type Rgb = readonly [number, number, number];

/** Fixed colour convention: green = reference, red = prediction, yellow where the two coincide. */
export const OVERLAY_COLOURS = {
  reference: [0, 255, 0] as Rgb,
  prediction: [255, 0, 0] as Rgb,
  both: [255, 255, 0] as Rgb,
} as const;

/** Lung window: width 1500 HU, level −600 HU (−1350 … 150 HU from black to white). */
export const LUNG_WINDOW = { width: 1500, level: -600 } as const;

export interface OverlayOptions {
  /** reference mask on the CT's grid (drawn green) */
  reference?: ArrayLike<number> | null;
  /** predicted mask on the CT's grid (drawn red) */
  prediction?: ArrayLike<number> | null;
  /** voxel [z, y, x] the three slices pass through; default: the centroid of the largest
   * component of the reference (or of the prediction when there is no reference), else the
   * volume's centre */
  centre?: readonly [number, number, number];
  window?: { width: number; level: number };
  /** display pixel size in mm before `zoom` (default: the smallest voxel spacing), so coronal and
   * sagittal views are not squashed by a thick slice spacing */
  pixelMm?: number;
  /** integer magnification (default: the largest ≤ 4 keeping the longest side ≤ 512 px) */
  zoom?: number;
  /** contour thickness in display pixels (default 2) */
  lineWidth?: number;
  /** slice index 0 is the most inferior (the phantom, and NIfTI/DICOM volumes stored foot to
   * head); coronal and sagittal views then put the head at the top (default true) */
  inferiorFirst?: boolean;
  /** a title (view and slice) and the colour legend (default true) */
  labels?: boolean;
}

export interface OverlayViews {
  axial: RgbImage;
  coronal: RgbImage;
  sagittal: RgbImage;
  /** the voxel [z, y, x] the slices pass through */
  centre: [number, number, number];
}

/** Centroid voxel of the mask's largest component (26-connected), moved to the component voxel
 * nearest to it when the centroid itself lies outside; null for an empty mask. */
export function tumourCentre(mask: Volume): [number, number, number] | null {
  const shape = checkVolume(mask, "tumourCentre");
  const comp = largestComponent(mask);
  const [, H, W] = shape;
  let n = 0, sz = 0, sy = 0, sx = 0;
  for (let i = 0; i < comp.data.length; i++)
    if (comp.data[i]) {
      n++;
      sz += Math.floor(i / (H * W));
      sy += Math.floor(i / W) % H;
      sx += i % W;
    }
  if (n === 0) return null;
  const c: [number, number, number] = [Math.round(sz / n), Math.round(sy / n), Math.round(sx / n)];
  if (comp.data[(c[0] * H + c[1]) * W + c[2]]) return c;
  let best = Infinity, bi = 0;
  for (let i = 0; i < comp.data.length; i++)
    if (comp.data[i]) {
      const d = (Math.floor(i / (H * W)) - c[0]) ** 2 + ((Math.floor(i / W) % H) - c[1]) ** 2 + ((i % W) - c[2]) ** 2;
      if (d < best) [best, bi] = [d, i];
    }
  return [Math.floor(bi / (H * W)), Math.floor(bi / W) % H, bi % W];
}

interface View {
  name: string;
  /** volume axes along image rows (top to bottom) and columns (left to right) */
  rowAxis: number;
  colAxis: number;
  flipRows: boolean;
  sliceAxis: number;
}

/** The three views, each as Uint8 RGB, with contours and (optionally) labels. */
export function renderOverlays(ct: Volume, spacing: Spacing3, options: OverlayOptions = {}): OverlayViews {
  const shape = checkVolume(ct, "overlay ct");
  const sp = checkSpacing(spacing, "overlay");
  if (shape.some((s) => s === 0)) throw new PulmoError(`overlay: the CT is empty (shape [${shape.join(", ")}])`);
  const ref = options.reference ? maskOf(options.reference, shape, "reference") : null;
  const pred = options.prediction ? maskOf(options.prediction, shape, "prediction") : null;
  const centre = options.centre ? checkCentre(options.centre, shape) : (ref && tumourCentre({ data: ref, shape })) ?? (pred && tumourCentre({ data: pred, shape })) ?? [Math.floor(shape[0] / 2), Math.floor(shape[1] / 2), Math.floor(shape[2] / 2)];
  const win = options.window ?? LUNG_WINDOW;
  if (!(Number.isFinite(win.width) && win.width > 0 && Number.isFinite(win.level))) throw new PulmoError(`overlay: window width must be positive and level finite, got ${JSON.stringify(win)}`);
  const pixelMm = options.pixelMm ?? Math.min(...sp);
  if (!(Number.isFinite(pixelMm) && pixelMm > 0)) throw new PulmoError(`overlay: pixelMm must be a positive number, got ${options.pixelMm}`);
  const extents = [0, 1, 2].map((a) => Math.max(1, Math.round((shape[a]! * sp[a]!) / pixelMm)));
  const zoom = options.zoom ?? Math.max(1, Math.min(4, Math.floor(512 / Math.max(...extents))));
  if (!(Number.isInteger(zoom) && zoom >= 1 && zoom <= 16)) throw new PulmoError(`overlay: zoom must be an integer in 1..16, got ${options.zoom}`);
  const lineWidth = options.lineWidth ?? 2;
  if (!(Number.isInteger(lineWidth) && lineWidth >= 1)) throw new PulmoError(`overlay: lineWidth must be a positive integer, got ${options.lineWidth}`);
  const flip = options.inferiorFirst ?? true;
  const labels = options.labels ?? true;
  const views: View[] = [
    { name: "AXIAL", rowAxis: 1, colAxis: 2, flipRows: false, sliceAxis: 0 },
    { name: "CORONAL", rowAxis: 0, colAxis: 2, flipRows: flip, sliceAxis: 1 },
    { name: "SAGITTAL", rowAxis: 0, colAxis: 1, flipRows: flip, sliceAxis: 2 },
  ];
  const [axial, coronal, sagittal] = views.map((v) => {
    const rows = extents[v.rowAxis]! * zoom, cols = extents[v.colAxis]! * zoom;
    // display pixel → voxel index along each image axis (nearest voxel, physical mm)
    const pick = (axis: number, n: number, flipIt: boolean) =>
      Int32Array.from({ length: n }, (_, p) => {
        const idx = Math.min(shape[axis]! - 1, Math.floor(((p + 0.5) / zoom) * (pixelMm / sp[axis]!)));
        return flipIt ? shape[axis]! - 1 - idx : idx;
      });
    const rowIdx = pick(v.rowAxis, rows, v.flipRows), colIdx = pick(v.colAxis, cols, false);
    const strides = [shape[1] * shape[2], shape[2], 1];
    const base = centre[v.sliceAxis]! * strides[v.sliceAxis]!;
    const voxel = (r: number, c: number) => base + rowIdx[r]! * strides[v.rowAxis]! + colIdx[c]! * strides[v.colAxis]!;
    const img = new Uint8Array(rows * cols * 3);
    const lo = win.level - win.width / 2;
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const g = Math.max(0, Math.min(255, Math.round(((Number(ct.data[voxel(r, c)]) - lo) / win.width) * 255)));
        const o = (r * cols + c) * 3;
        img[o] = img[o + 1] = img[o + 2] = g;
      }
    const refEdge = ref ? contour(ref, rows, cols, voxel, lineWidth) : null;
    const predEdge = pred ? contour(pred, rows, cols, voxel, lineWidth) : null;
    for (let p = 0; p < rows * cols; p++) {
      const a = refEdge?.[p], b = predEdge?.[p];
      const colour = a && b ? OVERLAY_COLOURS.both : a ? OVERLAY_COLOURS.reference : b ? OVERLAY_COLOURS.prediction : null;
      if (colour) img.set(colour, p * 3);
    }
    const image: RgbImage = { width: cols, height: rows, channels: 3, data: img };
    if (labels) {
      drawText(image, `${v.name} ${v.sliceAxis === 0 ? "Z" : v.sliceAxis === 1 ? "Y" : "X"}=${centre[v.sliceAxis]}`, 3, 3, [255, 255, 255]);
      return withLegend(image, ref !== null, pred !== null);
    }
    return image;
  });
  return { axial: axial!, coronal: coronal!, sagittal: sagittal!, centre: [centre[0], centre[1], centre[2]] };
}

/** `renderOverlays` encoded as PNG files. */
export function overlayPngs(ct: Volume, spacing: Spacing3, options: OverlayOptions = {}): { axial: Uint8Array; coronal: Uint8Array; sagittal: Uint8Array; centre: [number, number, number] } {
  const v = renderOverlays(ct, spacing, options);
  return { axial: encodePng(v.axial), coronal: encodePng(v.coronal), sagittal: encodePng(v.sagittal), centre: v.centre };
}

function maskOf(m: ArrayLike<number>, shape: Shape3, what: string): Uint8Array {
  if (m.length !== voxelCount(shape)) throw new PulmoError(`overlay ${what}: ${m.length} voxels, the CT has ${voxelCount(shape)} ([${shape.join(", ")}])`);
  const out = new Uint8Array(m.length);
  for (let i = 0; i < m.length; i++) out[i] = m[i] !== 0 ? 1 : 0;
  return out;
}

function checkCentre(c: readonly number[], shape: Shape3): [number, number, number] {
  if (c.length !== 3 || c.some((v, a) => !Number.isInteger(v) || v < 0 || v >= shape[a]!))
    throw new PulmoError(`overlay: centre must be a voxel [z, y, x] inside [${shape.join(", ")}], got ${JSON.stringify(c)}`);
  return [c[0]!, c[1]!, c[2]!];
}

/** Pixels of the mask (as displayed) within `width` pixels of a displayed pixel outside it. */
function contour(mask: Uint8Array, rows: number, cols: number, voxel: (r: number, c: number) => number, width: number): Uint8Array {
  const inside = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) inside[r * cols + c] = mask[voxel(r, c)]!;
  const edge = new Uint8Array(rows * cols);
  const at = (r: number, c: number) => (r < 0 || c < 0 || r >= rows || c >= cols ? 0 : inside[r * cols + c]!);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      if (!inside[r * cols + c]) continue;
      for (let d = 1; d <= width && !edge[r * cols + c]; d++)
        if (!at(r - d, c) || !at(r + d, c) || !at(r, c - d) || !at(r, c + d)) edge[r * cols + c] = 1;
    }
  return edge;
}

// A 5×7 bitmap font for the labels (capitals, digits, '=', ' ').
const FONT: Record<string, string> = {
  A: "01110100011000111111100011000110001", B: "11110100011000111110100011000111110", C: "01110100011000010000100001000101110",
  D: "11110100011000110001100011000111110", E: "11111100001000011110100001000011111", F: "11111100001000011110100001000010000",
  G: "01110100011000010111100011000101111", H: "10001100011000111111100011000110001", I: "01110001000010000100001000010001110",
  L: "10000100001000010000100001000011111", N: "10001100011100110101100111000110001", O: "01110100011000110001100011000101110",
  P: "11110100011000111110100001000010000", R: "11110100011000111110101001001010001", S: "01111100001000001110000010000111110",
  T: "11111001000010000100001000010000100", X: "10001100010101000100010101000110001", Y: "10001100010101000100001000010000100",
  Z: "11111000010001000100010001000011111", "=": "00000000001111100000111110000000000", " ": "00000000000000000000000000000000000",
  "0": "01110100011001110101110011000101110", "1": "00100011000010000100001000010001110", "2": "01110100010000100010001000100011111",
  "3": "11111000100010000010000011000101110", "4": "00010001100101010010111110001000010", "5": "11111100001111000001000011000101110",
  "6": "00110010001000011110100011000101110", "7": "11111000010001000100010000100001000", "8": "01110100011000101110100011000101110",
  "9": "01110100011000101111000010001001100",
};

function drawText(img: RgbImage, text: string, x0: number, y0: number, colour: Rgb): void {
  let x = x0;
  for (const ch of text) {
    const g = FONT[ch] ?? FONT[" "]!;
    for (let r = 0; r < 7; r++)
      for (let c = 0; c < 5; c++)
        if (g[r * 5 + c] === "1") {
          const px = x + c, py = y0 + r;
          if (px >= 0 && py >= 0 && px < img.width && py < img.height) img.data.set(colour, (py * img.width + px) * img.channels);
        }
    x += 6;
  }
}

/** The image with a black strip below it: a swatch and name per colour drawn. */
function withLegend(img: RgbImage, hasRef: boolean, hasPred: boolean): RgbImage {
  const strip = 13;
  const out: RgbImage = { width: img.width, height: img.height + strip, channels: 3, data: new Uint8Array(img.width * (img.height + strip) * 3) };
  out.data.set(img.data);
  const entries: [string, Rgb][] = [];
  if (hasRef) entries.push(["REFERENCE", OVERLAY_COLOURS.reference]);
  if (hasPred) entries.push(["PREDICTION", OVERLAY_COLOURS.prediction]);
  if (hasRef && hasPred) entries.push(["BOTH", OVERLAY_COLOURS.both]);
  let x = 3;
  const y = img.height + 3;
  for (const [name, colour] of entries) {
    for (let r = 0; r < 7; r++) for (let c = 0; c < 7; c++) if (x + c < out.width) out.data.set(colour, ((y + r) * out.width + x + c) * 3);
    drawText(out, name, x + 10, y, [255, 255, 255]);
    x += 10 + name.length * 6 + 8;
  }
  return out;
}

// Axial slice viewer: the CT in a lung window on one canvas, mask contours on a transparent canvas
// stacked over it (so the overlay can be checked on its own).

/** Lung window: width 1500 HU, level −600 HU. */
export const LUNG_WINDOW = { width: 1500, level: -600 };

export interface ViewVolume {
  data: ArrayLike<number>;
  /** [D, H, W] */
  shape: readonly [number, number, number];
  /** mm, [dz, dy, dx] */
  spacing: readonly [number, number, number];
}

export interface Contour {
  mask: Uint8Array;
  rgb: readonly [number, number, number];
}

const DISPLAY_PX = 448;

export class SliceViewer {
  private slice = 0;
  private ct: ViewVolume | null = null;
  private contours: Contour[] = [];
  private scaleX = 1;
  private scaleY = 1;

  constructor(
    private readonly ctCanvas: HTMLCanvasElement,
    private readonly overlay: HTMLCanvasElement,
    private readonly onSlice: (slice: number, depth: number) => void,
  ) {
    ctCanvas.parentElement!.addEventListener(
      "wheel",
      (e) => {
        if (!this.ct) return;
        e.preventDefault();
        this.show(this.slice + Math.sign(e.deltaY));
      },
      { passive: false },
    );
  }

  get depth(): number {
    return this.ct ? this.ct.shape[0] : 0;
  }

  /** New CT: sizes the canvases to its in-plane extent in mm, clears the contours. */
  setVolume(ct: ViewVolume): void {
    this.ct = ct;
    this.contours = [];
    const [, h, w] = ct.shape;
    const mmW = w * ct.spacing[2], mmH = h * ct.spacing[1];
    const k = DISPLAY_PX / Math.max(mmW, mmH);
    for (const c of [this.ctCanvas, this.overlay]) {
      c.width = Math.max(1, Math.round(mmW * k));
      c.height = Math.max(1, Math.round(mmH * k));
    }
    this.scaleX = this.ctCanvas.width / w;
    this.scaleY = this.ctCanvas.height / h;
    this.show(Math.floor(ct.shape[0] / 2));
  }

  setContours(contours: Contour[]): void {
    this.contours = contours;
    this.show(this.slice);
  }

  show(slice: number): void {
    if (!this.ct) return;
    this.slice = Math.min(this.ct.shape[0] - 1, Math.max(0, Math.round(slice)));
    this.drawCt();
    this.drawContours();
    this.onSlice(this.slice, this.ct.shape[0]);
  }

  private drawCt(): void {
    const { data, shape } = this.ct!;
    const [, h, w] = shape;
    const lo = LUNG_WINDOW.level - LUNG_WINDOW.width / 2;
    const img = new ImageData(w, h);
    const base = this.slice * h * w;
    for (let i = 0; i < h * w; i++) {
      const g = Math.max(0, Math.min(255, Math.round(((data[base + i]! - lo) / LUNG_WINDOW.width) * 255)));
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = g;
      img.data[4 * i + 3] = 255;
    }
    const tmp = document.createElement("canvas");
    tmp.width = w;
    tmp.height = h;
    tmp.getContext("2d")!.putImageData(img, 0, 0);
    const ctx = this.ctCanvas.getContext("2d")!;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tmp, 0, 0, this.ctCanvas.width, this.ctCanvas.height);
  }

  /** Each contour pixel is a mask voxel with a 4-neighbour outside the mask, in this slice. */
  private drawContours(): void {
    const ctx = this.overlay.getContext("2d")!;
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    const [, h, w] = this.ct!.shape;
    const base = this.slice * h * w;
    const sx = this.scaleX, sy = this.scaleY;
    for (const { mask, rgb } of this.contours) {
      ctx.fillStyle = `rgb(${rgb.join(",")})`;
      const at = (y: number, x: number) => y >= 0 && y < h && x >= 0 && x < w && mask[base + y * w + x] !== 0;
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          if (!at(y, x)) continue;
          if (at(y - 1, x) && at(y + 1, x) && at(y, x - 1) && at(y, x + 1)) continue;
          ctx.fillRect(Math.floor(x * sx), Math.floor(y * sy), Math.max(1, Math.ceil(sx)), Math.max(1, Math.ceil(sy)));
        }
    }
  }
}

/** The axial slice where the mask has the most voxels (the middle one when it is empty). */
export function busiestSlice(mask: Uint8Array, shape: readonly [number, number, number]): number {
  const [d, h, w] = shape;
  let best = Math.floor(d / 2), bestCount = 0;
  for (let z = 0; z < d; z++) {
    let n = 0;
    for (let i = z * h * w; i < (z + 1) * h * w; i++) n += mask[i] !== 0 ? 1 : 0;
    if (n > bestCount) [best, bestCount] = [z, n];
  }
  return best;
}

import { describe, expect, it } from "vitest";
import { OVERLAY_COLOURS, overlayPngs, renderOverlays, tumourCentre } from "../../src/pipeline/overlay.ts";
import type { RgbImage } from "../../src/io/png.ts";
import { PulmoError } from "../../src/runtime/errors.ts";
import { decodePng } from "../io/png_reader.ts";

const shape = [10, 40, 40] as const;
const spacing = [4, 1, 1] as const;
const idx = (z: number, y: number, x: number) => (z * 40 + y) * 40 + x;

function box(z0: number, z1: number, y0: number, y1: number, x0: number, x1: number): Uint8Array {
  const m = new Uint8Array(10 * 40 * 40);
  for (let z = z0; z <= z1; z++) for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) m[idx(z, y, x)] = 1;
  return m;
}

function scene() {
  const ct = new Float32Array(10 * 40 * 40).fill(-600); // the lung window's level: grey 128
  ct[idx(5, 35, 35)] = 150; // window top: white
  ct[idx(5, 35, 36)] = -1350; // window bottom: black
  const reference = box(3, 6, 10, 19, 10, 19);
  const prediction = box(3, 6, 10, 19, 15, 24);
  return { ct: { data: ct, shape }, reference, prediction };
}

const px = (img: RgbImage, r: number, c: number) => [...img.data.subarray((r * img.width + c) * 3, (r * img.width + c) * 3 + 3)];
const grey = [128, 128, 128];

describe("overlays", () => {
  it("finds the centre of the largest component", () => {
    const s = scene();
    const both = s.reference.slice();
    both[idx(0, 0, 0)] = 1; // a one-voxel speck elsewhere
    expect(tumourCentre({ data: both, shape })).toEqual([5, 15, 15]);
    expect(tumourCentre({ data: new Uint8Array(16000), shape })).toBeNull();
  });

  it("draws reference and prediction boundaries in their colours on the lung-windowed axial slice", () => {
    const s = scene();
    const v = renderOverlays(s.ct, spacing, { reference: s.reference, prediction: s.prediction, zoom: 1, lineWidth: 1, labels: false });
    expect(v.centre).toEqual([5, 15, 15]);
    const a = v.axial;
    expect([a.width, a.height]).toEqual([40, 40]);
    expect(px(a, 10, 12)).toEqual([...OVERLAY_COLOURS.reference]); // reference top edge only
    expect(px(a, 15, 10)).toEqual([...OVERLAY_COLOURS.reference]); // reference left edge
    expect(px(a, 15, 19)).toEqual([...OVERLAY_COLOURS.reference]); // reference right edge, inside the prediction
    expect(px(a, 10, 17)).toEqual([...OVERLAY_COLOURS.both]); // both top edges
    expect(px(a, 15, 15)).toEqual([...OVERLAY_COLOURS.prediction]); // prediction left edge inside the reference
    expect(px(a, 15, 24)).toEqual([...OVERLAY_COLOURS.prediction]);
    expect(px(a, 15, 12)).toEqual(grey); // interiors are not filled
    expect(px(a, 15, 21)).toEqual(grey);
    expect(px(a, 30, 5)).toEqual(grey);
    expect(px(a, 35, 35)).toEqual([255, 255, 255]);
    expect(px(a, 35, 36)).toEqual([0, 0, 0]);
    let red = 0, green = 0;
    for (let p = 0; p < 1600; p++) {
      const c = px(a, Math.floor(p / 40), p % 40);
      if (c.join() === OVERLAY_COLOURS.prediction.join()) red++;
      if (c.join() === OVERLAY_COLOURS.reference.join()) green++;
    }
    expect(green).toBe(10 + 10 + 8 + 8 - 5 - 5); // the square's 36 boundary pixels, less 10 shared with the prediction's
    expect(red).toBe(36 - 10);
  });

  it("scales the slice axis to mm in coronal and sagittal views, head up", () => {
    const s = scene();
    const v = renderOverlays(s.ct, spacing, { reference: s.reference, zoom: 1, lineWidth: 1, labels: false });
    for (const img of [v.coronal, v.sagittal]) expect([img.width, img.height]).toEqual([40, 40]); // 10 slices × 4 mm
    // z = 6 (top of the box) is rows 12..15 once flipped; z = 3 rows 24..27
    const c = v.coronal;
    expect(px(c, 11, 12)).toEqual(grey);
    expect(px(c, 12, 12)).toEqual([...OVERLAY_COLOURS.reference]);
    for (let r = 13; r <= 26; r++) expect(px(c, r, 12)).toEqual(grey);
    expect(px(c, 27, 12)).toEqual([...OVERLAY_COLOURS.reference]);
    expect(px(c, 28, 12)).toEqual(grey);
    for (let r = 12; r <= 27; r++) expect(px(c, r, 10)).toEqual([...OVERLAY_COLOURS.reference]);
    const sg = v.sagittal;
    for (let r = 12; r <= 27; r++) expect(px(sg, r, 19)).toEqual([...OVERLAY_COLOURS.reference]); // y = 19, the back face
    // head down when slice 0 is the most superior
    const down = renderOverlays(s.ct, spacing, { reference: s.reference, zoom: 1, lineWidth: 1, labels: false, inferiorFirst: false });
    expect(px(down.coronal, 12, 12)).toEqual([...OVERLAY_COLOURS.reference]); // z = 3 → rows 12..15
    expect(px(down.coronal, 16, 12)).toEqual(grey);
  });

  it("encodes PNGs with a legend strip below the image", () => {
    const s = scene();
    const o = overlayPngs(s.ct, spacing, { reference: s.reference, prediction: s.prediction, zoom: 2 });
    for (const k of ["axial", "coronal", "sagittal"] as const) {
      const d = decodePng(o[k]);
      expect(d.width).toBe(80);
      expect(d.height).toBe(80 + 13);
      const img = { width: d.width, height: d.height, channels: 3 as const, data: d.pixels };
      expect(px(img, 80 + 6, 6)).toEqual([...OVERLAY_COLOURS.reference]); // first legend swatch
    }
  });

  it("rejects masks of another size, centres outside and bad windows", () => {
    const s = scene();
    expect(() => renderOverlays(s.ct, spacing, { reference: new Uint8Array(5) })).toThrow(/reference: 5 voxels/);
    expect(() => renderOverlays(s.ct, spacing, { centre: [10, 0, 0] })).toThrow(/centre must be a voxel/);
    expect(() => renderOverlays(s.ct, spacing, { window: { width: 0, level: 0 } })).toThrow(PulmoError);
    expect(() => renderOverlays(s.ct, [4, 0, 1], {})).toThrow(/spacing/);
  });
});

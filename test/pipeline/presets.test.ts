import { describe, expect, it } from "vitest";
import { PRESETS, RESNET_GREY_WINDOW, populationNormalization, presetFor, presetOptions } from "../../src/pipeline/presets.ts";
import { normalizeIntensity, postprocess, preprocess, windowStarts } from "../../src/pipeline/inference.ts";
import { MODELS } from "../../src/models/index.ts";
import type { Shape3 } from "../../src/pipeline/masks/index.ts";

const norm = (o: ReturnType<typeof presetOptions>, v: number[]) => Array.from(normalizeIntensity(v, o.preprocess!.normalization!));

describe("inference presets", () => {
  it("every preset names a registered model and a [d, h, w] window or the config's img_size", () => {
    for (const [name, p] of Object.entries(PRESETS)) {
      expect(p.model).toBe(name);
      expect(MODELS[name]).toBeTruthy();
      if (p.window.patch !== "config") expect(p.window.patch).toHaveLength(3);
    }
    expect(() => presetFor("nope")).toThrow(/no inference preset for model 'nope'/);
  });

  it("coretr: HU window [−1024, 3068] then min-max to [0, 1]; argmax over the 2-class softmax", () => {
    const o = presetOptions(presetFor("coretr"), { shape: [96, 96, 96] });
    expect(norm(o, [-2000, -1024, 1022, 3068, 5000])).toEqual([0, 0, 0.5, 1, 1]);
    expect(o.window.patch).toEqual([96, 96, 96]);
    expect(o.preprocess!.targetShape).toBeUndefined();
  });

  it("rdu: 512→256 in plane, 8-slice windows at stride 1 averaged (constant weights), threshold 0.7 and a 7×7 disk", () => {
    const shape: Shape3 = [20, 512, 512];
    const o = presetOptions(presetFor("rdu"), { shape });
    expect(o.preprocess!.targetShape).toEqual([20, 256, 256]);
    expect(o.window.gaussian).toBe(false);
    const starts = windowStarts([20, 256, 256], o.window.patch, o.window.overlap);
    expect(starts.map((s) => s[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(starts.every((s) => s[1] === 0 && s[2] === 0)).toBe(true);
    // 0.75 survives the 0.7 threshold (0.65 would survive 0.5 but not here); the disk of diameter 7 has 29 pixels
    const probs = new Float32Array(1 * 9 * 9);
    probs[4 * 9 + 4] = 0.75;
    probs[0] = 0.65;
    const m = postprocess(probs, 1, [1, 9, 9], o.postprocess);
    expect(m.data.reduce((a, b) => a + b, 0)).toBe(29);
    expect(m.data[0]).toBe(0);
  });

  it("resnet34_fpn and unet2d: population normalisation on the 4096→255 grey levels, 2D slice by slice", () => {
    for (const name of ["resnet34_fpn", "unet2d"]) {
      const p = presetFor(name);
      expect(() => presetOptions(p, { shape: [4, 512, 512] })).toThrow(/population's grey-level mean and SD.*--population/);
      const o = presetOptions(p, { shape: [4, 512, 512], population: { mean: 100, sd: 20 } });
      expect(o.window.dims).toBe(2);
      expect(o.window.patch).toEqual([1, 512, 512]);
      expect(windowStarts([4, 512, 512], o.window.patch, o.window.overlap)).toHaveLength(4);
      // grey = (HU + 1024)·255/4096: grey 100 ↔ HU 100·4096/255 − 1024 → 0; grey 120 → +1
      const hu = (g: number) => (g * 4096) / 255 - 1024;
      const v = norm(o, [hu(100), hu(120), hu(80), 5000]);
      expect(v[0]).toBeCloseTo(0, 5);
      expect(v[1]).toBeCloseTo(1, 5);
      expect(v[2]).toBeCloseTo(-1, 5);
      expect(v[3]).toBeCloseTo((255 * (RESNET_GREY_WINDOW[1] + 1024)) / 4096 / 20 - 5, 4); // clipped to the window
    }
    expect(() => populationNormalization(100, 0)).toThrow(/positive SD/);
  });

  it("ctv_unet: the CT and the iGTV mask as channels 0 and 1", () => {
    const p = presetFor("ctv_unet");
    const shape: Shape3 = [2, 3, 4];
    expect(() => presetOptions(p, { shape })).toThrow(/needs the igtv mask as input channel 1 .*--igtv/);
    const igtv = { data: Uint8Array.from({ length: 24 }, (_, i) => (i % 5 === 0 ? 1 : 0)), shape };
    const o = presetOptions(p, { shape, inputs: { igtv } });
    const pre = preprocess({ data: new Float32Array(24).fill(1022), shape }, o.preprocess);
    expect(pre.channels).toBe(2);
    expect(Array.from(pre.data.subarray(0, 24))).toEqual(new Array(24).fill(0.5));
    expect(Array.from(pre.data.subarray(24))).toEqual(Array.from(igtv.data));
  });

  it("unetr: the window is the config's img_size", () => {
    const p = presetFor("unetr");
    expect(presetOptions(p, { shape: [40, 40, 40], config: { img_size: [32, 32, 16] } }).window.patch).toEqual([32, 32, 16]);
    expect(() => presetOptions(p, { shape: [40, 40, 40], config: {} })).toThrow(/img_size/);
  });
});

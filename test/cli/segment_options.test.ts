import { describe, expect, it } from "vitest";
import { parseArgs } from "../../src/cli/args.ts";
import { applyOverrides, overridesFrom, segmentCommand } from "../../src/cli/segment.ts";
import { presetFor, presetOptions } from "../../src/pipeline/presets.ts";

const parse = (...argv: string[]) => overridesFrom(parseArgs(segmentCommand, ["ct.nii", ...argv]));

describe("segment options", () => {
  it("each flag overrides its preset field and nothing else", () => {
    const base = presetOptions(presetFor("rdu"), { shape: [20, 512, 512] });
    expect(applyOverrides(base, parse())).toEqual(base);
    const o = applyOverrides(base, parse("--patch", "4,64,64", "--overlap", "0.25", "--batch", "3", "--mirror", "--gaussian", "--threshold", "0.6", "--keep-largest", "--min-volume-mm3", "50", "--fill-holes"));
    expect(o.window).toEqual({ ...base.window, patch: [4, 64, 64], overlap: 0.25, batch: 3, mirror: true, gaussian: true });
    expect(o.postprocess).toEqual({ ...base.postprocess, threshold: 0.6, mode: "threshold", keepLargest: true, minVolumeMm3: 50, fillHoles: true });
    expect(o.postprocess!.dilateDiameter).toBe(7); // the DenseUNet's dilation stays
    expect(o.preprocess).toEqual(base.preprocess);
    expect(applyOverrides(base, parse("--constant")).window.gaussian).toBe(false);
    expect(applyOverrides(base, parse("--hu-window", "-1000,500")).preprocess).toEqual({ ...base.preprocess, normalization: { kind: "window-minmax", window: [-1000, 500] } });
    expect(base.window.patch).toEqual([8, 256, 256]); // not modified in place
  });

  it("mistakes are usage errors naming the flag", () => {
    expect(() => parse("--gaussian", "--constant")).toThrow(/--gaussian and --constant exclude each other/);
    expect(() => parse("--patch", "4,0,4")).toThrow(/--patch takes D,H,W/);
    expect(() => parse("--hu-window", "500,-1000")).toThrow(/--hu-window takes LO,HI in HU with LO < HI/);
    expect(() => parse("--threshold", "1.5")).toThrow(/--threshold must be in \[0, 1\]/);
    expect(() => parse("--min-volume-mm3", "-2")).toThrow(/--min-volume-mm3 must be in \[0, ∞\]/);
  });
});

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readBundleSpec } from "../../src/pipeline/bundle.ts";
import { readSafetensors } from "../../weights/safetensors.ts";
import { listing, pulmo, useTmp, writeVolume } from "./helpers.ts";

const TINY = JSON.stringify({ enc: [[4, 6], [6, 10], [10, 16]], dec: [[10, 8], [6, 6]] });
const SHAPE: [number, number, number] = [8, 12, 12];
const N = 8 * 12 * 12;

function caseData(shift: number): { ct: Float32Array; gtv: Uint8Array } {
  const ct = new Float32Array(N).fill(-850), gtv = new Uint8Array(N);
  for (let z = 2; z < 6; z++)
    for (let y = 3 + shift; y < 8 + shift; y++)
      for (let x = 3; x < 8; x++) {
        ct[(z * 12 + y) * 12 + x] = 30;
        gtv[(z * 12 + y) * 12 + x] = 1;
      }
  return { ct, gtv };
}

describe("pulmo train", () => {
  const tmp = useTmp("train");

  const makeCases = (dir: string, n: number) => {
    for (let k = 0; k < n; k++) {
      const c = join(dir, `case${k}`);
      mkdirSync(c, { recursive: true });
      const { ct, gtv } = caseData(k % 3);
      writeVolume(join(c, "ct.nii.gz"), ct, SHAPE, [2.5, 0.9, 0.9], "int16");
      writeVolume(join(c, "gtv.nii.gz"), gtv, SHAPE);
    }
  };
  const base = (cases: string, out: string, ...extra: string[]) => [
    "train", "--model", "unet3d", "--config", TINY, "--cases", cases, "--image-file", "ct.nii.gz", "--label-file", "gtv.nii.gz",
    "--patch", "8,8,8", "--batch", "2", "--crops", "2", "--out", out, ...extra,
  ];

  it("trains, keeps last/best checkpoints and a bundle, and resumes from last.safetensors", async () => {
    const cases = join(tmp(), "cases"), out = join(tmp(), "run");
    makeCases(cases, 3);
    let r = await pulmo(...base(cases, out, "--epochs", "2"));
    expect(r.err).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(listing(out)).toEqual(["best.safetensors", "last.safetensors", "model.safetensors"]);
    expect(r.out).toMatch(/2 epoch\(s\) in .* best validation Dice/);
    const spec = readBundleSpec(new Uint8Array(readFileSync(join(out, "model.safetensors"))));
    expect(spec.model).toBe("unet3d");
    expect(spec.window.patch).toEqual([8, 8, 8]);
    expect(spec.training!.epochs).toBe(2);
    expect(spec.preprocess.normalization).toEqual({ kind: "window-minmax", window: [-1024, 3068] });
    expect(readSafetensors(new Uint8Array(readFileSync(join(out, "last.safetensors")))).metadata.epoch).toBe("1");

    r = await pulmo(...base(cases, out, "--epochs", "3"));
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/resuming from .*last.safetensors: epoch 2 done/);
    expect(r.out).toMatch(/^1 epoch\(s\)/m);
    expect(readSafetensors(new Uint8Array(readFileSync(join(out, "last.safetensors")))).metadata.epoch).toBe("2");

    r = await pulmo(...base(cases, out, "--epochs", "3"));
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/already trained for 3 epochs/);

    // another config cannot resume from this run
    r = await pulmo("train", "--model", "unet3d", "--config", JSON.stringify({ enc: [[4, 6], [6, 12], [12, 16]], dec: [[12, 8], [6, 6]] }), "--cases", cases, "--image-file", "ct.nii.gz", "--label-file", "gtv.nii.gz", "--patch", "8,8,8", "--epochs", "4", "--out", out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot resume from .*last.safetensors.*--restart/);
  });

  it("bad cases: a label on another grid, a missing label file, usage mistakes", async () => {
    const cases = join(tmp(), "bad");
    makeCases(cases, 2);
    writeVolume(join(cases, "case1", "gtv.nii.gz"), new Uint8Array(7 * 12 * 12), [7, 12, 12]);
    let r = await pulmo(...base(cases, join(tmp(), "o1"), "--epochs", "1"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/label .*case1.*gtv.nii.gz has shape \[7, 12, 12\] but the image .* \[8, 12, 12\]/);
    expect(existsSync(join(tmp(), "o1"))).toBe(false);
    r = await pulmo(...base(cases, join(tmp(), "o2"), "--epochs", "1").map((w) => (w === "gtv.nii.gz" ? "nope.nii.gz" : w)));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/label of case case0 .*nope.nii.gz: no such file/);
    r = await pulmo("train", "--model", "unet3d", "--cases", cases, "--patch", "8,8,8", "--out", "x");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--cases needs --image-file and --label-file/);
    r = await pulmo("train", "--model", "resnet34_fpn", "--cases", cases, "--image-file", "a", "--label-file", "b", "--patch", "8,8,8", "--out", "x");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/2D model: --patch must be 1,H,W/);
  });
});

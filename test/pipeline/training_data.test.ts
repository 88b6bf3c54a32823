import { describe, expect, it } from "vitest";
import { cropSample, foregroundIndices, randomCrops, validationCrops, type TrainingVolume } from "../../src/pipeline/training_data.ts";

const SHAPE = [6, 10, 12] as const;
const N = 6 * 10 * 12;
function volume(): TrainingVolume {
  const input = Float32Array.from({ length: 2 * N }, (_, i) => i); // two channels, value = flat index
  const label = new Uint8Array(N);
  label[(3 * 10 + 7) * 12 + 9] = 1; // one foreground voxel at (3, 7, 9)
  return { input, channels: 2, label, shape: SHAPE };
}

describe("training crops", () => {
  it("cropSample copies every channel and the label, zero-padding outside the volume", () => {
    const v = volume();
    const s = cropSample(v, [-1, 8, 10], [2, 3, 3]);
    expect(s.input.shape).toEqual([1, 2, 2, 3, 3]);
    expect(s.target.shape).toEqual([1, 1, 2, 3, 3]);
    // z = -1 is outside: zeros; z = 0, y = 8, x = 10 is inside
    expect(Array.from(s.input.data.subarray(0, 9))).toEqual(new Array(9).fill(0));
    expect(s.input.data[9]).toBe((0 * 10 + 8) * 12 + 10);
    expect(s.input.data[18 + 9]).toBe(N + (0 * 10 + 8) * 12 + 10);
    expect(s.input.data[9 + 2]).toBe(0); // x = 12 is outside
  });

  it("foreground crops contain the foreground; crops depend only on (seed, epoch)", () => {
    const v = volume();
    expect(Array.from(foregroundIndices(v.label))).toEqual([(3 * 10 + 7) * 12 + 9]);
    const crops = randomCrops([v], { patch: [4, 4, 4], perVolume: 3, foregroundFraction: 1 / 3, seed: 5 });
    const e0 = crops(0);
    expect(e0).toHaveLength(3);
    expect(e0[0]!.target.data.reduce((a, b) => a + b, 0)).toBe(1); // the centred crop holds the voxel
    expect(crops(0)).toEqual(e0);
    expect(crops(1)).not.toEqual(e0);
    const all = randomCrops([volume()], { patch: [4, 4, 4], perVolume: 4, foregroundFraction: 1, seed: 5 })(3);
    expect(all.every((s) => s.target.data.reduce((a, b) => a + b, 0) === 1)).toBe(true);
    expect(() => randomCrops([v], { patch: [4, 4], perVolume: 1 } as never)).toThrow(/patch must be \[d, h, w\]/);
  });

  it("validation crops are centred on the foreground and fixed", () => {
    const [s] = validationCrops([volume()], [2, 4, 4]);
    expect(s!.target.data.reduce((a, b) => a + b, 0)).toBe(1);
    expect(validationCrops([volume()], [2, 4, 4])).toEqual([s]);
  });
});

// Child process for test/reliability/atomic.test.ts: rewrites a large checkpoint, a NIfTI mask and
// an RTSTRUCT in DIR with writeFileAtomic, generation after generation, printing "<kind> <gen>"
// after each completed write, until it is killed.
import { join } from "node:path";
import { writeFileAtomic } from "../../src/platform/files.ts";
import { writeSafetensors } from "../../weights/safetensors.ts";
import { writeNifti } from "../../src/io/nifti.ts";
import { readCtSeries, writeCtSeries, writeRtstructRois } from "../../src/io/dicom/index.ts";

const dir = process.argv[2]!;
const CHECKPOINT_FLOATS = 12 * 1024 * 1024; // 48 MiB: long enough to be killed mid-write
const weights = new Float32Array(CHECKPOINT_FLOATS);
const shape: [number, number, number] = [48, 64, 64];
const series = readCtSeries(writeCtSeries(new Float32Array(shape[0] * shape[1] * shape[2]), shape, { origin: [0, 0, 0], rowDirection: [1, 0, 0], columnDirection: [0, 1, 0], spacing: [2, 1, 1] }, { seed: "atomic" }));
const mask = new Uint8Array(shape[0] * shape[1] * shape[2]);

for (let gen = 1; ; gen++) {
  weights.fill(gen);
  writeFileAtomic(join(dir, "model.safetensors"), writeSafetensors({ w: { shape: [CHECKPOINT_FLOATS], data: weights } }, { generation: String(gen) }));
  console.log(`checkpoint ${gen}`);
  // a ball whose radius encodes the generation
  const r = 4 + (gen % 16);
  for (let z = 0; z < shape[0]; z++)
    for (let y = 0; y < shape[1]; y++)
      for (let x = 0; x < shape[2]; x++) mask[(z * shape[1] + y) * shape[2] + x] = (z - 24) ** 2 + (y - 32) ** 2 + (x - 32) ** 2 < r * r ? 1 : 0;
  writeFileAtomic(join(dir, "mask.nii.gz"), writeNifti({ data: Float32Array.from(mask), shape, spacing: [2, 1, 1] }, { datatype: "uint8", gzip: true }));
  console.log(`mask ${gen}`);
  writeFileAtomic(join(dir, "rtstruct.dcm"), writeRtstructRois([{ name: `GTV gen ${gen}`, mask }], series, { seed: `gen ${gen}` }));
  console.log(`rtstruct ${gen}`);
}

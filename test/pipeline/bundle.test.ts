import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { buildModel, nn, Tensor, noGrad, tidy } from "../../src/node.ts";
import { BUNDLE_FORMAT, bundleSegmentOptions, ModelBundleError, readBundleSpec, readModelBundle, writeModelBundle, type ModelBundleSpec } from "../../src/pipeline/bundle.ts";
import { readSafetensors, writeSafetensors } from "../../weights/safetensors.ts";

const TINY = { enc: [[4, 6], [6, 10], [10, 16]], dec: [[10, 8], [6, 6]] };

function spec(config: Record<string, any>): ModelBundleSpec {
  return {
    model: "unet3d",
    config,
    preprocess: { normalization: { kind: "window-minmax", window: [-1000, 400] }, targetSpacing: [3, 2.4, 2.4] },
    window: { patch: [16, 32, 32], overlap: 0.25, batch: 2, gaussian: true, mirror: false },
    postprocess: { minVolumeCc: 0.05, fillHoles: true },
    description: "test bundle",
    training: { script: "npx tsx scripts/train_demo.ts", seconds: 12.5, samples: 40, epochs: 3, validationDice: 0.91 },
  };
}

describe("model bundles", () => {
  const dev = useDevice();

  it("round-trips the weights and the spec: the loaded network gives the same output", async () => {
    nn.setInitSeed(7);
    const net = buildModel(dev(), "unet3d", TINY);
    net.eval();
    const s = spec(net.config);
    const bytes = await writeModelBundle(net, s);
    const file = readSafetensors(bytes);
    expect(JSON.parse(file.metadata.pulmo!).format).toBe(BUNDLE_FORMAT);
    expect(readBundleSpec(bytes)).toEqual(JSON.parse(JSON.stringify(s)));

    nn.setInitSeed(99); // different initial weights, replaced by the bundle's
    const { net: loaded, spec: got } = readModelBundle(dev(), bytes);
    expect(got.training?.validationDice).toBe(0.91);
    expect(loaded.training).toBe(false);
    const x = Float32Array.from({ length: 8 * 8 * 16 }, (_, i) => Math.sin(i * 0.37));
    const run = async (m: typeof net) => {
      const out = noGrad(() => tidy(dev(), () => m.forward(Tensor.from(dev(), x, [1, 1, 8, 8, 16]))));
      const v = await out.readFloat();
      out.dispose();
      return v;
    };
    expect(await run(loaded)).toEqual(await run(net));
    const opts = bundleSegmentOptions(got);
    expect(opts.window.patch).toEqual([16, 32, 32]);
    expect(opts.postprocess).toEqual({ minVolumeCc: 0.05, fillHoles: true });
    net.dispose();
    loaded.dispose();
  });

  it("refuses files that are not bundles, naming the problem", async () => {
    expect(() => readModelBundle(dev(), new TextEncoder().encode("hello, not weights"))).toThrow(/not a model bundle: not a safetensors file/);
    const plain = writeSafetensors({ w: { shape: [2], data: [1, 2] } });
    expect(() => readModelBundle(dev(), plain)).toThrow(/no 'pulmo' entry/);
    const notJson = writeSafetensors({ w: { shape: [2], data: [1, 2] } }, { pulmo: "{oops" });
    expect(() => readModelBundle(dev(), notJson)).toThrow(/'pulmo' metadata is not JSON/);
    const otherFormat = writeSafetensors({ w: { shape: [2], data: [1, 2] } }, { pulmo: JSON.stringify({ format: "x/9" }) });
    expect(() => readModelBundle(dev(), otherFormat)).toThrow(/format "x\/9"/);
    const noPatch = writeSafetensors({ w: { shape: [2], data: [1, 2] } }, { pulmo: JSON.stringify({ format: BUNDLE_FORMAT, ...spec({}), window: {} }) });
    expect(() => readModelBundle(dev(), noPatch)).toThrow(/window.patch/);
    const unknown = writeSafetensors({ w: { shape: [2], data: [1, 2] } }, { pulmo: JSON.stringify({ format: BUNDLE_FORMAT, ...spec({}), model: "nope" }) });
    expect(() => readModelBundle(dev(), unknown)).toThrow(/cannot build model 'nope'.*unknown model/);
  });

  it("refuses a bundle whose tensors do not fit its model (the wrong model's weights)", async () => {
    nn.setInitSeed(7);
    const net = buildModel(dev(), "unet3d", TINY);
    const bytes = await writeModelBundle(net, spec(net.config));
    const file = readSafetensors(bytes);
    // the same weights relabelled as a wider network
    const wider = { ...net.config, enc: [[4, 8], [6, 10], [10, 16]] };
    const meta = { pulmo: JSON.stringify({ format: BUNDLE_FORMAT, ...spec(wider) }) };
    const tensors = Object.fromEntries(file.names.map((n) => [n, { shape: file.tensors.get(n)!.shape, data: file.float32(n) }]));
    const err = (() => {
      try {
        readModelBundle(dev(), writeSafetensors(tensors, meta));
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(ModelBundleError);
    expect(err!.message).toMatch(/tensors do not match model 'unet3d'.*enc\.0\.\S+: expected/);
    // a missing tensor
    const first = file.names[0]!;
    const { [first]: _dropped, ...rest } = tensors;
    expect(() => readModelBundle(dev(), writeSafetensors(rest, { pulmo: JSON.stringify({ format: BUNDLE_FORMAT, ...spec(net.config) }) }))).toThrow(new RegExp(`missing ${first.replace(/\./g, "\\.")}`));
    // writing with a config that is not the network's
    await expect(writeModelBundle(net, spec(wider))).rejects.toThrow(/is not the network's/);
    net.dispose();
  });
});

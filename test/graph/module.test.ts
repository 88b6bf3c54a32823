import { describe, expect, it } from "vitest";
import { useDevice } from "../helpers.ts";
import { Module, nn, noGrad, relu, sizeClass, Tensor, type Device, type HostArray } from "../../src/node.ts";

class Conv extends Module {
  constructor(d: Device, cin: number, cout: number) {
    super(d);
    this.param("weight", [cout, cin, 3, 3, 3]);
    this.param("bias", [cout]);
  }
}
class BN extends Module {
  constructor(d: Device, c: number) {
    super(d);
    this.param("weight", [c]);
    this.param("bias", [c]);
    this.buffer("running_mean", [c]);
    this.buffer("running_var", [c], 1);
  }
}
class Block extends Module {
  constructor(d: Device) {
    super(d);
    this.child("conv", new Conv(d, 1, 2));
    this.child("bn", new BN(d, 2));
  }
}
class Net extends Module {
  constructor(d: Device) {
    super(d);
    this.child("enc", new Block(d));
    this.child("head", new Conv(d, 2, 1));
  }
}

const host = (shape: number[], v = 0.5): HostArray => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v) });

describe("Module", () => {
  const dev = useDevice();
  it("names and orders tensors as PyTorch's state_dict", () => {
    const net = new Net(dev());
    expect([...net.stateDict().keys()]).toEqual([
      "enc.conv.weight", "enc.conv.bias", "enc.bn.weight", "enc.bn.bias", "enc.bn.running_mean", "enc.bn.running_var", "head.weight", "head.bias",
    ]);
    expect([...net.namedParameters()].map(([k]) => k)).not.toContain("enc.bn.running_mean");
    expect(net.parameterCount()).toBe(2 * 27 + 2 + 2 + 2 + 2 * 27 + 1);
    net.dispose();
  });
  it("strict loading names every missing, unexpected and mis-shaped tensor", () => {
    const net = new Net(dev());
    const src = new Map(Array.from(net.stateDict(), ([k, t]) => [k, host([...t.shape])]));
    src.delete("head.bias");
    src.set("extra.weight", host([3]));
    src.set("enc.conv.bias", host([3]));
    expect(() => net.loadStateDict(src)).toThrow(/mis-shaped enc\.conv\.bias: expected \[2\], got \[3\].*missing head\.bias \[1\].*unexpected extra\.weight \[3\]/);
    src.set("enc.conv.bias", host([2]));
    const report = net.loadStateDict(src, { strict: false });
    expect(report).toEqual({ missing: ["head.bias"], unexpected: ["extra.weight"] });
    net.dispose();
  });
  it("loads values, rejects NaN, freezes by prefix and switches train/eval", async () => {
    const net = new Net(dev());
    const src = new Map(Array.from(net.stateDict(), ([k, t]) => [k, host([...t.shape], 0.25)]));
    net.loadStateDict(src);
    expect((await net.stateDict().get("head.weight")!.read())[0]).toBe(0.25);
    src.get("head.bias")!.data[0] = NaN;
    expect(() => net.loadStateDict(src)).toThrow(/head\.bias has a non-finite value at index 0/);
    net.freeze("enc");
    expect([...net.namedParameters()].filter(([, t]) => t.requiresGrad).map(([k]) => k)).toEqual(["head.weight", "head.bias"]);
    net.unfreeze();
    expect(net.parameters().every((t) => t.requiresGrad)).toBe(true);
    expect(() => net.freeze("decoder")).toThrow(/no parameter matches decoder/);
    net.eval();
    expect([...net.namedChildren()].every(([, m]) => !m.training)).toBe(true);
    net.dispose();
  });
});

describe("Module safetensors", () => {
  const dev = useDevice();
  it("round-trips the state dict through safetensors and refuses a mis-shaped file", async () => {
    const a = new Net(dev());
    const src = new Map(Array.from(a.stateDict(), ([k, t], i) => [k, host([...t.shape], i / 10)]));
    a.loadStateDict(src);
    const bytes = await a.toSafetensors({ note: "test" });
    const b = new Net(dev());
    expect(b.loadSafetensors(bytes)).toEqual({ missing: [], unexpected: [] });
    for (const [k, t] of b.stateDict()) expect([...(await t.read())]).toEqual([...(await a.stateDict().get(k)!.read())]);
    const c = new Block(dev());
    expect(() => c.loadSafetensors(bytes)).toThrow(/unexpected enc\.conv\.weight/);
    a.dispose(); b.dispose(); c.dispose();
  });
});

describe("Module inference memory", () => {
  const dev = useDevice();
  class ConvBnRelu extends Module {
    conv: nn.Conv3d;
    bn: nn.BatchNorm;
    constructor(d: Device) {
      super(d);
      this.conv = this.child("conv", new nn.Conv3d(d, 2, 2, 3, { padding: 1 }));
      this.bn = this.child("bn", new nn.BatchNorm(d, 2));
    }
    forward(x: Tensor): Tensor {
      return relu(this.bn.forward(this.conv.forward(x)));
    }
  }
  class Outer extends Module {
    block: ConvBnRelu;
    constructor(d: Device) {
      super(d);
      this.block = this.child("block", new ConvBnRelu(d));
    }
    forward(x: Tensor): Tensor {
      return this.block.forward(x);
    }
  }
  it("frees a child's temporaries when it returns under noGrad, keeps them for the tape otherwise", () => {
    const d = dev();
    const net = new Outer(d).eval();
    const x = Tensor.zeros(d, [1, 2, 8, 8, 8]);
    const one = sizeClass(x.bytes);
    const before = d.pool.inUseBytes;
    const y = noGrad(() => net.forward(x));
    expect(d.pool.inUseBytes - before).toBe(one); // conv and bn outputs are already back in the pool
    y.dispose();
    x.requiresGrad = true;
    const z = net.forward(x);
    expect(d.pool.inUseBytes - before).toBeGreaterThanOrEqual(3 * one); // conv, bn and relu outputs (+ saved stats)
    z.dispose();
    net.dispose();
  });
});

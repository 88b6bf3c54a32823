import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { useDevice } from "../helpers.ts";
import { Tensor, tidy, relu, leakyRelu, backward, PulmoError, sizeClass } from "../../src/node.ts";

const range = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));

describe("buffer pool", () => {
  const dev = useDevice();
  it("size classes waste at most 25 %", () => {
    for (const b of [1, 255, 256, 257, 1000, 4097, 1e6, 3e7]) {
      const c = sizeClass(b);
      expect(c).toBeGreaterThanOrEqual(b);
      if (b > 256) expect(c / b).toBeLessThanOrEqual(1.25);
    }
  });
  it("reuses a released buffer and never leaks its old values", async () => {
    const d = dev();
    const garbage = Tensor.from(d, range(1000, () => 7), [1000]);
    const buffer = garbage.buffer;
    garbage.dispose();
    const before = d.pool.buffersCreated;
    const z = Tensor.zeros(d, [900]);
    expect(z.buffer).toBe(buffer); // same size class: reused
    expect(d.pool.buffersCreated).toBe(before);
    expect([...(await z.read())].every((v) => v === 0)).toBe(true);
    z.dispose();
    const x = Tensor.from(d, range(950, (i) => i - 500), [950]);
    const y = relu(x); // output buffer comes from the pool holding 7s
    const out = await y.read();
    expect(out.length).toBe(950);
    for (let i = 0; i < 950; i++) expect(out[i]).toBe(Math.max(i - 500, 0));
    x.dispose();
    y.dispose();
  });
  it("tidy() returns intermediates to the pool", () => {
    const d = dev();
    const x = Tensor.from(d, range(64, (i) => i - 32), [64]);
    const inUse = d.pool.inUseBytes;
    const y = tidy(d, () => relu(leakyRelu(relu(x), 0.1)));
    expect(d.pool.inUseBytes).toBe(inUse + 256);
    y.dispose();
    x.dispose();
  });
});

describe("pipelines and batching", () => {
  const dev = useDevice();
  it("one pipeline serves every shape; many dispatches share one submit", async () => {
    const d = dev();
    // relu has two entries (vec4 bulk, scalar tail): warm both, then no shape may add a pipeline
    for (const n of [2, 130]) relu(Tensor.from(d, range(n, (i) => i - 1), [n])).dispose();
    const pipelines = d.pipelines.size;
    await d.flush();
    const submits = d.stats.submits;
    const outs = [3, 17, 64, 65, 1000].map((n) => relu(Tensor.from(d, range(n, (i) => i), [n])));
    expect(d.pipelines.size).toBe(pipelines);
    await d.flush();
    expect(d.stats.submits - submits).toBe(1);
    expect((await outs[4]!.read())[999]).toBe(999);
  });
});

describe("limits", () => {
  const small = useDevice({ limits: { maxWorkgroupsPerDim: 3, maxBindingBytes: 1024 } });
  it("splits a 1D launch over y when it exceeds the per-dimension workgroup limit", async () => {
    const d = small();
    const n = 64 * 3 * 2 + 5; // 8 workgroups of 64 > 3 per dimension (and over the binding limit)
    const x = Tensor.from(d, range(n, (i) => (i % 2 ? -i : i)), [n]);
    const out = await relu(x).read();
    for (let i = 0; i < n; i++) expect(out[i]).toBe(i % 2 ? 0 : i);
  });
  it("chunks a tensor larger than one storage binding, forward and backward", async () => {
    const d = small();
    const n = 1000; // 4000 bytes over a 1024-byte binding limit
    const x = Tensor.from(d, range(n, (i) => i - 400), [n]);
    x.requiresGrad = true;
    const y = leakyRelu(x, 0.5);
    backward([y], [Tensor.from(d, range(n, () => 2), [n])]);
    const [out, g] = [await y.read(), await x.grad!.read()];
    for (let i = 0; i < n; i++) {
      expect(out[i]).toBe(i >= 400 ? i - 400 : 0.5 * (i - 400));
      expect(g[i]).toBe(i > 400 ? 2 : 1);
    }
  });
  it("a kernel that cannot split names the op and the binding", () => {
    const d = small();
    const big = Tensor.zeros(d, [1000]);
    expect(() =>
      d.dispatch({ kernel: "elementwise/add", bindings: { a: big, b: big, y: big }, uniforms: { n: 1000 }, workgroups: 1, label: "add([1000])" }),
    ).toThrow(/add\(\[1000\]\).*'a' is 4000 bytes, over the 1024-byte storage binding limit/);
  });
});

describe("errors surface as PulmoError naming the op", () => {
  const dev = useDevice();
  it("GPU validation error (aliased writable binding) is raised at the next read", async () => {
    const d = dev();
    const t = Tensor.from(d, [1, 2, 3, 4], [4]);
    d.dispatch({ kernel: "elementwise/add", bindings: { a: t, b: t, y: t }, uniforms: { n: 4 }, workgroups: 1, label: "add([4], [4]) in place" });
    await expect(d.flush()).rejects.toThrow(PulmoError);
    // the device stays usable afterwards
    expect([...(await relu(Tensor.from(d, [-1, 1], [2])).read())]).toEqual([0, 1]);
  });
  it("an allocation over maxBufferSize is refused with the shape", () => {
    const d = dev();
    expect(() => Tensor.empty(d, [d.limits.maxBufferSize])).toThrow(/maxBufferSize/);
  });
  it("unknown uniform or missing binding is reported", () => {
    const d = dev();
    const t = Tensor.zeros(d, [4]);
    expect(() => d.dispatch({ kernel: "elementwise/fill", bindings: { y: t }, uniforms: { n: 4 }, workgroups: 1, label: "fill" })).toThrow(/needs uniform 'value'/);
    expect(() => d.dispatch({ kernel: "elementwise/fill", bindings: {}, uniforms: { n: 4, value: 1 }, workgroups: 1, label: "fill" })).toThrow(/needs a buffer for 'y'/);
    expect(() => d.dispatch({ kernel: "nope/none", bindings: {}, workgroups: 1, label: "x" })).toThrow(/kernels\/nope\/none.wgsl not found/);
  });
  it("bad shapes are rejected before any GPU work", () => {
    const d = dev();
    expect(() => Tensor.from(d, [1, 2, 3], [2, 2])).toThrow(/3 elements, shape \[2, 2\] needs 4/);
    expect(() => Tensor.empty(d, [2, -1])).toThrow(/invalid shape/);
    const t = Tensor.zeros(d, [6]);
    expect(() => t.reshape([4, 2])).toThrow(/cannot reshape \[6\]/);
    t.dispose();
    expect(() => relu(t)).toThrow(/disposed/);
  });
});

describe("no adapter", () => {
  it("fails fast with one clear message when the Vulkan driver is missing", () => {
    const root = join(import.meta.dirname, "..", "..");
    const started = Date.now();
    const r = spawnSync(process.execPath, [join(root, "bin", "pulmo.js"), "check-golden", join(root, "test", "golden", "ops")], {
      env: { ...process.env, VK_ICD_FILENAMES: "/nonexistent/icd.json" },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/No WebGPU adapter found.*npm run setup/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});

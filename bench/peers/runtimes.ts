// The runtimes a user would otherwise pick, in this process and on this adapter:
// onnxruntime-web's WebGPU execution provider and tfjs's WebGPU backend (both handed the same
// `webgpu`-package GPU object as navigator.gpu that our device uses), and onnxruntime-node's CPU
// provider. Each is timed like our kernels: median of `reps` after one warm-up, GPU completion
// included (the peer's queue.onSubmittedWorkDone()), inputs already resident on the device.
import fs from "node:fs";
import { create, globals } from "webgpu";
import { encodeModel, type OnnxGraph } from "./onnx.ts";

export type Feeds = Record<string, { data: Float32Array; shape: number[] }>;

/** One op as an ONNX graph (forward only: onnxruntime has no training on WebGPU or in Node). */
export interface OnnxCase { graph: OnnxGraph; feeds: Feeds }

/** One op in tfjs (channels-last where tfjs requires it); `grads` names the inputs to
 * differentiate for the backward timing (tf.grads, like our backward()). */
export interface TfCase { inputs: Record<string, { data: Float32Array; shape: number[] }>; fwd: (t: Record<string, any>) => any; grads?: string[] }

export interface PeerTime { ms?: number; error?: string }

/** Creates the one GPU object every runtime here shares and installs it as navigator.gpu. */
export function installNavigatorGpu(): GPU {
  Object.assign(globalThis, globals);
  const gpu = create([]) as GPU;
  Object.defineProperty(globalThis, "navigator", { value: { gpu, userAgent: "node", language: "en", hardwareConcurrency: 2 }, configurable: true, writable: true });
  // onnxruntime-web's wasm heap is a SharedArrayBuffer; Dawn's Node binding rejects views of
  // one in writeBuffer ("Invalid argument"), so such uploads go through a private copy.
  const proto = (globalThis as any).GPUQueue.prototype;
  const writeBuffer = proto.writeBuffer;
  proto.writeBuffer = function (buf: GPUBuffer, off: number, data: any, dataOff = 0, size?: number) {
    if (data?.buffer instanceof SharedArrayBuffer) {
      const n = size ?? data.length - dataOff;
      return writeBuffer.call(this, buf, off, data.slice(dataOff, dataOff + n), 0, n);
    }
    return writeBuffer.call(this, buf, off, data, dataOff, size);
  };
  return gpu;
}

const errText = (e: unknown) => String((e as Error)?.message ?? e).split("\n")[0]!.slice(0, 300);

async function medianMs(run: () => Promise<void>, reps: number): Promise<number> {
  await run();
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

/** Runs `fn` with console output captured; returns its result and the captured lines. */
async function capturing<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const c = console as any;
  const saved = ["log", "info", "warn", "error", "debug"].map((k) => [k, c[k]] as const);
  for (const [k] of saved) c[k] = (...a: unknown[]) => lines.push(a.map(String).join(" "));
  // onnxruntime-web's Emscripten module prints with fs.writeSync(1 or 2, …).
  const writeSync = fs.writeSync;
  (fs as any).writeSync = (fd: number, chunk: unknown, ...rest: unknown[]) => {
    if (fd !== 1 && fd !== 2) return (writeSync as any)(fd, chunk, ...rest);
    lines.push(...String(chunk).split("\n").filter(Boolean));
    return String(chunk).length;
  };
  try {
    return { value: await fn(), lines };
  } finally {
    for (const [k, f] of saved) c[k] = f;
    (fs as any).writeSync = writeSync;
  }
}

/** `p`, or a rejection naming `what` after `ms` (a peer that stops answering must not stall the bench). */
function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const deadline = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms); });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

export class OrtWebPeer {
  readonly name = "onnxruntime-web webgpu";
  /** set once a call timed out: the runtime's state is unknown after that, so it is not used again */
  private failed: string | null = null;
  private constructor(private ort: any) {}
  static async start(): Promise<OrtWebPeer> {
    const ort = await import("onnxruntime-web/webgpu");
    ort.env.logLevel = "warning";
    return new OrtWebPeer(ort);
  }
  version(): string { return this.ort.env.versions?.web ?? "?"; }

  /** One tiny session run: onnxruntime-web's first run in a process waits ~2.5 min here (measured;
   * later sessions start in about a second), so it is taken before any timed op. */
  async warmUp(): Promise<number> {
    const t0 = performance.now();
    const shape = [64];
    const r = await this.time({ graph: { nodes: [{ op: "Relu", inputs: ["x"], outputs: ["y"] }], inputs: [{ name: "x", shape }], outputs: [{ name: "y", shape }] }, feeds: { x: { data: new Float32Array(64), shape } } }, 1, 900_000);
    if (r.error) throw new Error(`warm-up failed: ${r.error}`);
    return (performance.now() - t0) / 1000;
  }

  /** Median ms of one run plus the EP placement lines ORT logged while creating the session. */
  async time(c: OnnxCase, reps: number, deadlineMs = 300_000): Promise<PeerTime & { placement?: string[] }> {
    if (this.failed) return { error: `not run: an earlier call failed (${this.failed})` };
    const r = await withDeadline(this.timeUnbounded(c, reps), deadlineMs, "onnxruntime-web").catch((e) => ({ error: errText(e) }));
    if (r.error?.includes("no answer within")) this.failed = r.error;
    return r;
  }

  private async timeUnbounded(c: OnnxCase, reps: number): Promise<PeerTime & { placement?: string[] }> {
    const ort = this.ort;
    let session: any;
    try {
      const bytes = encodeModel(c.graph);
      // A verbose session only for the placement log, then a quiet one for timing.
      const created = await capturing<any>(() => ort.InferenceSession.create(bytes, { executionProviders: ["webgpu"], logSeverityLevel: 0, logVerbosityLevel: 0 }));
      await created.value.release();
      const placement = created.lines.filter((l) => /placed on|ExecutionProvider\]\. Number of nodes/.test(l)).map((l) => l.replace(/^.*VerifyEachNodeIsAssignedToAnEp\]\s*/, "").trim());
      session = await ort.InferenceSession.create(bytes, { executionProviders: ["webgpu"], logSeverityLevel: 3, preferredOutputLocation: "gpu-buffer" });
      const device: GPUDevice = await ort.env.webgpu.device;
      const feeds: Record<string, any> = {}, buffers: GPUBuffer[] = [];
      for (const [k, f] of Object.entries(c.feeds)) {
        const buf = device.createBuffer({ size: Math.ceil(f.data.byteLength / 16) * 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
        device.queue.writeBuffer(buf, 0, f.data);
        buffers.push(buf);
        feeds[k] = ort.Tensor.fromGpuBuffer(buf, { dataType: "float32", dims: f.shape });
      }
      // One checked run first, as for tfjs: a validation error would otherwise pass as a fast run.
      device.pushErrorScope("validation");
      for (const t of Object.values(await session.run(feeds))) (t as any).dispose();
      await device.queue.onSubmittedWorkDone();
      const gpuError = await device.popErrorScope();
      if (gpuError) throw new Error(`WebGPU validation error in an onnxruntime-web kernel: ${gpuError.message.split("\n")[0]}`);
      const ms = await medianMs(async () => {
        const out = await session.run(feeds);
        await device.queue.onSubmittedWorkDone();
        for (const t of Object.values(out)) (t as any).dispose();
      }, reps);
      for (const b of buffers) b.destroy();
      return { ms, placement };
    } catch (e) {
      return { error: errText(e) };
    } finally {
      await session?.release();
    }
  }
}

export class OrtNodePeer {
  readonly name = "onnxruntime-node cpu";
  private constructor(private ort: any) {}
  static async start(): Promise<OrtNodePeer> {
    return new OrtNodePeer(await import("onnxruntime-node"));
  }
  /** Median ms, and the first output (to check the ONNX graph computes what our op does). */
  async time(c: OnnxCase, reps: number): Promise<PeerTime & { output?: Float32Array }> {
    const ort = this.ort;
    let session: any;
    try {
      session = await ort.InferenceSession.create(encodeModel(c.graph), { executionProviders: ["cpu"] });
      const feeds: Record<string, any> = {};
      for (const [k, f] of Object.entries(c.feeds)) feeds[k] = new ort.Tensor("float32", f.data, f.shape);
      let output: Float32Array | undefined;
      const ms = await medianMs(async () => {
        const out = await session.run(feeds);
        output = out[c.graph.outputs[0]!.name].data as Float32Array;
      }, reps);
      return { ms, output };
    } catch (e) {
      return { error: errText(e) };
    } finally {
      await session?.release();
    }
  }
}

/** tfjs-core's gradient registry is a separate side-effect module (dist/register_all_gradients)
 * that only the ESM build carries, with bundler-style extensionless imports Node cannot load;
 * the Node build has no op gradients. Conv3D's is registered here as tfjs itself defines it
 * (Conv3D_grad.ts: the two backprop kernels), so conv3d's backward can be timed; other ops'
 * backward rows stay without a tfjs figure (bench/NOTES.md). */
function registerConv3dGradient(tf: any): void {
  if (tf.getGradient("Conv3D")) return;
  tf.registerGradient({
    kernelName: "Conv3D",
    inputsToSave: ["x", "filter"],
    gradFunc: (dy: any, saved: any[], attrs: any) => {
      const [x, filter] = saved;
      const { strides, pad } = attrs;
      return {
        x: () => tf.engine().runKernel("Conv3DBackpropInputV2", { dy, filter }, { pad, strides, inputShape: x.shape }),
        filter: () => tf.engine().runKernel("Conv3DBackpropFilterV2", { x, dy }, { strides, pad, filterShape: filter.shape }),
      };
    },
  });
}

export class TfjsPeer {
  readonly name = "tfjs webgpu";
  /** console warnings tfjs printed while running (a CPU fallback would show here) */
  readonly warnings: string[] = [];
  private constructor(readonly tf: any) {}
  static async start(): Promise<TfjsPeer> {
    const tf: any = await import("@tensorflow/tfjs-core");
    await import("@tensorflow/tfjs-backend-webgpu");
    registerConv3dGradient(tf);
    if (!(await tf.setBackend("webgpu"))) throw new Error("tf.setBackend('webgpu') returned false");
    await tf.ready();
    if (tf.getBackend() !== "webgpu") throw new Error(`tfjs backend is ${tf.getBackend()}, not webgpu`);
    return new TfjsPeer(tf);
  }
  version(): string { return this.tf.version_core; }

  private async done(out: any): Promise<void> {
    const backend = this.tf.backend();
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();
    await backend.queue.onSubmittedWorkDone();
    this.tf.dispose(out);
  }

  /** Forward and (when `grads`) forward+backward medians; backward = difference, as for ours. */
  async time(c: TfCase, reps: number): Promise<{ fwd: PeerTime; bwd?: PeerTime }> {
    const tf = this.tf;
    const ins: Record<string, any> = {};
    for (const [k, v] of Object.entries(c.inputs)) ins[k] = tf.tensor(v.data, v.shape);
    const res: { fwd: PeerTime; bwd?: PeerTime } = { fwd: {} };
    const run = async (fn: () => Promise<number>): Promise<PeerTime> => {
      try {
        const { value, lines } = await capturing(fn);
        this.warnings.push(...lines);
        if (tf.getBackend() !== "webgpu") return { error: `backend switched to ${tf.getBackend()}` };
        return { ms: value };
      } catch (e) {
        return { error: errText(e) };
      }
    };
    // One checked run first: a tfjs shader that fails to compile (e.g. "cannot index type 'vec5'")
    // is only a Dawn validation error, and the op would then "run" in no time.
    const device: GPUDevice = tf.backend().device;
    device.pushErrorScope("validation");
    let checkError: string | undefined;
    try {
      await this.done(tf.tidy(() => c.fwd(ins)));
    } catch (e) {
      checkError = errText(e);
    }
    const gpuError = await device.popErrorScope();
    if (checkError || gpuError) {
      tf.dispose(Object.values(ins));
      const error = checkError ?? `WebGPU validation error in a tfjs kernel: ${gpuError!.message.split("\n")[0]}`;
      return { fwd: { error }, bwd: { error } };
    }
    res.fwd = await run(() => medianMs(() => this.done(tf.tidy(() => c.fwd(ins))), reps));
    if (c.grads && res.fwd.ms !== undefined) {
      const names = c.grads;
      const g = tf.grads((...xs: any[]) => c.fwd({ ...ins, ...Object.fromEntries(names.map((n, i) => [n, xs[i]])) }));
      const both = await run(() => medianMs(() => this.done(tf.tidy(() => g(names.map((n) => ins[n])))), reps));
      res.bwd = both.ms !== undefined ? { ms: Math.max(both.ms - res.fwd.ms, 1e-3) } : both;
    }
    tf.dispose(Object.values(ins));
    return res;
  }
}

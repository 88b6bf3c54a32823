import { BufferPool } from "./pool.ts";
import { PipelineCache, type UniformField } from "./kernels.ts";
import { PulmoError } from "./errors.ts";

/** A buffer range bound to one kernel variable. */
export interface Binding {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}
export interface Bindable {
  binding(): Binding;
}

export interface KernelCall {
  /** path under kernels/ without .wgsl, e.g. "conv/conv_forward" */
  kernel: string;
  entry?: string;
  /** pipeline-overridable constants (part of the pipeline key; keep them few) */
  constants?: Record<string, number>;
  /** storage buffers by their WGSL variable name */
  bindings: Record<string, Bindable>;
  /** members of the kernel's uniform struct by name; shapes go here, not into the WGSL */
  uniforms?: Record<string, number | readonly number[]>;
  /** total workgroups: a number is split over x and y when it exceeds the per-dimension
   * limit (kernels index with `wid.x + wid.y * nwg.x`); a triple is used as is. */
  workgroups: number | readonly [number, number, number];
  /** op name and shapes, for error messages */
  label: string;
}

export interface DeviceLimits {
  /** largest storage buffer binding, bytes */
  maxBindingBytes: number;
  maxBufferSize: number;
  maxWorkgroupsPerDim: number;
}

export interface DeviceOptions {
  /** lower the limits the engine plans with (tests use this to exercise splitting) */
  limits?: Partial<DeviceLimits>;
  /** dispatches recorded before an automatic submit */
  maxDispatchesPerSubmit?: number;
  powerPreference?: GPUPowerPreference;
  /** request 'subgroups' where the adapter has it (default true); false keeps the portable
   * workgroup-memory reductions everywhere (tests use it to cover both paths) */
  subgroups?: boolean;
}

type GpuProvider = () => GPU | undefined;
let provider: GpuProvider = () => (globalThis as any).navigator?.gpu;
/** The Node platform registers the `webgpu` package here; browsers use navigator.gpu. */
export function setGpuProvider(p: GpuProvider): void {
  provider = p;
}

export const NO_ADAPTER_MESSAGE =
  "No WebGPU adapter found. On Linux without a GPU, install Mesa's software Vulkan driver " +
  "(lavapipe, Mesa >= 25: `npm run setup` installs mesa-vulkan-drivers from bookworm-backports); " +
  "in a browser, enable WebGPU (Chromium: --enable-unsafe-webgpu).";

const UNIFORM_SLOT = 256; // minUniformBufferOffsetAlignment upper bound
const UNIFORM_RING_BYTES = 1 << 20;

export async function createDevice(options: DeviceOptions = {}): Promise<Device> {
  const gpu = provider();
  if (!gpu) throw new PulmoError(NO_ADAPTER_MESSAGE);
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? "high-performance" });
  } catch (e) {
    throw new PulmoError(`${NO_ADAPTER_MESSAGE} (requestAdapter failed: ${(e as Error).message})`);
  }
  if (!adapter) throw new PulmoError(NO_ADAPTER_MESSAGE);
  const a = adapter.limits;
  // maxStorageBuffersPerShaderStage stays at WebGPU's default (8) on purpose: a kernel that needs
  // more would work on lavapipe and fail in browsers.
  const requiredLimits: Record<string, number> = {
    maxBufferSize: a.maxBufferSize,
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupSizeZ: a.maxComputeWorkgroupSizeZ,
  };
  // shader-f16 where the adapter has it: f32 stays the default, f16 runs only on tensors cast to it
  // subgroups where the adapter has them: row reductions use them (Device.subgroupSize)
  const wanted: GPUFeatureName[] = options.subgroups === false ? ["shader-f16"] : ["shader-f16", "subgroups"];
  const requiredFeatures = wanted.filter((f) => adapter!.features.has(f));
  const gpuDevice = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: "pulmo" });
  const info = adapter.info;
  const description = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(" / ");
  return new Device(gpuDevice, description || "unknown adapter", options);
}

function fixedSubgroupSize(gpu: GPUDevice): number | null {
  const info = (gpu as GPUDevice & { adapterInfo?: GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const n = info?.subgroupMinSize;
  if (!gpu.features.has("subgroups" as GPUFeatureName) || !n || n !== info?.subgroupMaxSize) return null;
  return n >= 4 && n <= 128 && (n & (n - 1)) === 0 && n <= gpu.limits.maxComputeInvocationsPerWorkgroup ? n : null;
}

interface PendingCheck {
  label: string;
  errors: Promise<GPUError | null>[];
}

/** One WebGPU device with the engine's buffer pool, pipeline cache and command batching.
 * Kernel calls are recorded into one command encoder and submitted together; nothing waits
 * on the GPU until a result is read. */
export class Device {
  readonly gpu: GPUDevice;
  readonly adapterDescription: string;
  readonly limits: DeviceLimits;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  /** The subgroup size when the device has 'subgroups' and the adapter runs one fixed size (min
   * == max, a power of two from 4 to 128), else null. Kernels that reduce with subgroup ops use a
   * workgroup of exactly this many invocations, so a workgroup is one subgroup. */
  readonly subgroupSize: number | null;
  private encoder: GPUCommandEncoder | null = null;
  private dispatches = 0;
  private maxDispatches: number;
  private uniformRing: GPUBuffer;
  private uniformStaging = new Uint8Array(UNIFORM_RING_BYTES);
  private uniformUsed = 0;
  private afterSubmit: (() => void)[] = [];
  private checks: PendingCheck[] = [];
  private uncaptured: string[] = [];
  lostReason: string | null = null;
  /** rejecters of the waits in flight (see whileAlive) */
  private readonly waits = new Set<(e: Error) => void>();
  /** counters for tests and the bench: kernel launches recorded and command buffers submitted */
  readonly stats = { dispatches: 0, submits: 0 };
  /** tensors created inside each open tidy() scope */
  readonly scopes: Set<{ dispose(): void }>[] = [];

  constructor(gpu: GPUDevice, adapterDescription: string, options: DeviceOptions = {}) {
    this.gpu = gpu;
    this.adapterDescription = adapterDescription;
    const l = gpu.limits;
    this.limits = {
      maxBindingBytes: Math.min(l.maxStorageBufferBindingSize, options.limits?.maxBindingBytes ?? Infinity),
      maxBufferSize: Math.min(l.maxBufferSize, options.limits?.maxBufferSize ?? Infinity),
      maxWorkgroupsPerDim: Math.min(
        l.maxComputeWorkgroupsPerDimension,
        options.limits?.maxWorkgroupsPerDim ?? Infinity,
      ),
    };
    this.maxDispatches = options.maxDispatchesPerSubmit ?? 256;
    this.pool = new BufferPool(gpu, this.limits.maxBufferSize, (label, create) => this.scoped(`allocating ${label}`, create));
    this.pipelines = new PipelineCache(gpu);
    this.subgroupSize = fixedSubgroupSize(gpu);
    this.uniformRing = gpu.createBuffer({
      size: UNIFORM_RING_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: "pulmo uniforms",
    });
    // A device lost mid-run (driver reset, destroy) fails every pending read or flush with a clear
    // error instead of leaving it waiting forever.
    void gpu.lost.then((info) => {
      this.lostReason = info.message ? `${info.reason} (${info.message})` : String(info.reason);
      for (const reject of this.waits) reject(this.lostErrorNow());
      this.waits.clear();
    });
    gpu.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      this.uncaptured.push(ev.error.message);
    };
  }

  private lostErrorNow(): PulmoError {
    return new PulmoError(`GPU device lost: ${this.lostReason}; create a new device and reload the model`);
  }

  private checkAlive(): void {
    if (this.lostReason !== null) throw this.lostErrorNow();
  }

  /** `p`, or the device-lost error if the device is lost first (or `p` fails because it was).
   * Not Promise.race against one long-lived "lost" promise: every race leaves a reaction on that
   * promise holding its result until the promise settles (never, on a healthy device), which
   * grew the heap by ~0.3–0.6 kB per flush or read over long runs. */
  private whileAlive<T>(p: Promise<T>): Promise<T> {
    if (this.lostReason !== null) return Promise.reject(this.lostErrorNow());
    return new Promise<T>((resolve, reject) => {
      this.waits.add(reject);
      p.then(
        (v) => {
          this.waits.delete(reject);
          resolve(v);
        },
        (e) => {
          this.waits.delete(reject);
          reject(this.lostReason !== null ? this.lostErrorNow() : e);
        },
      );
    });
  }

  private getEncoder(): GPUCommandEncoder {
    this.checkAlive();
    if (!this.encoder) this.encoder = this.gpu.createCommandEncoder({ label: "pulmo batch" });
    return this.encoder;
  }

  private scoped<T>(label: string, fn: () => T): T {
    this.gpu.pushErrorScope("out-of-memory");
    this.gpu.pushErrorScope("validation");
    let result: T;
    try {
      result = fn();
    } finally {
      const validation = this.gpu.popErrorScope();
      const oom = this.gpu.popErrorScope();
      this.checks.push({ label, errors: [validation, oom] });
    }
    return result;
  }

  /** Records one kernel launch. Shapes are validated by the op before it gets here. */
  dispatch(call: KernelCall): void {
    const entry = call.entry ?? "main";
    const { pipeline, layout, info, bindings } = this.pipelines.get(call.kernel, entry, call.constants ?? {});
    const entries: GPUBindGroupEntry[] = [];
    for (const b of bindings) {
      if (b.kind === "uniform") {
        const size = b.uniformSize!;
        const slot = Math.ceil(size / UNIFORM_SLOT) * UNIFORM_SLOT;
        if (this.uniformUsed + slot > UNIFORM_RING_BYTES) this.submit();
        const offset = this.uniformUsed;
        this.writeUniforms(call, b.fields!, offset, size);
        this.uniformUsed += slot;
        entries.push({ binding: b.binding, resource: { buffer: this.uniformRing, offset, size } });
        continue;
      }
      const arg = call.bindings[b.name];
      if (!arg) throw new PulmoError(`${call.label}: kernel ${call.kernel} needs a buffer for '${b.name}'`);
      const r = arg.binding();
      if (r.size > this.limits.maxBindingBytes)
        throw new PulmoError(
          `${call.label}: '${b.name}' is ${r.size} bytes, over the ${this.limits.maxBindingBytes}-byte storage binding limit`,
        );
      entries.push({ binding: b.binding, resource: { buffer: r.buffer, offset: r.offset, size: r.size } });
    }
    for (const name of Object.keys(call.bindings))
      if (!info.bindings.some((b) => b.name === name))
        throw new PulmoError(`${call.label}: kernel ${call.kernel} has no binding '${name}'`);
    const [x, y, z] = this.splitWorkgroups(call);
    if (x * y * z === 0) return;
    const encoder = this.getEncoder();
    this.scoped(call.label, () => {
      const bindGroup = this.gpu.createBindGroup({ layout, entries, label: call.label });
      const pass = encoder.beginComputePass({ label: call.label });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(x, y, z);
      pass.end();
    });
    this.stats.dispatches++;
    if (++this.dispatches >= this.maxDispatches) this.submit();
  }

  private splitWorkgroups(call: KernelCall): [number, number, number] {
    const max = this.limits.maxWorkgroupsPerDim;
    if (typeof call.workgroups === "number") {
      const n = call.workgroups;
      if (n <= max) return [n, 1, 1];
      const y = Math.ceil(n / max);
      if (y > max) throw new PulmoError(`${call.label}: ${n} workgroups exceed ${max}² (split the op)`);
      return [Math.ceil(n / y), y, 1];
    }
    const [x, y, z] = call.workgroups;
    if (x > max || y > max || z > max)
      throw new PulmoError(`${call.label}: dispatch ${x}×${y}×${z} exceeds ${max} workgroups per dimension`);
    return [x, y, z];
  }

  private writeUniforms(call: KernelCall, fields: Map<string, UniformField>, base: number, size: number) {
    this.uniformStaging.fill(0, base, base + size);
    const view = new DataView(this.uniformStaging.buffer, base, size);
    const given = call.uniforms ?? {};
    for (const [name, f] of fields) {
      const v = given[name];
      if (v === undefined) {
        if (name.startsWith("_")) continue; // padding members
        throw new PulmoError(`${call.label}: kernel ${call.kernel} needs uniform '${name}'`);
      }
      const values = typeof v === "number" ? [v] : v;
      if (values.length > f.count)
        throw new PulmoError(`${call.label}: uniform '${name}' takes ${f.count} values, got ${values.length}`);
      values.forEach((value, i) => {
        const at = f.offset + i * f.stride;
        if (f.scalar === "f32") view.setFloat32(at, value, true);
        else if (f.scalar === "i32") view.setInt32(at, value, true);
        else {
          if (value < 0 || !Number.isInteger(value) || value > 0xffffffff)
            throw new PulmoError(`${call.label}: uniform '${name}' must be a u32, got ${value}`);
          view.setUint32(at, value, true);
        }
      });
    }
    for (const name of Object.keys(given))
      if (!fields.has(name)) throw new PulmoError(`${call.label}: kernel ${call.kernel} has no uniform '${name}'`);
  }

  /** Copies host data into a buffer, in order with the recorded kernels. */
  upload(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    const bytes = data.byteLength;
    if (bytes === 0) return;
    const padded = Math.ceil(bytes / 4) * 4;
    const staging = this.gpu.createBuffer({
      size: padded,
      usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
      label: "pulmo upload",
    });
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, bytes));
    staging.unmap();
    this.getEncoder().copyBufferToBuffer(staging, 0, buffer, offset, padded);
    this.afterSubmit.push(() => staging.destroy());
    this.countCommand();
  }

  /** Zero-fills a range, in order with the recorded kernels (accumulating kernels need it). */
  clear(buffer: GPUBuffer, offset: number, size: number): void {
    if (size === 0) return;
    this.getEncoder().clearBuffer(buffer, offset, Math.ceil(size / 4) * 4);
    this.countCommand();
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    if (size === 0) return;
    this.getEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
    this.countCommand();
  }

  private countCommand(): void {
    if (++this.dispatches >= this.maxDispatches) this.submit();
  }

  /** Submits what is recorded without waiting for the GPU. */
  submit(): void {
    if (!this.encoder) return;
    const encoder = this.encoder;
    this.encoder = null;
    this.dispatches = 0;
    this.stats.submits++;
    this.scoped("submit", () => {
      if (this.uniformUsed > 0) this.gpu.queue.writeBuffer(this.uniformRing, 0, this.uniformStaging, 0, this.uniformUsed);
      this.gpu.queue.submit([encoder.finish()]);
    });
    this.uniformUsed = 0;
    for (const f of this.afterSubmit.splice(0)) f();
  }

  /** Submits and waits for the GPU, turning any validation or out-of-memory error into a
   * PulmoError that names the op and shapes that caused it. */
  async flush(): Promise<void> {
    this.submit();
    await this.whileAlive(this.gpu.queue.onSubmittedWorkDone());
    await this.raiseErrors();
  }

  private async raiseErrors(): Promise<void> {
    const checks = this.checks.splice(0);
    const messages: string[] = [];
    for (const c of checks)
      for (const e of await this.whileAlive(Promise.all(c.errors))) if (e) messages.push(`${c.label}: ${e.message}`);
    messages.push(...this.uncaptured.splice(0));
    this.checkAlive();
    if (messages.length) throw new PulmoError(`GPU error in ${messages[0]}${messages.length > 1 ? ` (+${messages.length - 1} more)` : ""}`);
  }

  /** Reads a buffer range back to the host. */
  async read(buffer: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    const padded = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.gpu.createBuffer({
      size: padded,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: "pulmo readback",
    });
    try {
      if (bytes > 0) this.getEncoder().copyBufferToBuffer(buffer, offset, staging, 0, padded);
      this.submit();
      await this.raiseErrors();
      await this.whileAlive(staging.mapAsync(GPUMapMode.READ));
      return staging.getMappedRange().slice(0, bytes);
    } finally {
      staging.destroy();
    }
  }

  /** Frees every idle pooled buffer (after the pending work is submitted). */
  trim(): void {
    this.submit();
    this.pool.trim();
  }

  destroy(): void {
    this.encoder = null;
    this.pool.trim();
    this.uniformRing.destroy();
    this.gpu.destroy();
  }
}

import { WgslReflect } from "wgsl_reflect/wgsl_reflect.module.js";
import { PulmoError } from "./errors.ts";

/** Where WGSL text comes from: the Node platform reads `kernels/` from disk, the browser bundle
 * registers the files esbuild inlined. Kernel names are paths under `kernels/` without `.wgsl`. */
export type KernelSourceLoader = (name: string) => string;
let loader: KernelSourceLoader | null = null;
export function setKernelSourceLoader(l: KernelSourceLoader): void {
  loader = l;
}

export interface UniformField {
  offset: number;
  /** scalar type of each component: u32, i32 or f32 */
  scalar: "u32" | "i32" | "f32";
  count: number; // 1 for scalars, 2-4 for vectors, n for arrays of scalars
  stride: number; // bytes between components (4, or 16 for array elements in uniform space)
}

export interface BindingInfo {
  name: string;
  binding: number;
  kind: "uniform" | "read-only-storage" | "storage";
  uniformSize?: number;
  fields?: Map<string, UniformField>;
}

export interface KernelInfo {
  name: string;
  code: string;
  bindings: BindingInfo[];
  overrides: Set<string>;
  /** entry point → names of the bindings it (or a function it calls) uses */
  entries: Map<string, Set<string>>;
  /** WebGPU features its `enable` directives need (e.g. `enable subgroups;` → 'subgroups') */
  features: GPUFeatureName[];
}

/** WGSL `enable` extensions and the device features they need. */
const ENABLE_FEATURES: Record<string, GPUFeatureName> = { f16: "shader-f16", subgroups: "subgroups" };

function enabledFeatures(name: string, code: string): GPUFeatureName[] {
  const out: GPUFeatureName[] = [];
  for (const m of code.matchAll(/^\s*enable\s+([\w\s,]+);/gm))
    for (const ext of m[1]!.split(",").map((e) => e.trim()).filter(Boolean)) {
      const f = ENABLE_FEATURES[ext];
      if (!f) throw new PulmoError(`kernel ${name}: unknown WGSL extension '${ext}' in an enable directive`);
      if (!out.includes(f)) out.push(f);
    }
  return out;
}

const SCALARS = new Set(["u32", "i32", "f32"]);

function fieldOf(member: any): UniformField {
  const t = member.type;
  if (SCALARS.has(t.name)) return { offset: member.offset, scalar: t.name, count: 1, stride: 4 };
  const fmt = t.format?.name;
  const vec = /^vec([234])([uif]?)$/.exec(t.name);
  if (vec) {
    const scalar = (fmt ?? { u: "u32", i: "i32", f: "f32" }[vec[2]!]) as UniformField["scalar"];
    return { offset: member.offset, scalar, count: Number(vec[1]), stride: 4 };
  }
  if (t.name === "array" && /^vec4/.test(fmt ?? "")) {
    // array<vec4<T>, N>: the usual way to pass more than four shape numbers; packed densely.
    const suffix = fmt.slice(4) as "u" | "i" | "f";
    const scalar = (t.format.format?.name ?? { u: "u32", i: "i32", f: "f32" }[suffix]) as UniformField["scalar"];
    return { offset: member.offset, scalar, count: t.count * 4, stride: 4 };
  }
  if (t.name === "array" && fmt && SCALARS.has(fmt)) {
    const stride = t.stride ?? 16;
    return { offset: member.offset, scalar: fmt, count: t.count, stride };
  }
  throw new PulmoError(`uniform member ${member.name}: unsupported type ${t.name}`);
}

const INCLUDE = /^\/\/\s*#include\s+"([^"]+)"\s*$/gm;

/** Splices `// #include "common/x"` lines (kernel names, no .wgsl) with those files, once each:
 * WGSL has no imports, and helpers such as a stable sigmoid should exist in one place. */
function withIncludes(name: string, code: string, seen = new Set<string>([name])): string {
  return code.replace(INCLUDE, (_line, inc: string) => {
    if (seen.has(inc)) return `// (${inc} already included)`;
    seen.add(inc);
    return withIncludes(inc, loader!(inc), seen);
  });
}

// ---------------------------------------------------------------------------------------------
// Element-type variants. A kernel that can run on another storage type declares its element type
// on one line of its own, `alias elem = f32;`, and uses `elem` for the arrays that change (loads
// widen with `f32(...)`, stores narrow with `elem(...)`, so f32 accumulation is the same code in
// both). The variant "f16" of kernel K is named `K@f16` (kernelName(K, "f16")): the loader
// prepends `enable f16;` and swaps that one line for `alias elem = f16;`. Nothing else in the
// source changes, so the reflected bind layout, uniforms and overrides are those of the f32 file,
// and the variant is a pipeline (and shader module) of its own, keyed by its name. It needs a
// device created with the 'shader-f16' feature; PipelineCache refuses it otherwise.

/** Element-type variants a kernel may be instantiated in (besides its own f32 source). */
export type KernelVariant = "f16";
const VARIANTS: Record<KernelVariant, { enable: string; alias: string }> = {
  f16: { enable: "enable f16;", alias: "alias elem = f16;" },
};
const ELEM_ALIAS = /^alias elem = f32;[ \t]*(\/\/.*)?$/gm;

/** The kernel name that selects `variant` of `kernel` (the kernel itself for null / "f32"). */
export function kernelName(kernel: string, variant: KernelVariant | "f32" | null): string {
  return variant && variant !== "f32" ? `${kernel}@${variant}` : kernel;
}

function splitVariant(name: string): { base: string; variant: KernelVariant | null } {
  const at = name.lastIndexOf("@");
  if (at < 0) return { base: name, variant: null };
  const variant = name.slice(at + 1);
  if (!(variant in VARIANTS)) throw new PulmoError(`kernel ${name}: unknown variant '${variant}' (known: ${Object.keys(VARIANTS).join(", ")})`);
  return { base: name.slice(0, at), variant: variant as KernelVariant };
}

/** Throws a PulmoError naming `feature` unless `gpu` was created with it (ops call this before
 * recording anything, so a device without 'shader-f16' refuses f16 work cleanly). */
export function requireFeature(gpu: GPUDevice, feature: GPUFeatureName, what: string): void {
  if (!gpu.features.has(feature))
    throw new PulmoError(
      `${what} needs the WebGPU feature '${feature}', which this device was not created with (the adapter lacks it, or the device was requested without it)`,
    );
}

function variantCode(name: string, code: string, variant: KernelVariant): string {
  const lines = code.match(ELEM_ALIAS) ?? [];
  if (lines.length !== 1)
    throw new PulmoError(`kernel ${name}: a '${variant}' variant needs exactly one 'alias elem = f32;' line, found ${lines.length}`);
  const v = VARIANTS[variant];
  return `${v.enable}\n${code.replace(ELEM_ALIAS, v.alias)}`;
}

const cache = new Map<string, KernelInfo>();

/** Loads and reflects a kernel once: its bind-group layout comes from the WGSL itself. A name
 * `K@f16` is kernel K's f16 variant (see above): K's reflection with the variant's code. */
export function kernelInfo(name: string): KernelInfo {
  const hit = cache.get(name);
  if (hit) return hit;
  const { base, variant } = splitVariant(name);
  if (variant) {
    const info = kernelInfo(base);
    const code = variantCode(name, info.code, variant);
    const v: KernelInfo = { ...info, name, code, features: enabledFeatures(name, code) };
    cache.set(name, v);
    return v;
  }
  if (!loader) throw new PulmoError("no kernel source loader registered (import pulmo's node or browser entry)");
  const code = withIncludes(name, loader(name));
  const reflect = new WgslReflect(code);
  const bindings: BindingInfo[] = [];
  for (const group of reflect.getBindGroups())
    for (const v of group ?? []) {
      if (!v) continue;
      if (v.group !== 0) throw new PulmoError(`kernel ${name}: only @group(0) is supported (${v.name})`);
      if (v.resourceType === 0) {
        const fields = new Map<string, UniformField>();
        for (const m of (v.type as any).members ?? []) fields.set(m.name, fieldOf(m));
        bindings.push({ name: v.name, binding: v.binding, kind: "uniform", uniformSize: v.size, fields });
      } else if (v.resourceType === 1) {
        const access = String(v.access);
        bindings.push({ name: v.name, binding: v.binding, kind: access === "read" ? "read-only-storage" : "storage" });
      } else throw new PulmoError(`kernel ${name}: binding ${v.name} is not a buffer`);
    }
  bindings.sort((a, b) => a.binding - b.binding);
  const info: KernelInfo = {
    name,
    code,
    bindings,
    overrides: new Set(reflect.overrides.map((o: any) => o.name)),
    entries: new Map(reflect.entry.compute.map((e: any) => [e.name, new Set<string>(e.resources.map((r: any) => r.name))])),
    features: enabledFeatures(name, code),
  };
  cache.set(name, info);
  return info;
}

export interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  info: KernelInfo;
  /** the bindings this entry point uses: a multi-entry file binds only what each entry touches */
  bindings: BindingInfo[];
}

/** Pipelines are keyed by kernel, entry point and override constants only: shapes travel in
 * uniforms, so one compiled pipeline serves every shape. */
export class PipelineCache {
  private pipelines = new Map<string, CachedPipeline>();
  private modules = new Map<string, GPUShaderModule>();
  constructor(private device: GPUDevice) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** names of the kernels compiled so far (tests check which path an op took) */
  get kernels(): string[] {
    return [...this.modules.keys()];
  }

  /** `kernel:entry` of the pipelines built so far (tests check which entry an op took) */
  get entries(): string[] {
    return [...new Set([...this.pipelines.keys()].map((k) => k.slice(0, k.indexOf(":", k.indexOf(":") + 1))))];
  }

  get(name: string, entry: string, constants: Record<string, number>): CachedPipeline {
    const keys = Object.keys(constants).sort();
    const key = `${name}:${entry}:${keys.map((k) => `${k}=${constants[k]}`).join(",")}`;
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    const info = kernelInfo(name);
    for (const feature of info.features)
      if (!this.device.features.has(feature))
        throw new PulmoError(`kernel ${name} needs the WebGPU feature '${feature}', which this device was not created with`);
    const used = info.entries.get(entry);
    if (!used) throw new PulmoError(`kernel ${name} has no compute entry point '${entry}'`);
    for (const k of keys)
      if (!info.overrides.has(k)) throw new PulmoError(`kernel ${name} has no override constant '${k}'`);
    let module = this.modules.get(name);
    if (!module) {
      module = this.device.createShaderModule({ code: info.code, label: name });
      this.modules.set(name, module);
    }
    const bindings = info.bindings.filter((b) => used.has(b.name));
    const layout = this.device.createBindGroupLayout({
      label: name,
      entries: bindings.map((b) => ({
        binding: b.binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.kind },
      })),
    });
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: entry, constants },
    });
    const cached = { pipeline, layout, info, bindings };
    this.pipelines.set(key, cached);
    return cached;
  }
}

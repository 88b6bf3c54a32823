import { PulmoError, Tensor, shapeStr, type Device } from "../runtime/index.ts";

/** Whether the `*_sg.wgsl` kernels that spread a workgroup-uniform load over the subgroup (lane l
 * loads value l % 8, subgroupBroadcast from lanes 0..7 hands it to all) can run: the device has
 * a fixed subgroup size of at least 8. */
export function spreadsOverSubgroup(device: Device): boolean {
  return (device.subgroupSize ?? 0) >= 8;
}

/** Workgroups for a 1D kernel over n elements with the given workgroup size. */
export function groups1d(n: number, workgroupSize = 64): number {
  return Math.ceil(n / workgroupSize);
}

/** Row-major strides (in elements) of a contiguous tensor of the given shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** `axis` in [-rank, rank) as an index in [0, rank) (negative counts from the end); anything else
 * throws "`op`: `name` `axis` is out of range for `of`", e.g. `normAxis("softmax", "dim", 2, 2,
 * "'x' of shape [2, 3]")`. */
export function normAxis(op: string, name: string, axis: number, rank: number, of: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) throw new PulmoError(`${op}: ${name} ${axis} is out of range for ${of}`);
  return axis < 0 ? axis + rank : axis;
}

/** One dim of a strided loop: its extent and each operand's element stride along it. */
export interface StridedDim {
  extent: number;
  strides: number[];
}

/** Drops extent-1 dims and merges neighbours whose every stride is contiguous across them (and
 * that `mergeable` accepts), so kernels loop over as few dims as possible. */
export function coalesceDims<D extends StridedDim>(dims: readonly D[], mergeable: (prev: D, d: D) => boolean = () => true): D[] {
  const out: D[] = [];
  for (const d of dims) {
    if (d.extent === 1) continue;
    const prev = out.at(-1);
    if (prev && mergeable(prev, d) && prev.strides.every((s, k) => s === d.strides[k]! * d.extent))
      out[out.length - 1] = { ...d, extent: prev.extent * d.extent };
    else out.push({ ...d, strides: [...d.strides] });
  }
  return out;
}

export function label(op: string, ...tensors: (Tensor | null | undefined)[]): string {
  return `${op}(${tensors.filter(Boolean).map((t) => shapeStr(t!.shape)).join(", ")})`;
}

/** Shared input checks: every public op validates before it records anything. */
export function expectRank(op: string, name: string, t: Tensor, ranks: number | number[]): void {
  const ok = Array.isArray(ranks) ? ranks.includes(t.rank) : t.rank === ranks;
  if (!ok)
    throw new PulmoError(`${op}: '${name}' must have rank ${Array.isArray(ranks) ? ranks.join(" or ") : ranks}, got ${shapeStr(t.shape)}`);
}

export function expectShape(op: string, name: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
    throw new PulmoError(`${op}: '${name}' must have shape ${shapeStr(shape)}, got ${shapeStr(t.shape)}`);
}

export function expectFloat(op: string, name: string, t: Tensor): void {
  if (t.dtype !== "f32") throw new PulmoError(`${op}: '${name}' must be f32, got ${t.dtype}`);
  if (t.isDisposed) throw new PulmoError(`${op}: '${name}' was disposed`);
}

export function expectSameDevice(op: string, ...ts: (Tensor | null | undefined)[]): Device {
  const d = ts.find(Boolean)!.device;
  for (const t of ts) if (t && t.device !== d) throw new PulmoError(`${op}: tensors live on different devices`);
  return d;
}

export function full(device: Device, shape: readonly number[], value: number): Tensor {
  const y = Tensor.empty(device, shape);
  device.dispatch({
    kernel: "elementwise/fill",
    bindings: { y },
    uniforms: { n: y.size, value },
    workgroups: groups1d(y.size),
    label: `full(${shapeStr(shape)})`,
  });
  return y;
}

/** a + b for same-sized tensors (no autograd: used by the tape to accumulate gradients). */
export function addSame(a: Tensor, b: Tensor): Tensor {
  if (a.size !== b.size) throw new PulmoError(`add: sizes differ ${shapeStr(a.shape)} vs ${shapeStr(b.shape)}`);
  const y = Tensor.empty(a.device, a.shape);
  // over one storage binding (gradients of split activations): 256-byte-aligned chunks
  const step = Math.floor(a.device.limits.maxBindingBytes / 256) * 64;
  const aligned = (t: Tensor) => t.byteOffset % 256 === 0;
  if (y.size <= step || !aligned(a) || !aligned(b)) launchAdd(a, b, y);
  else
    for (let start = 0; start < y.size; start += step) {
      const n = Math.min(step, y.size - start);
      const [ac, bc, yc] = [a, b, y].map((t) => t.chunk(start, [n])) as [Tensor, Tensor, Tensor];
      launchAdd(ac, bc, yc);
      [ac, bc, yc].forEach((t) => t.dispose());
    }
  return y;
}

/** vec4 over the largest multiple of 64 elements (main4, ≤ 1024 grid-striding workgroups), the
 * scalar entry over the rest as a second 256-byte-aligned chunk. */
function launchAdd(a: Tensor, b: Tensor, y: Tensor): void {
  const bulk = Math.floor(y.size / 64) * 64;
  const part = (start: number, n: number, v4: boolean) => {
    const [ac, bc, yc] = [a, b, y].map((t) => (start === 0 && n === t.size ? t : t.chunk(start, [n]))) as [Tensor, Tensor, Tensor];
    a.device.dispatch({
      kernel: "elementwise/add",
      entry: v4 ? "main4" : "main",
      bindings: v4 ? { a4: ac, b4: bc, y4: yc } : { a: ac, b: bc, y: yc },
      uniforms: { n: v4 ? n / 4 : n },
      workgroups: v4 ? Math.min(1024, groups1d(n / 4)) : groups1d(n),
      label: label("add", a, b),
    });
    for (const [t, c] of [[a, ac], [b, bc], [y, yc]] as const) if (c !== t) c.dispose();
  };
  if (bulk > 0) part(0, bulk, true);
  if (y.size > bulk) part(bulk, y.size - bulk, false);
}

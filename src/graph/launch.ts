import { PulmoError, Tensor, shapeStr, type Device } from "../runtime/index.ts";

/** Workgroups for a 1D kernel over n elements with the given workgroup size. */
export function groups1d(n: number, workgroupSize = 64): number {
  return Math.ceil(n / workgroupSize);
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
  a.device.dispatch({
    kernel: "elementwise/add",
    bindings: { a, b, y },
    uniforms: { n: y.size },
    workgroups: groups1d(y.size),
    label: label("add", a, b),
  });
  return y;
}

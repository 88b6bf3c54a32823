// A minimal ONNX ModelProto encoder: enough protobuf to describe one-op (or few-op) float32
// graphs for the peer runtimes, which take model bytes only. Field numbers from onnx.proto
// (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto).

/** Protobuf writer: varints, length-delimited fields, fixed32 floats. */
class Writer {
  private chunks: Uint8Array[] = [];
  private parts: number[] = [];
  private flushParts(): void {
    if (this.parts.length) this.chunks.push(Uint8Array.from(this.parts));
    this.parts = [];
  }
  varint(v: number | bigint): this {
    let n = BigInt.asUintN(64, BigInt(v));
    do {
      const b = Number(n & 0x7fn);
      n >>= 7n;
      this.parts.push(n ? b | 0x80 : b);
    } while (n);
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    return this.tag(field, 0).varint(v);
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    this.flushParts();
    this.chunks.push(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }
  float(field: number, v: number): this {
    this.tag(field, 5);
    for (const x of new Uint8Array(new Float32Array([v]).buffer)) this.parts.push(x);
    return this;
  }
  finish(): Uint8Array {
    this.flushParts();
    const out = new Uint8Array(this.chunks.reduce((a, c) => a + c.length, 0));
    let o = 0;
    for (const c of this.chunks) { out.set(c, o); o += c.length; }
    return out;
  }
}

export type Attr = number | number[] | string | { floats: number[] } | { float: number };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, Attr>;
  domain?: string;
}

export interface OnnxGraph {
  nodes: OnnxNode[];
  /** runtime inputs (float32) */
  inputs: { name: string; shape: number[] }[];
  outputs: { name: string; shape: number[] }[];
  /** constant tensors baked into the model (weights); int64 when `int64` is set */
  initializers?: { name: string; shape: number[]; data: Float32Array | BigInt64Array }[];
  opset?: number;
}

const FLOAT = 1, INT64 = 7;

function attribute(name: string, v: Attr): Writer {
  const w = new Writer().str(1, name);
  if (typeof v === "string") return w.bytes(4, new TextEncoder().encode(v)).int(20, 3);
  if (Array.isArray(v)) {
    for (const x of v) w.int(8, x);
    return w.int(20, 7);
  }
  if (typeof v === "number") return w.int(3, v).int(20, 2);
  if ("float" in v) return w.float(2, v.float).int(20, 1);
  for (const x of v.floats) w.float(7, x);
  return w.int(20, 6);
}

function valueInfo(name: string, shape: number[], elem = FLOAT): Writer {
  const dims = new Writer();
  for (const d of shape) dims.msg(1, new Writer().int(1, d));
  const tensor = new Writer().int(1, elem).msg(2, dims);
  return new Writer().str(1, name).msg(2, new Writer().msg(1, tensor));
}

/** Serialises `g` as an ONNX model (IR version 8, default-domain opset `g.opset ?? 17`). */
export function encodeModel(g: OnnxGraph): Uint8Array {
  const graph = new Writer();
  g.nodes.forEach((n, i) => {
    const node = new Writer();
    for (const x of n.inputs) node.str(1, x);
    for (const y of n.outputs) node.str(2, y);
    node.str(3, `${n.op}_${i}`).str(4, n.op);
    for (const [k, v] of Object.entries(n.attrs ?? {})) node.msg(5, attribute(k, v));
    if (n.domain) node.str(7, n.domain);
    graph.msg(1, node);
  });
  graph.str(2, "peer");
  for (const t of g.initializers ?? []) {
    const tp = new Writer();
    for (const d of t.shape) tp.int(1, d);
    tp.int(2, t.data instanceof BigInt64Array ? INT64 : FLOAT).str(8, t.name);
    tp.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    graph.msg(5, tp);
  }
  for (const v of g.inputs) graph.msg(11, valueInfo(v.name, v.shape));
  for (const v of g.outputs) graph.msg(12, valueInfo(v.name, v.shape));
  return new Writer()
    .int(1, 8)
    .str(2, "pulmo-bench")
    .msg(7, graph)
    .msg(8, new Writer().str(1, "").int(2, g.opset ?? 17))
    .finish();
}

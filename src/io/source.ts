// Bytes from whatever a user holds: a browser File/Blob, an ArrayBuffer or typed array, or a URL
// fetched with the platform's fetch (http(s) in Node and browsers). File paths are Node-only: read
// them with fs and pass the bytes.
import { PulmoError } from "../runtime/errors.ts";

export type ByteSource = Uint8Array | ArrayBuffer | ArrayBufferView | Blob | URL | string;

export async function readBytes(source: ByteSource, what = "input"): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (typeof Blob !== "undefined" && source instanceof Blob) return new Uint8Array(await source.arrayBuffer());
  if (typeof source === "string" || source instanceof URL) {
    const url = String(source);
    let res: Response;
    try {
      res = await fetch(source);
    } catch (e) {
      throw new PulmoError(`${what}: cannot fetch ${url} (${(e as Error).message}); in Node pass the file's bytes (fs.readFileSync) instead of a path`);
    }
    if (!res.ok) throw new PulmoError(`${what}: fetching ${url} gave HTTP ${res.status} ${res.statusText}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  throw new PulmoError(`${what}: expected a File, Blob, ArrayBuffer, Uint8Array or URL, got ${Object.prototype.toString.call(source)}`);
}

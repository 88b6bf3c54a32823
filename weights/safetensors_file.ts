// Lazy safetensors reader for Node: opens a file descriptor, reads only the 8-byte length and
// the header, validates them exactly as readSafetensors does (shared `headerLength` and
// `parseHeader`), and reads each tensor's bytes on demand with positioned reads. A multi-GB
// checkpoint can be inspected, or loaded one tensor at a time, without holding it in memory.
// Node-only (node:fs); the browser build never imports this file.
import fs from "node:fs";
import {
  SafetensorsError,
  decodeFloat32,
  decodeInt,
  headerLength,
  parseHeader,
  type SafetensorsTensors,
  type TensorEntry,
} from "./safetensors.ts";

export interface SafetensorsFileHandle extends SafetensorsTensors {
  path: string;
  /** file size in bytes */
  size: number;
  /** absolute file offset of the data section (8 + header length) */
  dataOffset: number;
  /** total bytes read from the file so far (preamble + header + every tensor read) */
  readonly bytesRead: number;
  /** a tensor's raw little-endian bytes (a fresh buffer; only that byte range is read) */
  bytes(name: string): Uint8Array;
  /** as on SafetensorsTensors; reads just that tensor's byte range into a fresh buffer */
  float32(name: string): Float32Array;
  /** closes the descriptor; later reads throw. Closing twice is harmless. */
  close(): void;
}

/** Node's positioned reads take at most 2 GiB − 1 per call; read big tensors in 1 GiB pieces. */
const MAX_READ = 1 << 30;

/** Opens `path` and validates its header; throws SafetensorsError (and closes the file) if invalid. */
export function openSafetensors(path: string): SafetensorsFileHandle {
  let fd: number;
  try {
    fd = fs.openSync(path, "r");
  } catch (e) {
    throw new SafetensorsError(`cannot open ${path}: ${(e as Error).message}`);
  }
  let open = true;
  let bytesRead = 0;

  /** Reads exactly `length` bytes at `position` into a fresh buffer. */
  const readAt = (position: number, length: number, what: string): Uint8Array => {
    if (!open) throw new SafetensorsError(`${path}: file is closed (reading ${what})`);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const got = fs.readSync(fd, out, done, Math.min(length - done, MAX_READ), position + done);
      if (got === 0) throw new SafetensorsError(`${path}: unexpected end of file reading ${what} (file shrank? ${done} of ${length} bytes at offset ${position})`);
      done += got;
      bytesRead += got;
    }
    return out;
  };

  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new SafetensorsError(`${path} is not a regular file`);
    const size = st.size;
    const n = headerLength(size >= 8 ? readAt(0, 8, "the header length") : new Uint8Array(0), size);
    const dataOffset = 8 + n;
    const header = parseHeader(readAt(8, n, "the header"), size - dataOffset);
    const entry = (name: string): TensorEntry => header.tensors.get(name) ?? fail(`missing tensor '${name}'`);
    const raw = (t: TensorEntry) => readAt(dataOffset + t.begin, t.end - t.begin, `tensor '${t.name}'`);
    return {
      ...header,
      path,
      size,
      dataOffset,
      get bytesRead() {
        return bytesRead;
      },
      has: (name) => header.tensors.has(name),
      bytes: (name) => raw(entry(name)),
      float32(name) {
        const t = entry(name);
        return decodeFloat32(t, raw(t));
      },
      int(name) {
        const t = entry(name);
        return decodeInt(t, raw(t));
      },
      close() {
        if (!open) return;
        open = false;
        fs.closeSync(fd);
      },
    };
  } catch (e) {
    open = false;
    fs.closeSync(fd);
    throw e;
  }
}

function fail(m: string): never {
  throw new SafetensorsError(m);
}

// Transfer syntaxes Pulmo knows by name, SOP classes it writes, and new UIDs under the 2.25 root
// (a UUID as one decimal integer, ITU-T X.667), random or derived from a seed.

export const TRANSFER_SYNTAX = {
  ImplicitVRLittleEndian: "1.2.840.10008.1.2",
  ExplicitVRLittleEndian: "1.2.840.10008.1.2.1",
  DeflatedExplicitVRLittleEndian: "1.2.840.10008.1.2.1.99",
  ExplicitVRBigEndian: "1.2.840.10008.1.2.2",
  JPEGLosslessSV1: "1.2.840.10008.1.2.4.70",
  RLELossless: "1.2.840.10008.1.2.5",
} as const;

const TRANSFER_SYNTAX_NAMES: Record<string, string> = {
  "1.2.840.10008.1.2": "Implicit VR Little Endian",
  "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
  "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless, Non-Hierarchical (Process 14)",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless Image Compression",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Lossy (Near-Lossless) Image Compression",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Image Compression (Lossless Only)",
  "1.2.840.10008.1.2.4.91": "JPEG 2000 Image Compression",
  "1.2.840.10008.1.2.4.100": "MPEG2 Main Profile / Main Level",
  "1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264 High Profile / Level 4.1",
  "1.2.840.10008.1.2.4.201": "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
  "1.2.840.10008.1.2.4.203": "High-Throughput JPEG 2000 Image Compression",
  "1.2.840.10008.1.2.5": "RLE Lossless",
};

export const transferSyntaxName = (uid: string): string => TRANSFER_SYNTAX_NAMES[uid] ?? "unknown transfer syntax";

export const SOP_CLASS = {
  CTImageStorage: "1.2.840.10008.5.1.4.1.1.2",
  RTStructureSetStorage: "1.2.840.10008.5.1.4.1.1.481.3",
} as const;

/** Pulmo's implementation class UID (a fixed UUID-derived UID) written into every file meta group. */
export const IMPLEMENTATION_CLASS_UID = "2.25.160543521185513985457236123431457284681";
export const IMPLEMENTATION_VERSION = "PULMO_0_1";

/** 2.25.<decimal of 128 bits> with the UUID version-4 and variant bits set. */
function uuidUid(bytes: Uint8Array): string {
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return `2.25.${n.toString()}`;
}

/** A fresh random UID. */
export function randomUid(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return uuidUid(bytes);
}

/** 128 bits from a string with four independent 32-bit FNV-1a/murmur-finalised lanes. */
function hash128(text: string): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  for (let lane = 0; lane < 4; lane++) {
    let h = (0x811c9dc5 ^ Math.imul(lane + 1, 0x9e3779b9)) >>> 0;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
    view.setUint32(lane * 4, h >>> 0);
  }
  return out;
}

/** Makes UIDs: random ones, or, given a seed, the same sequence every time (for reproducible exports). */
export function uidGenerator(seed?: string | number): () => string {
  if (seed === undefined) return randomUid;
  let counter = 0;
  return () => uuidUid(hash128(`pulmo:${seed}:${counter++}`));
}

// Dataset → DICOM Part 10 bytes: 128-byte preamble, "DICM", a file meta group with its group
// length, then the dataset in explicit VR little endian (or implicit, for values too long for a
// 16-bit explicit length). Elements are written in tag order; sequences and items use undefined
// lengths with delimiters.
import { DicomDataset, type DicomElement } from "./dataset.ts";
import { fail } from "./errors.ts";
import { tagName, TAGS } from "./tags.ts";
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION, TRANSFER_SYNTAX } from "./uids.ts";

const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]);
const PAD_NUL = new Set(["UI", "OB", "UN"]);

class ByteSink {
  private buf = new Uint8Array(1 << 16);
  length = 0;
  private grow(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  u16(v: number): void {
    this.grow(2);
    this.buf[this.length++] = v & 0xff;
    this.buf[this.length++] = (v >>> 8) & 0xff;
  }
  u32(v: number): void {
    this.u16(v & 0xffff);
    this.u16(v >>> 16);
  }
  bytes(b: Uint8Array): void {
    this.grow(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Whether every value fits the 16-bit length field of explicit VR for its VR. */
export function fitsExplicit(ds: DicomDataset): boolean {
  for (const e of ds.elements.values()) {
    if (e.items && !e.items.every(fitsExplicit)) return false;
    if (!LONG_VRS.has(e.vr) && e.bytes.length + 1 > 0xffff) return false;
  }
  return true;
}

function writeDataset(out: ByteSink, ds: DicomDataset, explicit: boolean): void {
  const tags = [...ds.elements.keys()].sort((a, b) => a - b);
  for (const tag of tags) writeElement(out, ds.elements.get(tag)!, explicit);
}

function writeTag(out: ByteSink, tag: number): void {
  out.u16(tag >>> 16);
  out.u16(tag & 0xffff);
}

function writeElement(out: ByteSink, e: DicomElement, explicit: boolean): void {
  if (e.encapsulated) fail(`${tagName(e.tag)}: writing encapsulated pixel data is not supported`);
  writeTag(out, e.tag);
  const header = (length: number) => {
    if (!explicit) return out.u32(length);
    out.bytes(new Uint8Array([e.vr.charCodeAt(0), e.vr.charCodeAt(1)]));
    if (LONG_VRS.has(e.vr)) {
      out.u16(0);
      out.u32(length);
    } else {
      if (length > 0xfffe) fail(`${tagName(e.tag)} value of ${length} bytes is too long for explicit VR ${e.vr}`);
      out.u16(length);
    }
  };
  if (e.vr === "SQ") {
    header(0xffffffff);
    for (const item of e.items ?? []) {
      writeTag(out, TAGS.Item);
      out.u32(0xffffffff);
      writeDataset(out, item, explicit);
      writeTag(out, TAGS.ItemDelimitationItem);
      out.u32(0);
    }
    writeTag(out, TAGS.SequenceDelimitationItem);
    out.u32(0);
    return;
  }
  const odd = e.bytes.length % 2 === 1;
  header(e.bytes.length + (odd ? 1 : 0));
  out.bytes(e.bytes);
  if (odd) out.bytes(new Uint8Array([PAD_NUL.has(e.vr) ? 0 : 0x20]));
}

/**
 * A Part 10 file of `dataset` (whose SOPClassUID and SOPInstanceUID fill the meta group).
 * `implicit` writes the dataset implicit VR little endian, for values longer than explicit VR allows.
 */
export function writeDicom(dataset: DicomDataset, options: { implicit?: boolean } = {}): Uint8Array {
  if (!dataset.littleEndian) fail("only little-endian datasets can be written");
  const implicit = options.implicit ?? false;
  const meta = new DicomDataset(true)
    .set(TAGS.FileMetaInformationVersion, "OB", new Uint8Array([0, 1]))
    .set(TAGS.MediaStorageSOPClassUID, "UI", dataset.requireString(TAGS.SOPClassUID, "writeDicom"))
    .set(TAGS.MediaStorageSOPInstanceUID, "UI", dataset.requireString(TAGS.SOPInstanceUID, "writeDicom"))
    .set(TAGS.TransferSyntaxUID, "UI", implicit ? TRANSFER_SYNTAX.ImplicitVRLittleEndian : TRANSFER_SYNTAX.ExplicitVRLittleEndian)
    .set(TAGS.ImplementationClassUID, "UI", IMPLEMENTATION_CLASS_UID)
    .set(TAGS.ImplementationVersionName, "SH", IMPLEMENTATION_VERSION);
  const metaBody = new ByteSink();
  writeDataset(metaBody, meta, true);
  const out = new ByteSink();
  out.bytes(new Uint8Array(128));
  out.bytes(new Uint8Array([0x44, 0x49, 0x43, 0x4d]));
  const groupLength = new DicomDataset(true).set(TAGS.FileMetaInformationGroupLength, "UL", metaBody.length);
  writeDataset(out, groupLength, true);
  out.bytes(metaBody.result());
  writeDataset(out, dataset, !implicit);
  return out.result();
}

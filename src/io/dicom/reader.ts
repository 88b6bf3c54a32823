// DICOM Part 10 reader: preamble + "DICM" (or none), the file meta group, then the dataset in
// implicit VR LE, explicit VR LE/BE or deflated explicit VR LE. Every length is checked against the
// bytes that remain before it is used, so malformed input fails here with a DicomError.
import { inflateSync } from "fflate";
import { DicomDataset, type DicomElement } from "./dataset.ts";
import { fail } from "./errors.ts";
import { implicitVr, tagName, TAGS } from "./tags.ts";
import { TRANSFER_SYNTAX } from "./uids.ts";

export interface DicomFile {
  /** the file meta group (0002,xxxx) */
  meta: DicomDataset;
  dataset: DicomDataset;
  transferSyntaxUid: string;
}

/** Sequences nest at most this deep (real files use 3–5 levels). */
export const MAX_SEQUENCE_DEPTH = 32;

const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]);
const VRS = new Set([...LONG_VRS, "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"]);
const UNDEFINED = 0xffffffff;

interface Syntax {
  explicit: boolean;
  littleEndian: boolean;
}

/** Parses a DICOM Part 10 file (a file without the 128-byte preamble is accepted too). */
export function readDicom(input: Uint8Array): DicomFile {
  if (!(input instanceof Uint8Array)) fail("input must be a Uint8Array");
  let start: number;
  if (input.length >= 132 && ascii(input, 128, 4) === "DICM") start = 132;
  else if (input.length >= 4 && ascii(input, 0, 4) === "DICM") start = 4;
  else {
    start = 0;
    if (!looksLikeDataset(input))
      fail(input.length < 132 ? `not a DICOM file: ${input.length} bytes, no 'DICM' magic and no recognisable data element` : "not a DICOM file: no 'DICM' magic at byte 128 and no recognisable data element at the start");
  }
  const meta = new DicomDataset(true);
  let pos = start;
  // The file meta group is always explicit VR little endian; it ends where group 0002 does.
  const metaParser = new Parser(input, { explicit: true, littleEndian: true });
  if (pos + 4 <= input.length && readU16(input, pos, true) === 0x0002) {
    while (pos + 4 <= input.length && readU16(input, pos, true) === 0x0002) pos = metaParser.element(pos, input.length, meta, 0);
  } else if (start !== 0) fail(`file meta group (0002,xxxx) missing after 'DICM' at byte ${start}`);

  let ts = meta.getString(TAGS.TransferSyntaxUID);
  if (ts === undefined) {
    if (meta.elements.size > 0) fail("file meta group has no TransferSyntaxUID (0002,0010)");
    ts = guessSyntax(input, pos); // a bare dataset without meta: find out from the first element
  }
  let body = input;
  let bodyStart = pos;
  if (ts === TRANSFER_SYNTAX.DeflatedExplicitVRLittleEndian) {
    try {
      body = inflateSync(input.subarray(pos));
    } catch (e) {
      fail(`corrupt deflated dataset (${(e as Error).message})`);
    }
    bodyStart = 0;
  }
  const syntax: Syntax = {
    explicit: ts !== TRANSFER_SYNTAX.ImplicitVRLittleEndian,
    littleEndian: ts !== TRANSFER_SYNTAX.ExplicitVRBigEndian,
  };
  const dataset = new DicomDataset(syntax.littleEndian);
  new Parser(body, syntax).dataset(bodyStart, body.length, dataset, 0, false);
  const charset = dataset.getStrings(TAGS.SpecificCharacterSet);
  dataset.utf8 = charset.includes("ISO_IR 192");
  for (const e of dataset.elements.values()) markUtf8(e, dataset.utf8);
  return { meta, dataset, transferSyntaxUid: ts };
}

function markUtf8(e: DicomElement, utf8: boolean): void {
  for (const item of e.items ?? []) {
    item.utf8 = utf8;
    for (const c of item.elements.values()) markUtf8(c, utf8);
  }
}

function ascii(b: Uint8Array, at: number, n: number): string {
  return String.fromCharCode(...b.subarray(at, at + n));
}

function readU16(b: Uint8Array, at: number, le: boolean): number {
  return le ? b[at]! | (b[at + 1]! << 8) : (b[at]! << 8) | b[at + 1]!;
}

function readU32(b: Uint8Array, at: number, le: boolean): number {
  return le
    ? (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0
    : ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

const isVr = (b: Uint8Array, at: number) => at + 2 <= b.length && VRS.has(ascii(b, at, 2));

/** A bare dataset starts with a low even group (0002 or 0008, as real files without preamble do). */
function looksLikeDataset(b: Uint8Array): boolean {
  if (b.length < 8) return false;
  const group = readU16(b, 0, true);
  return group === 0x0002 || group === 0x0008;
}

function guessSyntax(b: Uint8Array, pos: number): string {
  if (isVr(b, pos + 4)) return TRANSFER_SYNTAX.ExplicitVRLittleEndian;
  return TRANSFER_SYNTAX.ImplicitVRLittleEndian;
}

class Parser {
  constructor(
    private readonly b: Uint8Array,
    private readonly syntax: Syntax,
  ) {}

  private need(pos: number, n: number, end: number, what: string): void {
    if (pos + n > end) fail(`truncated: ${what} at byte ${pos} needs ${n} bytes, only ${Math.max(0, end - pos)} left`);
  }

  private tagAt(pos: number, le = this.syntax.littleEndian): number {
    return ((readU16(this.b, pos, le) << 16) | readU16(this.b, pos + 2, le)) >>> 0;
  }

  /** Elements from `pos` to `end`; with `untilItemEnd`, stops after an item delimiter (which must come). Returns the position after. */
  dataset(pos: number, end: number, into: DicomDataset, depth: number, untilItemEnd: boolean): number {
    while (pos < end) {
      this.need(pos, 4, end, "data element tag");
      const tag = this.tagAt(pos);
      if (tag === TAGS.ItemDelimitationItem) {
        if (!untilItemEnd) fail(`unexpected item delimiter at byte ${pos} outside an item of undefined length`);
        this.need(pos, 8, end, "item delimiter");
        return pos + 8;
      }
      if (untilItemEnd && tag === TAGS.SequenceDelimitationItem)
        fail(`item of undefined length has no item delimiter (FFFE,E00D): found a sequence delimiter at byte ${pos}`);
      if (tag === TAGS.SequenceDelimitationItem || tag === TAGS.Item)
        fail(`unexpected ${tagName(tag)} at byte ${pos} (not inside a sequence)`);
      pos = this.element(pos, end, into, depth);
    }
    if (untilItemEnd) fail(`item of undefined length has no item delimiter (FFFE,E00D) before the end of its data at byte ${end}`);
    return pos;
  }

  /** One element at `pos`; returns the position after it. */
  element(pos: number, end: number, into: DicomDataset, depth: number): number {
    const b = this.b;
    const le = this.syntax.littleEndian;
    this.need(pos, 8, end, "data element header");
    const tag = this.tagAt(pos);
    let vr: string;
    let length: number;
    let valueAt: number;
    if (this.syntax.explicit) {
      vr = ascii(b, pos + 4, 2);
      if (!VRS.has(vr)) fail(`invalid VR '${vr.replace(/[^\x20-\x7e]/g, "?")}' for ${tagName(tag)} at byte ${pos}`);
      if (LONG_VRS.has(vr)) {
        this.need(pos, 12, end, `header of ${tagName(tag)}`);
        length = readU32(b, pos + 8, le);
        valueAt = pos + 12;
      } else {
        length = readU16(b, pos + 6, le);
        valueAt = pos + 8;
      }
    } else {
      vr = implicitVr(tag);
      length = readU32(b, pos + 4, le);
      valueAt = pos + 8;
    }
    if (length === UNDEFINED) {
      if (tag === TAGS.PixelData) return this.encapsulated(tag, vr, valueAt, end, into);
      if (vr === "SQ" || vr === "UN") {
        // An undefined-length UN is a sequence encoded implicit VR little endian (PS3.5 6.2.2).
        const parser = vr === "UN" && this.syntax.explicit ? new Parser(b, { explicit: false, littleEndian: true }) : this;
        return parser.sequence(tag, valueAt, end, into, depth, true);
      }
      fail(`${tagName(tag)} (VR ${vr}) at byte ${pos} has undefined length, allowed only for sequences and pixel data`);
    }
    if (length > end - valueAt)
      fail(`${tagName(tag)} at byte ${pos} has length ${length}, past the end of the data (${Math.max(0, end - valueAt)} bytes left)`);
    if (vr === "SQ") {
      this.sequence(tag, valueAt, valueAt + length, into, depth, false);
      return valueAt + length;
    }
    into.elements.set(tag, { tag, vr, bytes: b.subarray(valueAt, valueAt + length) });
    return valueAt + length;
  }

  /** Items of a sequence; `undefinedLength`: until the sequence delimiter, else to `end`. */
  private sequence(tag: number, pos: number, end: number, into: DicomDataset, depth: number, undefinedLength: boolean): number {
    if (depth + 1 > MAX_SEQUENCE_DEPTH) fail(`sequences nested deeper than ${MAX_SEQUENCE_DEPTH} levels at ${tagName(tag)}, byte ${pos}`);
    const items: DicomDataset[] = [];
    into.elements.set(tag, { tag, vr: "SQ", bytes: new Uint8Array(0), items });
    while (pos < end) {
      this.need(pos, 8, end, `item header in ${tagName(tag)}`);
      const itemTag = this.tagAt(pos);
      const length = readU32(this.b, pos + 4, this.syntax.littleEndian);
      if (itemTag === TAGS.SequenceDelimitationItem) {
        if (!undefinedLength) fail(`sequence delimiter inside ${tagName(tag)} of defined length at byte ${pos}`);
        return pos + 8;
      }
      if (itemTag !== TAGS.Item) fail(`${tagName(tag)}: expected an item (FFFE,E000) at byte ${pos}, found ${tagName(itemTag)}`);
      const item = new DicomDataset(this.syntax.littleEndian);
      items.push(item);
      const at = pos + 8;
      if (length === UNDEFINED) pos = this.dataset(at, end, item, depth + 1, true);
      else {
        if (length > end - at) fail(`item in ${tagName(tag)} at byte ${pos} has length ${length}, past the end of its sequence (${end - at} bytes left)`);
        this.dataset(at, at + length, item, depth + 1, false);
        pos = at + length;
      }
    }
    if (undefinedLength) fail(`sequence ${tagName(tag)} has no sequence delimiter (FFFE,E0DD) before the end of the data`);
    return pos;
  }

  /** Encapsulated pixel data: a basic offset table item, fragment items, a sequence delimiter. */
  private encapsulated(tag: number, vr: string, pos: number, end: number, into: DicomDataset): number {
    const le = this.syntax.littleEndian;
    const items: Uint8Array[] = [];
    for (;;) {
      this.need(pos, 8, end, "pixel data fragment header");
      const itemTag = this.tagAt(pos);
      const length = readU32(this.b, pos + 4, le);
      if (itemTag === TAGS.SequenceDelimitationItem) {
        pos += 8;
        break;
      }
      if (itemTag !== TAGS.Item) fail(`encapsulated pixel data: expected a fragment item at byte ${pos}, found ${tagName(itemTag)}`);
      if (length > end - pos - 8) fail(`pixel data fragment at byte ${pos} has length ${length}, past the end of the data (${end - pos - 8} bytes left)`);
      items.push(this.b.subarray(pos + 8, pos + 8 + length));
      pos += 8 + length;
    }
    if (items.length === 0) fail("encapsulated pixel data has no basic offset table item");
    into.elements.set(tag, { tag, vr, bytes: new Uint8Array(0), encapsulated: { offsetTable: items[0]!, fragments: items.slice(1) } });
    return pos;
  }
}

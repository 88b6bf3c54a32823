// File handling shared by the commands: reading NIfTI volumes with messages that name the file,
// case discovery in folders, and atomic output (temporary file, then rename).
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { PulmoError } from "../runtime/errors.ts";
import { readNifti, type NiftiVolume } from "../io/nifti.ts";
import { writeFileAtomic } from "../platform/files.ts";

export const isNiftiPath = (p: string) => /\.nii(\.gz)?$/i.test(p);

/** The case name of a file or folder: its base name without .nii / .nii.gz. */
export const caseName = (p: string) => basename(p).replace(/\.nii(\.gz)?$/i, "");

/** The bytes of `path`, or a PulmoError naming it (missing, a folder, unreadable, empty). */
export function readInput(path: string, what: string): Uint8Array {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new PulmoError(`${what} ${path}: no such file`);
  }
  if (st.isDirectory()) throw new PulmoError(`${what} ${path} is a folder, not a file`);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new PulmoError(`${what} ${path}: cannot read (${(e as Error).message})`);
  }
  if (bytes.byteLength === 0) throw new PulmoError(`${what} ${path}: the file is empty (0 bytes)`);
  return bytes;
}

/** A NIfTI volume from `path`; every parse error carries the file name. */
export function readVolume(path: string, what: string): NiftiVolume {
  const bytes = readInput(path, what);
  try {
    return readNifti(bytes);
  } catch (e) {
    if (e instanceof PulmoError) throw new PulmoError(`${what} ${path}: ${e.message}`);
    throw e;
  }
}

/** Writes `bytes` to `path` atomically, creating the parent folder. */
export function writeOutput(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path) || ".", { recursive: true });
  writeFileAtomic(path, bytes);
}

/** True when `path` is a folder holding DICOM files (a .dcm, or a file with the DICM preamble). */
export function isDicomFolder(path: string): boolean {
  let names: string[];
  try {
    names = readdirSync(path);
  } catch {
    return false;
  }
  for (const n of names.slice(0, 64)) {
    const p = join(path, n);
    if (/\.dcm$/i.test(n)) return true;
    try {
      if (!statSync(p).isFile()) continue;
      const head = readFileSync(p).subarray(128, 132);
      if (String.fromCharCode(...head) === "DICM") return true;
    } catch {
      /* unreadable entries are not DICOM evidence */
    }
  }
  return false;
}

export interface CaseEntry {
  name: string;
  /** the NIfTI file or the DICOM folder */
  path: string;
  kind: "nifti" | "dicom";
  /** the case's own folder, when the case is a sub-folder */
  folder?: string;
}

/**
 * The cases in a folder, sorted by name: each `NAME.nii[.gz]` file is a case; each sub-folder is
 * a case holding either a DICOM series or the NIfTI file `inner` (e.g. "ct.nii.gz"; without
 * `inner`, its only NIfTI file). Entries starting with "." are skipped.
 */
export function listCases(folder: string, inner?: string): CaseEntry[] {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new PulmoError(`${folder} is not a folder`);
  const out: CaseEntry[] = [];
  for (const n of readdirSync(folder).sort()) {
    if (n.startsWith(".")) continue;
    const p = join(folder, n);
    const st = statSync(p);
    if (st.isFile() && isNiftiPath(n)) out.push({ name: caseName(n), path: p, kind: "nifti" });
    else if (st.isDirectory()) {
      if (inner) {
        out.push({ name: n, path: join(p, inner), kind: "nifti", folder: p }); // a missing file is reported when read
        continue;
      }
      const niftis = readdirSync(p).filter((f) => isNiftiPath(f) && !f.startsWith("."));
      if (niftis.length === 1) out.push({ name: n, path: join(p, niftis[0]!), kind: "nifti", folder: p });
      else if (isDicomFolder(p)) out.push({ name: n, path: p, kind: "dicom", folder: p });
      else if (niftis.length > 1)
        throw new PulmoError(`case folder ${p} holds ${niftis.length} NIfTI files (${niftis.join(", ")}): say which with --case-file NAME`);
    }
  }
  return out;
}

// Node file output: write to a temporary name beside the target, fsync, then rename (and fsync the
// folder, so the rename itself survives a power cut), so a crash never leaves a half-written file
// under the final name. Temporaries are `.NAME.HOST.PID.STAMP.tmp`; those left by a process of this
// host that no longer runs are removed by the next write to the same name (a shared folder's other
// hosts' temporaries are left alone: their process ids mean nothing here).
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";

const HOST = hostname().replace(/[^A-Za-z0-9-]/g, "-") || "host";

/** `.NAME.HOST.PID.STAMP.tmp`: the temporary a writer with process id PID on this host uses for NAME. */
export function tempName(path: string, pid = process.pid): string {
  return join(dirname(path), `.${basename(path)}.${HOST}.${pid}.${Date.now().toString(36)}.tmp`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/** Removes temporaries of `path` left by processes of this host that no longer run; returns their names. */
export function removeStaleTemps(path: string): string[] {
  const prefix = `.${basename(path)}.${HOST}.`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(".tmp")) continue;
    const pid = Number(name.slice(prefix.length).split(".")[0]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    try {
      unlinkSync(join(dirname(path), name));
      removed.push(name);
    } catch {
      // another writer removed it first
    }
  }
  return removed;
}

export function writeFileAtomic(path: string, data: Uint8Array): void {
  removeStaleTemps(path);
  const tmp = tempName(path);
  const fd = openSync(tmp, "w");
  try {
    let at = 0;
    while (at < data.byteLength) at += writeSync(fd, data, at, data.byteLength - at);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  syncFolder(dirname(path));
}

/** fsync of the folder makes the rename durable; not possible on every platform (Windows). */
function syncFolder(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // best effort
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

// Node side of the training loop (src/graph/fit.ts): the checkpoint writer and the terminal
// progress bar. src/graph stays free of node:fs and process.
import { writeFileAtomic } from "./files.ts";
import { fit, type FitOptions, type FitEpoch } from "../graph/fit.ts";

/** A `saveCheckpoint` for fit(): replaces `path` atomically (temporary file, fsync, rename), so a
 * crash or a later failure never leaves a half-written or missing checkpoint. */
export function checkpointFile(path: string): (bytes: Uint8Array) => void {
  return (bytes) => writeFileAtomic(path, bytes);
}

/** What terminalProgress writes to (process.stdout by default). */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

export interface TerminalProgressOptions {
  /** not a TTY: the least milliseconds between two running (non-final) lines; default 30 s */
  plainInterval?: number;
  /** force TTY or plain mode (default: stream.isTTY) */
  tty?: boolean;
}

/** A `progress` for fit(). On a TTY the running line is redrawn in place (carriage return, erase
 * to end of line, cut to the terminal width) and each final line ends with a newline. Otherwise
 * (a pipe, a log file) it writes plain lines only: every final line, and a running line at most
 * every `plainInterval` ms, never a control character. */
export function terminalProgress(stream: ProgressStream = process.stdout, opts: TerminalProgressOptions = {}): (line: string, final: boolean) => void {
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const interval = opts.plainInterval ?? 30_000;
  let lastPlain = Date.now();
  return (line, final) => {
    if (tty) {
      const width = stream.columns && stream.columns > 1 ? stream.columns - 1 : Infinity;
      stream.write(`\r${line.length > width ? line.slice(0, width) : line}\x1b[K${final ? "\n" : ""}`);
      return;
    }
    const now = Date.now();
    if (!final && now - lastPlain < interval) return;
    lastPlain = now;
    stream.write(`${line}\n`);
  };
}

export interface NodeFitOptions extends FitOptions {
  /** keep the best checkpoint at this path (atomic replace); overrides saveCheckpoint */
  checkpointPath?: string;
}

/** fit() with Node defaults: `checkpointPath` becomes an atomic checkpoint writer, and progress
 * goes to stdout (bar on a TTY, plain lines otherwise) unless `progress` is given. */
export function fitNode(o: NodeFitOptions): Promise<FitEpoch[]> {
  const { checkpointPath, ...rest } = o;
  return fit({
    ...rest,
    progress: o.progress ?? terminalProgress(),
    ...(checkpointPath !== undefined ? { saveCheckpoint: checkpointFile(checkpointPath) } : {}),
  });
}

// Progress bars for the CLI, on top of the training loop's terminalProgress: redrawn in place on a
// TTY, plain lines (at most one every few seconds, and the final one) in a pipe, a log or CI.
import { terminalProgress, type ProgressStream } from "../platform/training.ts";

export interface ProgressBar {
  /** `done` of `total` units finished; `note` is appended (e.g. the current case) */
  update(done: number, note?: string): void;
  /** the closing line (always written), e.g. "12 windows in 3.4 s" */
  finish(note?: string): void;
}

export interface ProgressBarOptions {
  stream?: ProgressStream;
  /** force TTY (redraw) or plain mode; default: a TTY that is not CI */
  tty?: boolean;
  /** plain mode: least milliseconds between two running lines (default 5000) */
  plainInterval?: number;
  /** width of the bar in characters (default 24) */
  width?: number;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const t = Math.round(seconds);
  const h = Math.floor(t / 3600),
    m = Math.floor((t % 3600) / 60),
    s = t % 60;
  const mm = String(m).padStart(2, "0"),
    ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A bar for `total` units of work labelled `label`, written to stderr by default (stdout keeps
 * the command's results). Redraws are throttled to 10 per second. */
export function progressBar(label: string, total: number, o: ProgressBarOptions = {}): ProgressBar {
  const stream = o.stream ?? process.stderr;
  const tty = o.tty ?? (Boolean(stream.isTTY) && !process.env.CI);
  const out = terminalProgress(stream, { tty, plainInterval: o.plainInterval ?? 5000 });
  const width = o.width ?? 24;
  const t0 = performance.now();
  let lastDraw = -Infinity;
  let last = 0;
  const line = (done: number, note?: string) => {
    const elapsed = (performance.now() - t0) / 1000;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const k = Math.round(frac * width);
    const eta = done > 0 && done < total ? ` ETA ${clock((elapsed * (total - done)) / done)}` : "";
    return `${label} [${"#".repeat(k)}${".".repeat(width - k)}] ${done}/${total} ${clock(elapsed)}${eta}${note ? ` ${note}` : ""}`;
  };
  return {
    update(done, note) {
      last = done;
      const now = performance.now();
      if (now - lastDraw < 100 && done < total) return;
      lastDraw = now;
      out(line(done, note), false);
    },
    finish(note) {
      out(line(last, note), true);
    },
  };
}

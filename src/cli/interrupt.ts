// Ctrl-C during a long command: the first SIGINT aborts the run's AbortSignal, so segmentation
// stops after the current window and training after the current step, with the GPU memory freed
// and no half-written output (writes are atomic); a second SIGINT exits at once.
export interface Interrupt {
  signal: AbortSignal;
  /** removes the SIGINT handler (call when the command ends) */
  release(): void;
}

export function interruptOnSigint(): Interrupt {
  const controller = new AbortController();
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(130);
    console.error("\ninterrupted: stopping after the current window or step (Ctrl-C again to quit now)");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  return { signal: controller.signal, release: () => process.off("SIGINT", onSigint) };
}

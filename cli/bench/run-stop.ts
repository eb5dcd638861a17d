// When a bench run stops: at its duration, when the caller's signal aborts (Ctrl-C), or when the run
// itself decides (e.g. the consumer reached --messages). One signal for all three.

export interface RunStop {
  readonly signal: AbortSignal;
  stop(): void;
  /** Clears the duration timer and detaches from the caller's signal. */
  dispose(): void;
}

export function createRunStop(callerSignal: AbortSignal | undefined, durationSec: number): RunStop {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  callerSignal?.addEventListener("abort", onAbort);
  if (callerSignal?.aborted) stop.abort();
  const deadline = setTimeout(() => stop.abort(), durationSec * 1000);
  return {
    signal: stop.signal,
    stop: () => stop.abort(),
    dispose: () => {
      clearTimeout(deadline);
      callerSignal?.removeEventListener("abort", onAbort);
    },
  };
}

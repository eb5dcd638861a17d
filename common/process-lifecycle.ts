// How every server process ends: SIGTERM/SIGINT run the role's close() once (long polls end, data is
// flushed, registrations removed), then the process exits 0; a second signal or a close() that
// hangs past the grace period exits non-zero so an orchestrator is never stuck.

import type { Logger } from "./logger.ts";

/** Upper bound on a graceful stop before the process gives up and exits 1. */
export const SHUTDOWN_GRACE_MS = 30_000;

export function runUntilSignalled(logger: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, "second signal during shutdown; exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      logger.error({ graceMs: SHUTDOWN_GRACE_MS }, "shutdown did not finish in time; exiting");
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    timer.unref();
    close().then(
      () => {
        logger.info("stopped");
        logger.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

import type { Logger } from "./logger";

/**
 * SIGTERM / SIGINT handling shared by every service: log, run `close` once,
 * exit 0 when it resolves (logging what it returns), 1 when it fails or takes
 * longer than `hardLimitMs`. The log is flushed before exiting, since the
 * destination is asynchronous.
 */
export function exitOnShutdownSignals(
  logger: Logger,
  // biome-ignore lint/suspicious/noConfusingVoidType: services pass `async () => { ... }` closes that return nothing.
  close: () => Promise<Record<string, unknown> | void>,
  hardLimitMs: number,
): void {
  let stopping = false;
  const exit = (code: number): void => {
    logger.flush(() => process.exit(code));
  };
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    setTimeout(() => {
      logger.error({ hardLimitMs }, "shutdown took too long; exiting");
      exit(1);
    }, hardLimitMs).unref();
    close().then(
      (fields) => {
        logger.info(fields ?? {}, "stopped");
        exit(0);
      },
      (err: unknown) => {
        logger.error({ err: err instanceof Error ? err.message : String(err) }, "shutdown failed");
        exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

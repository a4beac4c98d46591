import pino, { type Logger } from "pino";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * JSON lines on stdout, one logger per service, bigint-safe. Writes are
 * asynchronous: pino's synchronous writer retries a closed pipe (EPIPE) forever,
 * which would leave a service deaf to SIGTERM when its reader went away.
 */
export function createLogger(service: string, level: LogLevel = "info"): Logger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 0 });
  destination.on("error", () => undefined);
  return pino(
    {
      name: service,
      level,
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** A logger that drops everything: for unit tests and simulators. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

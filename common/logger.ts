// JSON logs (pino) to stdout, with the role and node bindings every line carries.

import { type Logger, pino } from "pino";

export type { Logger };

export interface LoggerOptions {
  role: string;
  level?: string;
  bindings?: Record<string, string | number>;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino({
    level: opts.level ?? process.env.RMQ_LOG_LEVEL ?? "info",
    base: { role: opts.role, pid: process.pid, ...opts.bindings },
    redact: ["password", "secretKey", "authorization", "*.password", "*.secretKey"],
  });
}

/** A logger that drops everything: for tests and library use without a configured logger. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * A pluggable logger (getty's `SetLogger` / `SetLoggerLevel`). The default is quiet: it prints warnings and
 * errors to the console and never payloads.
 *
 * @module
 */

/** Log levels, from most to least verbose. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** What the library logs through. */
export interface Logger {
  /** Verbose per-session detail. */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Lifecycle events. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Something went wrong but was handled (e.g. a close callback threw). */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Something went wrong and could not be reported elsewhere. */
  error(message: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };
let level: LogLevel = "warn";

function consoleAt(at: Exclude<LogLevel, "silent">) {
  return (message: string, fields?: Record<string, unknown>): void => {
    if (ORDER[at] < ORDER[level]) return;
    const line = `[getty] ${at} ${message}`;
    if (fields) console.error(line, fields);
    else console.error(line);
  };
}

const consoleLogger: Logger = {
  debug: consoleAt("debug"),
  info: consoleAt("info"),
  warn: consoleAt("warn"),
  error: consoleAt("error"),
};

let current: Logger = consoleLogger;

/** Replaces the logger (pass nothing to restore the console logger). */
export function setLogger(logger?: Logger): void {
  current = logger ?? consoleLogger;
}

/** The logger in use. */
export function getLogger(): Logger {
  return current;
}

/** Sets the console logger's level (default `"warn"`). */
export function setLoggerLevel(next: LogLevel): void {
  level = next;
}

/**
 * Structured JSON-lines logging and a per-key rate limiter ("logged once per source per interval",
 * architecture §6). No module-level state: loggers are created by main.ts and injected.
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** True when `level` would be written (lets hot paths skip building fields). */
  enabled(level: LogLevel): boolean;
  child(bindings: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Receives one JSON line (without newline). Default: process.stderr. */
  write?: (line: string) => void;
  bindings?: LogFields;
  now?: () => number;
}

function serialiseError(value: unknown): unknown {
  if (value instanceof Error) {
    const out: LogFields = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    return out;
  }
  return value;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const now = options.now ?? Date.now;
  const bindings = options.bindings ?? {};

  const log = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[level] < min) return;
    const record: LogFields = { time: new Date(now()).toISOString(), level, msg, ...bindings };
    if (fields) for (const k of Object.keys(fields)) record[k] = serialiseError(fields[k]);
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ time: record.time, level, msg, note: "unserialisable fields" });
    }
    write(line);
  };
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
    enabled: (level) => RANK[level] >= min && level !== "silent",
    child: (extra) => createLogger({ ...options, bindings: { ...bindings, ...extra } }),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger({ level: "silent", write: () => {} });

export interface RateLimiter {
  /**
   * True at most once per key per interval. When it returns true after suppressing, `suppressed`
   * tells how many calls were dropped for that key since the last allowed one.
   */
  allow(key: string, now?: number): { allowed: boolean; suppressed: number };
  clear(): void;
}

/**
 * Bounded: at most `maxKeys` keys are remembered; when full, the table is cleared (a flood from
 * many sources then logs once more per source rather than growing memory without bound).
 */
export function createRateLimiter(options: { intervalMs: number; maxKeys?: number }): RateLimiter {
  const maxKeys = options.maxKeys ?? 10_000;
  const seen = new Map<string, { at: number; suppressed: number }>();
  return {
    allow(key, now = Date.now()) {
      const entry = seen.get(key);
      if (entry && now - entry.at < options.intervalMs) {
        entry.suppressed++;
        return { allowed: false, suppressed: entry.suppressed };
      }
      const suppressed = entry?.suppressed ?? 0;
      if (!entry && seen.size >= maxKeys) seen.clear();
      seen.set(key, { at: now, suppressed: 0 });
      return { allowed: true, suppressed };
    },
    clear: () => seen.clear(),
  };
}

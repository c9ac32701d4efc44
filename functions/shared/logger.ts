/**
 * Structured JSON logger: one JSON object per line, as CloudWatch Logs Insights and the local
 * runner expect. Loggers are the one kind of module-level state the team rules allow.
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LoggerConfig {
  readonly service: string;
  readonly level?: LogLevel;
  /** Where lines go; defaults to stdout. Tests pass an array push. */
  readonly sink?: (line: string) => void;
  readonly now?: () => Date;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export function parseLogLevel(value: string | undefined, fallback: LogLevel = "info"): LogLevel {
  const lower = value?.trim().toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(lower ?? "") ? (lower as LogLevel) : fallback;
}

/** Errors do not serialise with JSON.stringify; keep name, message, code and stack. */
function plain(value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const code = (value as { code?: unknown }).code;
  return {
    name: value.name,
    message: value.message,
    ...(code === undefined ? {} : { code }),
    stack: value.stack,
  };
}

export function createLogger(config: LoggerConfig, base: LogFields = {}): Logger {
  const threshold = RANK[config.level ?? "info"];
  const sink = config.sink ?? ((line: string) => process.stdout.write(`${line}\n`));
  const now = config.now ?? (() => new Date());
  const write = (level: Exclude<LogLevel, "silent">, message: string, fields?: LogFields) => {
    if (RANK[level] < threshold) return;
    const record: LogFields = { level, time: now().toISOString(), service: config.service };
    for (const [key, value] of Object.entries({ ...base, ...fields })) record[key] = plain(value);
    record.message = message;
    try {
      sink(JSON.stringify(record));
    } catch {
      sink(JSON.stringify({ level, service: config.service, message, unserialisable: true }));
    }
  };
  return {
    debug: (message, fields) => write("debug", message, fields),
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
    child: (fields) => createLogger(config, { ...base, ...fields }),
  };
}

/**
 * The logging surface the local runtime needs. Structurally a subset of the agent's `Logger`
 * (`edge-agent/log.ts`), so the runner passes its logger straight in; tests pass `silentLog`.
 */
export interface LocalLog {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const noop = (): void => {};

export const silentLog: LocalLog = { debug: noop, info: noop, warn: noop, error: noop };

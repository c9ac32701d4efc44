/**
 * Agent counters. A fixed set of names initialised to 0 keeps the counter object's shape stable, so
 * `c.keepalives++` on the hot path is a plain property increment (no Map lookup, no allocation).
 */

export const AGENT_COUNTERS = [
  "datagrams_in",
  "datagrams_out",
  "datagrams_oversize",
  "decode_errors",
  "send_errors",
  "handler_errors",
  "registers",
  "registers_refused",
  "registers_unauthorized",
  "registers_duplicate",
  "keepalives",
  "keepalives_unknown",
  "keepalives_address_refused",
  "gps_reports",
  "alarm_reports",
  "alarms_refused",
  "alarms_address_refused",
  "alarm_port_datagrams",
  "alarm_port_ignored",
  "device_requests",
  "device_requests_unknown_command",
  "device_requests_unregistered",
  "duplicates",
  "platform_requests_ignored",
  "responses_matched",
  "responses_unmatched",
  "responses_mismatched",
  "commands_sent",
  "command_resends",
  "commands_ok",
  "commands_device_error",
  "commands_timeout",
  "commands_offline",
  "commands_unencodable",
  "outbound_too_large",
  "sessions_expired",
  "sessions_dropped",
  "address_changes",
  "events_emitted",
  "event_sink_errors",
  "report_sink_errors",
  "last_seen_flushed",
  "learn_failures",
] as const;

export type AgentCounter = (typeof AGENT_COUNTERS)[number];
export type Counters<K extends string> = { [N in K]: number };

export interface Metrics<K extends string> {
  /** Increment with `metrics.c.name++` on hot paths. */
  readonly c: Counters<K>;
  snapshot(): Record<string, number>;
}

export function createMetrics<K extends string>(names: readonly K[]): Metrics<K> {
  const c = {} as Counters<K>;
  for (const n of names) c[n] = 0;
  return { c, snapshot: () => ({ ...c }) };
}

export type AgentMetrics = Metrics<AgentCounter>;

export function createAgentMetrics(): AgentMetrics {
  return createMetrics(AGENT_COUNTERS);
}

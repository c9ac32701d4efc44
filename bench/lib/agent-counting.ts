/**
 * What the benchmarks' agent children share (bench/signalling/agent-child.ts,
 * bench/lib/counting-agent-child.ts, bench/fuzz/agent-child.ts): an event sink that counts device
 * events by type and drops them (the benchmarks measure the agent, not a sink), and the counters
 * they answer the parent with.
 */
import type { EdgeAgent } from "../../edge-agent/agent.ts";
import type { EventSink } from "../../edge-agent/ports.ts";
import type { ServerCounters } from "../signalling/protocol.ts";

export interface CountingAgentCounters extends ServerCounters {
  /** Device events emitted since start, by type (`offline:<reason>` for offline events). */
  events: Record<string, number>;
  /** process.memoryUsage() now, without forcing a collection. */
  rssBytes: number;
  heapUsedBytes: number;
}

/** A sink counting events by type (`offline:<reason>` for offline events); `events` is live. */
export function countingEventSink(): { sink: EventSink; events: Record<string, number> } {
  const events: Record<string, number> = {};
  return {
    events,
    sink: {
      emit(event) {
        const key = event.type === "offline" ? `offline:${event.reason}` : event.type;
        events[key] = (events[key] ?? 0) + 1;
      },
    },
  };
}

/** The agent's signalling counters, its sessions and this process's CPU (every agent child). */
export function agentServerCounters(
  agent: Pick<EdgeAgent, "metrics" | "sessions">,
): ServerCounters {
  const m = agent.metrics();
  const cpu = process.cpuUsage();
  return {
    datagramsIn: m.datagrams_in ?? 0,
    datagramsOut: m.datagrams_out ?? 0,
    keepalives: m.keepalives ?? 0,
    keepalivesUnknown: m.keepalives_unknown ?? 0,
    decodeErrors: m.decode_errors ?? 0,
    sendErrors: m.send_errors ?? 0,
    sessions: agent.sessions.size,
    cpuUs: cpu.user + cpu.system,
  };
}

/** `agentServerCounters`, the events so far and this process's raw memory. */
export function countingAgentCounters(
  agent: Pick<EdgeAgent, "metrics" | "sessions">,
  events: Record<string, number>,
): CountingAgentCounters {
  const mem = process.memoryUsage();
  return {
    ...agentServerCounters(agent),
    events: { ...events },
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
  };
}

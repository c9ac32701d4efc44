/**
 * The edge agent under test for the scale benchmarks (bench/register-storm, bench/soak): like
 * bench/signalling/agent-child.ts (createEdgeAgent + the UDP adapter, configuration from the
 * EHOME_* variables the parent passes as JSON in argv[2]), but it counts the device events it
 * emits by type (a false `offline` in a soak is a failure) and answers raw, unforced memory too.
 */
import { createEdgeAgent } from "../../edge-agent/agent.ts";
import { loadConfig } from "../../edge-agent/config.ts";
import { createLogger } from "../../edge-agent/log.ts";
import type { EventSink } from "../../edge-agent/ports.ts";
import { createUdpTransport } from "../../edge-agent/signalling/server.ts";
import { settledMemory } from "../signalling/memory.ts";
import type { ServerCounters, ServerReady } from "../signalling/protocol.ts";
import { serveParent } from "./child.ts";

export interface CountingAgentCounters extends ServerCounters {
  /** Device events emitted since start, by type (`offline:<reason>` for offline events). */
  events: Record<string, number>;
  /** process.memoryUsage() now, without forcing a collection. */
  rssBytes: number;
  heapUsedBytes: number;
}

async function main(): Promise<void> {
  const env = JSON.parse(process.argv[2] ?? "{}") as Record<string, string>;
  const config = loadConfig(env);
  const log = createLogger({ level: config.logLevel, bindings: { agentId: config.agentId } });
  const events: Record<string, number> = {};
  // Events are counted and dropped: the benchmarks measure the agent, not an event sink.
  const sink: EventSink = {
    emit(event) {
      const key = event.type === "offline" ? `offline:${event.reason}` : event.type;
      events[key] = (events[key] ?? 0) + 1;
    },
  };
  const agent = createEdgeAgent(config, {
    transport: createUdpTransport({ host: config.host, port: config.signalPort }),
    events: sink,
    log,
  });
  await agent.start();
  const address = agent.signalAddress();

  const counters = (): CountingAgentCounters => {
    const m = agent.metrics();
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    return {
      datagramsIn: m.datagrams_in ?? 0,
      datagramsOut: m.datagrams_out ?? 0,
      keepalives: m.keepalives ?? 0,
      keepalivesUnknown: m.keepalives_unknown ?? 0,
      decodeErrors: m.decode_errors ?? 0,
      sendErrors: m.send_errors ?? 0,
      sessions: agent.sessions.size,
      cpuUs: cpu.user + cpu.system,
      events: { ...events },
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
    };
  };

  const ready: ServerReady = { host: address.host, port: address.port, pid: process.pid };
  serveParent(ready, {
    handle(body) {
      const type = (body as { type: string }).type;
      if (type === "memory") return settledMemory(agent.sessions.size);
      if (type === "counters") return counters();
      throw new Error(`unknown request ${type}`);
    },
    close: () => agent.close(),
  });
}

await main();

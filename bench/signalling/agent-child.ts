/**
 * The edge agent under test, alone in its process so its memory is measured without the load
 * generator's: createEdgeAgent + the UDP adapter, composed as edge-agent/main.ts does, with the
 * configuration parsed from the EHOME_* variables the parent passes as JSON in argv[2].
 */
import { createEdgeAgent } from "../../edge-agent/agent.ts";
import { loadConfig } from "../../edge-agent/config.ts";
import { createLogger } from "../../edge-agent/log.ts";
import type { EventSink } from "../../edge-agent/ports.ts";
import { createUdpTransport } from "../../edge-agent/signalling/server.ts";
import { agentServerCounters } from "../lib/agent-counting.ts";
import { serveParent } from "../lib/child.ts";
import { settledMemory } from "./memory.ts";
import type { ServerCounters, ServerReady, ServerRequest } from "./protocol.ts";

async function main(): Promise<void> {
  const env = JSON.parse(process.argv[2] ?? "{}") as Record<string, string>;
  const config = loadConfig(env);
  const log = createLogger({ level: config.logLevel, bindings: { agentId: config.agentId } });
  let events = 0;
  // Events are counted and dropped: the benchmark measures signalling, not an event sink.
  const sink: EventSink = {
    emit() {
      events++;
    },
  };
  const agent = createEdgeAgent(config, {
    transport: createUdpTransport({ host: config.host, port: config.signalPort }),
    events: sink,
    log,
  });
  await agent.start();
  const address = agent.signalAddress();

  const counters = (): ServerCounters & { events: number } => ({
    ...agentServerCounters(agent),
    events,
  });

  const ready: ServerReady = { host: address.host, port: address.port, pid: process.pid };
  serveParent(ready, {
    handle(body) {
      const m = body as ServerRequest;
      switch (m.type) {
        case "memory":
          return settledMemory(agent.sessions.size);
        case "counters":
          return counters();
        default:
          throw new Error(`unknown request ${(m as { type: string }).type}`);
      }
    },
    close: () => agent.close(),
  });
}

await main();

/**
 * The edge agent under test for the scale benchmarks (bench/register-storm, bench/soak): like
 * bench/signalling/agent-child.ts (createEdgeAgent + the UDP adapter, configuration from the
 * EHOME_* variables the parent passes as JSON in argv[2]), but it counts the device events it
 * emits by type (a false `offline` in a soak is a failure) and answers raw, unforced memory too.
 */
import { createEdgeAgent } from "../../edge-agent/agent.ts";
import { loadConfig } from "../../edge-agent/config.ts";
import { createLogger } from "../../edge-agent/log.ts";
import { createUdpTransport } from "../../edge-agent/signalling/server.ts";
import { settledMemory } from "../signalling/memory.ts";
import type { ServerReady } from "../signalling/protocol.ts";
import { countingAgentCounters, countingEventSink } from "./agent-counting.ts";
import { serveParent } from "./child.ts";

export type { CountingAgentCounters } from "./agent-counting.ts";

async function main(): Promise<void> {
  const env = JSON.parse(process.argv[2] ?? "{}") as Record<string, string>;
  const config = loadConfig(env);
  const log = createLogger({ level: config.logLevel, bindings: { agentId: config.agentId } });
  // Events are counted and dropped: the benchmarks measure the agent, not an event sink.
  const { sink, events } = countingEventSink();
  const agent = createEdgeAgent(config, {
    transport: createUdpTransport({ host: config.host, port: config.signalPort }),
    events: sink,
    log,
  });
  await agent.start();
  const address = agent.signalAddress();

  const ready: ServerReady = { host: address.host, port: address.port, pid: process.pid };
  serveParent(ready, {
    handle(body) {
      const type = (body as { type: string }).type;
      if (type === "memory") return settledMemory(agent.sessions.size);
      if (type === "counters") return countingAgentCounters(agent, events);
      throw new Error(`unknown request ${type}`);
    },
    close: () => agent.close(),
  });
}

await main();

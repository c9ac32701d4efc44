/**
 * The edge agent under the live fuzz (bench/fuzz): createEdgeAgent with the signalling AND the
 * alarm UDP port (as edge-agent/main.ts binds them), configuration from the EHOME_* variables the
 * parent passes as JSON in argv[2], and an allowlist of the legitimate devices (argv[3]: JSON
 * `{prefix, count}`, ids from bench/signalling/datagrams.ts `deviceIdOf`) so that, with
 * EHOME_AUTO_PROVISION=false, nothing the fuzz invents may open a session. Device events and
 * reports are counted and dropped. Answers `counters` (raw memory, the agent's counters, events)
 * and `memory` (after full GCs).
 */
import { createEdgeAgent } from "../../edge-agent/agent.ts";
import { loadConfig } from "../../edge-agent/config.ts";
import { createLogger } from "../../edge-agent/log.ts";
import type { ReportSink } from "../../edge-agent/ports.ts";
import { createMemoryProvisioningSource } from "../../edge-agent/signalling/provisioning.ts";
import { createUdpTransport } from "../../edge-agent/signalling/server.ts";
import {
  type CountingAgentCounters,
  countingAgentCounters,
  countingEventSink,
} from "../lib/agent-counting.ts";
import { serveParent } from "../lib/child.ts";
import { deviceIdOf } from "../signalling/datagrams.ts";
import { settledMemory } from "../signalling/memory.ts";
import type { ServerReady } from "../signalling/protocol.ts";

export interface FuzzAgentReady extends ServerReady {
  alarmPort: number;
}

export interface FuzzAgentCounters extends CountingAgentCounters {
  /** Every agent counter (edge-agent/metrics.ts). */
  metrics: Record<string, number>;
  /** Reports (alarms and other device reports) handed to the report sink, by kind. */
  reports: Record<string, number>;
  externalBytes: number;
}

async function main(): Promise<void> {
  const env = JSON.parse(process.argv[2] ?? "{}") as Record<string, string>;
  const legit = JSON.parse(process.argv[3] ?? '{"prefix":"LEGIT","count":0}') as {
    prefix: string;
    count: number;
  };
  const config = loadConfig(env);
  const log = createLogger({ level: config.logLevel, bindings: { agentId: config.agentId } });
  const { sink, events } = countingEventSink();
  const reports: Record<string, number> = {};
  const reportSink: ReportSink = {
    report(r) {
      reports[r.kind] = (reports[r.kind] ?? 0) + 1;
    },
  };
  const provisioning = createMemoryProvisioningSource(
    Array.from({ length: legit.count }, (_, i) => ({ deviceId: deviceIdOf(legit.prefix, i) })),
  );
  const agent = createEdgeAgent(config, {
    transport: createUdpTransport({ host: config.host, port: config.signalPort }),
    alarmTransport: createUdpTransport({ host: config.host, port: config.alarmPort }),
    events: sink,
    reports: reportSink,
    provisioning,
    log,
  });
  await agent.start();
  const address = agent.signalAddress();

  const counters = (): FuzzAgentCounters => ({
    ...countingAgentCounters(agent, events),
    metrics: agent.metrics(),
    reports: { ...reports },
    externalBytes: process.memoryUsage().external,
  });

  const ready: FuzzAgentReady = {
    host: address.host,
    port: address.port,
    alarmPort: agent.alarmAddress()?.port ?? -1,
    pid: process.pid,
  };
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

import { createEdgeAgent, type EdgeAgent, type EdgeAgentDeps } from "../../../edge-agent/agent.ts";
import { type AgentConfig, loadConfig } from "../../../edge-agent/config.ts";
import type { DeviceReport } from "../../../edge-agent/ports.ts";
import type {
  Message,
  PlatformRequestMessage,
  ResponseMessage,
} from "../../../edge-agent/signalling/codec/index.ts";
import {
  type DeviceEvent,
  DeviceEvent as DeviceEventSchema,
} from "../../../lib/contracts/events.ts";
import { decodeAsDevice } from "./devices.ts";
import { createMemoryTransport, type MemoryTransport } from "./memory-transport.ts";

export interface Harness {
  agent: EdgeAgent;
  transport: MemoryTransport;
  config: AgentConfig;
  events: DeviceEvent[];
  reports: DeviceReport[];
  /** Decoded datagrams the agent sent to host:port, oldest first. */
  sentTo(port: number, host?: string): Message[];
  /** The last response sent to host:port. */
  lastResponse(port: number, host?: string): ResponseMessage;
  /** Platform requests sent to a port. */
  requestsTo(port: number, host?: string): PlatformRequestMessage[];
  eventsOf(type: DeviceEvent["type"], deviceId?: string): DeviceEvent[];
  close(): Promise<void>;
}

/** An agent on an in-memory transport. Learning is off unless the env turns it on. */
export async function startHarness(
  env: Record<string, string> = {},
  deps: Partial<EdgeAgentDeps> = {},
): Promise<Harness> {
  const config = loadConfig(
    { EHOME_LEARN_DEVICES: "false", EHOME_AGENT_ID: "agent-test", ...env },
    { hostname: "test", pid: 1 },
  );
  const transport = createMemoryTransport();
  const events: DeviceEvent[] = [];
  const reports: DeviceReport[] = [];
  const agent = createEdgeAgent(config, {
    transport,
    events: {
      emit(e) {
        // Every event the agent produces must satisfy the contract.
        events.push(DeviceEventSchema.parse(e));
      },
    },
    reports: { report: (r) => void reports.push(r) },
    ...deps,
  });
  await agent.start();
  const sentTo = (port: number, host = "10.1.1.1") =>
    transport.sent
      .filter((d) => d.port === port && d.host === host)
      .map((d) => decodeAsDevice(d.bytes));
  return {
    agent,
    transport,
    config,
    events,
    reports,
    sentTo,
    lastResponse(port, host) {
      const r = sentTo(port, host).filter((m): m is ResponseMessage => m.kind === "response");
      const last = r.at(-1);
      if (!last) throw new Error(`no response sent to ${port}`);
      return last;
    },
    requestsTo: (port, host) =>
      sentTo(port, host).filter((m): m is PlatformRequestMessage => m.kind === "platform-request"),
    eventsOf: (type, deviceId) =>
      events.filter((e) => e.type === type && (deviceId === undefined || e.deviceId === deviceId)),
    close: () => agent.close(),
  };
}

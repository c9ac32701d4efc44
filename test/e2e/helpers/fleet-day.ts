import type { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { vi } from "vitest";
import { createEdgeAgent } from "../../../edge-agent/agent.ts";
import type { SqsSender } from "../../../edge-agent/cloud/aws.ts";
import { createSqsEventSink } from "../../../edge-agent/cloud/sqs-event-sink.ts";
import { loadConfig } from "../../../edge-agent/config.ts";
import type { DatagramHandlers, DatagramTransport } from "../../../edge-agent/ports.ts";
import { BLOCKS, COMMANDS } from "../../../edge-agent/signalling/catalogue.ts";
import { DeviceEvent } from "../../../lib/contracts/events.ts";
import {
  decodeAsDevice,
  keepaliveDatagram,
  registerDatagram,
  responseDatagram,
} from "../../edge-agent/helpers/devices.ts";

/**
 * A simulated day of a device fleet at the edge, in fake time: the real agent core and the real
 * SQS event sink (batching, linger, per-device order), with an in-memory socket standing in for
 * the devices and a counting stand-in for SQS. Every device registers, answers the agent's learn
 * requests (GetServerInfo, GETDEVICEWORKSTATUS), then sends a KEEPALIVE every `keepAliveSeconds`
 * for 24 hours. What reaches "SQS" is what the agent would send to the device-events queue.
 */

export interface FleetDayOptions {
  devices: number;
  /** EHOME_* variables on top of the defaults (keepalive, last-seen flush, …). */
  env: Record<string, string>;
  /** Simulated duration; default 24 h. */
  seconds?: number;
  /** Fake clock start (epoch ms). */
  startMs: number;
  /** DeviceID prefix (runs that share a table need their own). */
  idPrefix: string;
}

export interface FleetDay {
  keepAliveSeconds: number;
  lastSeenFlushSeconds: number;
  /** KEEPALIVEs each device sent. */
  keepalivesPerDevice: number;
  /** Datagrams the agent answered during the keepalive phase (one per KEEPALIVE, nothing else). */
  keepaliveReplies: number;
  deviceIds: string[];
  /** Every event body the agent handed to SQS, in send order. */
  events: DeviceEvent[];
  /** Entries of each SendMessageBatch call, in order. */
  batches: number[];
}

const SERVER_INFO = BLOCKS.serverInfo.fields;
const WORK_STATUS = BLOCKS.workStatus.fields;

/** The device side of the in-memory socket: answers the two learn requests like a camera. */
function learnReply(bytes: Uint8Array, serial: string): Buffer | undefined {
  const m = decodeAsDevice(bytes);
  if (m.kind !== "platform-request") return undefined;
  if (m.commandId === "getDeviceConfig") {
    return responseDatagram(m.header.sequence, m.command, 200, {
      [COMMANDS.getDeviceConfig.reply.configXml]: {
        [BLOCKS.serverInfo.block]: {
          [SERVER_INFO.channelNumber]: "0",
          [SERVER_INFO.channelAmount]: "1",
          [SERVER_INFO.serialNumber]: serial,
          [SERVER_INFO.alarmInPortNum]: "1",
          [SERVER_INFO.alarmOutPortNum]: "1",
          [SERVER_INFO.diskNumber]: "1",
        },
      },
    });
  }
  if (m.commandId === "getWorkStatus") {
    return responseDatagram(m.header.sequence, m.command, 200, {
      [BLOCKS.workStatus.block]: {
        [WORK_STATUS.run]: "0",
        [WORK_STATUS.channelStatus]: { [WORK_STATUS.channel]: ["1-1-0-0-1024-0-1-1"] },
      },
    });
  }
  return undefined;
}

export async function simulateFleetDay(options: FleetDayOptions): Promise<FleetDay> {
  const seconds = options.seconds ?? 86_400;
  vi.useFakeTimers({
    now: options.startMs,
    toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"],
  });
  try {
    const config = loadConfig(
      { EHOME_AGENT_ID: "agent-cost", ...options.env },
      { hostname: "bench", pid: 1 },
    );
    const sentBatches: string[][] = [];
    const sqs = {
      send: async (command: SendMessageBatchCommand) => {
        const entries = command.input.Entries ?? [];
        sentBatches.push(entries.map((e) => e.MessageBody ?? ""));
        return { Successful: entries.map((e) => ({ Id: e.Id })), Failed: [] };
      },
    } as unknown as SqsSender;
    const sink = createSqsEventSink(
      { queueUrl: "https://sqs.invalid/device-events" },
      { sqs: () => sqs },
    );

    // The devices: 10.0.x.y:40000+i, one serial each.
    const devices = Array.from({ length: options.devices }, (_, i) => ({
      id: `${options.idPrefix}${String(i).padStart(5, "0")}`,
      host: `10.0.${i >> 8}.${(i & 255) + 1}`,
      port: 40_000 + i,
      serial: `DS-2CD2T45FWD-I820180101CCWR${String(i).padStart(9, "0")}`,
    }));
    const byAddress = new Map(devices.map((d) => [`${d.host}:${d.port}`, d]));
    let handlers: DatagramHandlers | undefined;
    let learning = true;
    let replies = 0;
    const transport: DatagramTransport = {
      async start(h) {
        handlers = h;
        return { host: "127.0.0.1", port: 7660 };
      },
      send(bytes, host, port) {
        replies++;
        // Only the registration phase carries platform requests; decoding every KEEPALIVE
        // answer of the day would only slow the test down (they are counted instead).
        if (!learning) return;
        const device = byAddress.get(`${host}:${port}`);
        const reply = device && learnReply(bytes, device.serial);
        if (reply) queueMicrotask(() => handlers?.onDatagram(reply, host, port));
      },
      address: () => ({ host: "127.0.0.1", port: 7660 }),
      async close() {},
    };

    const agent = createEdgeAgent(config, { transport, events: sink });
    await agent.start();
    const deliver = (bytes: Buffer, d: (typeof devices)[number]): void => {
      handlers!.onDatagram(bytes, d.host, d.port);
    };
    for (const [i, d] of devices.entries()) {
      deliver(registerDatagram({ deviceId: d.id, sequence: i + 1 }), d);
    }
    // Learning runs on microtasks; the sink lingers 100 ms before sending.
    await vi.advanceTimersByTimeAsync(500);
    learning = false;
    const keepalives = devices.map((d) => keepaliveDatagram(d.id, 1));
    const stepMs = config.keepAliveSeconds * 1000;
    replies = 0;
    let sentKeepalives = 0;
    let elapsed = 500;
    for (; elapsed + stepMs <= seconds * 1000; elapsed += stepMs) {
      await vi.advanceTimersByTimeAsync(stepMs);
      for (const [i, d] of devices.entries()) deliver(keepalives[i]!, d);
      sentKeepalives++;
    }
    // To the end of the day (the flush due at exactly 24 h included), plus the sink's linger.
    await vi.advanceTimersByTimeAsync(seconds * 1000 - elapsed + 1_000);
    const day = {
      batches: sentBatches.map((b) => b.length),
      events: sentBatches.flat().map((body) => DeviceEvent.parse(JSON.parse(body))),
    };
    const ids = devices.map((d) => d.id);
    if (agent.sessions.size !== devices.length) {
      throw new Error(`only ${agent.sessions.size} of ${devices.length} sessions survived the day`);
    }
    await agent.close();
    await sink.close();
    return {
      keepAliveSeconds: config.keepAliveSeconds,
      lastSeenFlushSeconds: config.lastSeenFlushSeconds,
      keepalivesPerDevice: sentKeepalives,
      keepaliveReplies: replies,
      deviceIds: ids,
      ...day,
    };
  } finally {
    vi.useRealTimers();
  }
}

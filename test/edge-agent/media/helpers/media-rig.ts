import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, type Socket } from "node:net";
import { expect } from "vitest";
import { createEdgeAgent, type EdgeAgent } from "../../../../edge-agent/agent.ts";
import { loadConfig } from "../../../../edge-agent/config.ts";
import {
  createMediaManager,
  type MediaManager,
  type MediaManagerConfig,
  type MediaManagerDeps,
} from "../../../../edge-agent/media/manager.ts";
import { createPortPool, type PortPool } from "../../../../edge-agent/media/port-pool.ts";
import { COMMANDS, type CommandId } from "../../../../edge-agent/signalling/catalogue.ts";
import { readFields } from "../../../../edge-agent/signalling/codec/index.ts";
import { createUdpTransport } from "../../../../edge-agent/signalling/server.ts";
import { StreamEvent } from "../../../../lib/contracts/media.ts";
import { decodeAsDevice, registerDatagram, responseDatagram } from "../../helpers/devices.ts";
import { freePortRange } from "./port-range.ts";

/**
 * A real agent on loopback UDP, a scripted fake device (a UDP socket that registers and answers
 * the media commands; a TCP client that pushes to the sink port), a port pool and a media
 * manager wired to them. Every test's `close()` checks the pool is full again.
 */

export interface DeviceRequest {
  commandId: CommandId;
  /** Params by catalogue field key. */
  fields: Record<string, string>;
}

/** What the device does with a stream-opening command (INVITESTREAM, PLAYBACK, DOWNLOAD). */
export interface OpenScript {
  /** Answer status; default 200. */
  status?: number;
  /** Session in the answer; default a fresh number. `""` answers without one. */
  session?: string;
  /** Do not answer at all. */
  silent?: boolean;
  /** After answering, connect to SinkPort (from `from`, default 127.0.0.1) and run this. */
  push?: (socket: Socket, session: number) => void | Promise<void>;
  /** Connect before answering (the answer follows once connected). */
  connectFirst?: boolean;
  /** Wait this long after answering before connecting. Default 5 ms. */
  connectDelayMs?: number;
}

export interface FakeDevice {
  readonly deviceId: string;
  readonly requests: DeviceRequest[];
  /** Scripts per command, used in order; the last one repeats. */
  scripts: Partial<Record<"inviteStream" | "playback" | "download", OpenScript[]>>;
  /** RecordedFile lines the device lists (QUERYRECORDEDFILES pages cut from it). */
  records: string[];
  /** Connections the device opened (closed at the end). */
  readonly sockets: Socket[];
  requestsOf(id: CommandId): DeviceRequest[];
}

export interface MediaRig {
  agent: EdgeAgent;
  device: FakeDevice;
  pool: PortPool;
  manager: MediaManager;
  events: StreamEvent[];
  eventsOf(streamId: string): StreamEvent[];
  close(): Promise<void>;
}

const OPENING = new Set(["inviteStream", "playback", "download"]);

export async function startMediaRig(
  options: {
    config?: Partial<MediaManagerConfig>;
    deps?: Partial<MediaManagerDeps>;
    poolSize?: number;
    acceptTimeoutMs?: number;
    /** More EHOME_* variables of the agent (e.g. a short keepalive timeout). */
    agentEnv?: Record<string, string>;
  } = {},
): Promise<MediaRig> {
  const agent = createEdgeAgent(
    loadConfig(
      {
        EHOME_AGENT_ID: "agent-media",
        EHOME_LEARN_DEVICES: "false",
        EHOME_COMMAND_RESEND_MS: "200",
        EHOME_COMMAND_TIMEOUT_MS: "600",
        ...options.agentEnv,
      },
      { hostname: "t", pid: 1 },
    ),
    {
      transport: createUdpTransport({ host: "127.0.0.1", port: 0 }),
      events: { emit() {} },
      // Media commands (`agent.commands.execute`) run through the manager built below.
      media: () => managerRef,
    },
  );
  let managerRef: MediaManager | undefined;
  await agent.start();
  const signal = agent.signalAddress();
  const udp: UdpSocket = createSocket("udp4");
  await new Promise<void>((r) => udp.bind(0, "127.0.0.1", () => r()));
  const deviceId = "cam-media-1";
  let nextSession = 679_647_373;
  const device: FakeDevice = {
    deviceId,
    requests: [],
    scripts: {},
    records: [],
    sockets: [],
    requestsOf: (id) => device.requests.filter((r) => r.commandId === id),
  };
  const answer = (sequence: number, command: string, status = 200, params?: object) =>
    udp.send(
      responseDatagram(sequence, command, status, params as never),
      signal.port,
      "127.0.0.1",
    );
  let registered!: () => void;
  const registeredP = new Promise<void>((r) => {
    registered = r;
  });
  udp.on("message", (bytes) => {
    const m = decodeAsDevice(bytes);
    if (m.kind === "response") {
      registered();
      return;
    }
    if (m.kind !== "platform-request" || !m.commandId) return;
    const id = m.commandId as CommandId;
    const entry = COMMANDS[id] as {
      command: string;
      params: Record<string, string>;
      reply: Record<string, string>;
    };
    const fields = readFields(m.params, entry.params) as Record<string, string>;
    device.requests.push({ commandId: id, fields });
    const seq = m.header.sequence;
    if (OPENING.has(id)) {
      const list = device.scripts[id as "inviteStream"] ?? [];
      const script: OpenScript = (list.length > 1 ? list.shift() : list[0]) ?? {};
      if (script.silent) return;
      const session = script.session ?? String(nextSession++);
      const reply = () =>
        answer(
          seq,
          entry.command,
          script.status ?? 200,
          script.status && script.status !== 200
            ? undefined
            : session === ""
              ? {}
              : { [entry.reply.session!]: session },
        );
      const open = () => {
        const s = connect({ port: Number(fields.sinkPort), host: "127.0.0.1" });
        s.on("error", () => {});
        device.sockets.push(s);
        return new Promise<Socket>((r) => s.once("connect", () => r(s)));
      };
      if (!script.push || (script.status ?? 200) !== 200) {
        reply();
        return;
      }
      const push = script.push;
      if (script.connectFirst) {
        void open().then((s) => {
          reply();
          return push(s, Number(session));
        });
      } else {
        reply();
        setTimeout(
          () => void open().then((s) => push(s, Number(session))),
          script.connectDelayMs ?? 5,
        );
      }
      return;
    }
    if (id === "queryRecordedFiles") {
      const start = Number(fields.startIdx ?? 0);
      const size = Number(fields.chunkSize ?? 8);
      const page = device.records.slice(start, start + size);
      answer(seq, entry.command, 200, { [entry.reply.recordedFile!]: page });
      return;
    }
    if (id === "byeStream") {
      answer(seq, entry.command, 200, { [entry.reply.session!]: fields.session });
      return;
    }
    answer(seq, entry.command, 200);
  });
  udp.send(registerDatagram({ deviceId, sequence: 1 }), signal.port, "127.0.0.1");
  await registeredP;

  const pool = createPortPool({
    mediaPorts: await freePortRange(options.poolSize ?? 4),
    host: "127.0.0.1",
  });
  const events: StreamEvent[] = [];
  const manager = createMediaManager(
    {
      agentId: "agent-media",
      publicHost: "127.0.0.1",
      idleSeconds: 30,
      acceptTimeoutMs: options.acceptTimeoutMs ?? 2_000,
      maxViewersPerStream: 4,
      maxViewers: 8,
      ...options.config,
    },
    {
      pool,
      send: (id, command, values) => agent.commands.send(id, command, values),
      device: (id) => {
        const s = agent.sessions.get(id);
        return s && { host: s.host, view: s.view };
      },
      // Every event must satisfy the contract.
      events: { emit: (e) => void events.push(StreamEvent.parse(e)) },
      ...options.deps,
    },
  );
  managerRef = manager;
  let closed = false;
  return {
    agent,
    device,
    pool,
    manager,
    events,
    eventsOf: (streamId) => events.filter((e) => e.streamId === streamId),
    async close() {
      if (closed) return;
      closed = true;
      await manager.close();
      for (const s of device.sockets) s.destroy();
      await pool.close();
      expect(pool.available()).toBe(pool.size);
      await agent.close();
      await new Promise<void>((r) => udp.close(() => r()));
    },
  };
}

/** Waits until `probe` is true (real time), or fails. */
export async function until(probe: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The process under test in the media relay benchmarks, forked by bench/media/throughput.ts and
 * live.ts (bench/lib/child.ts protocol), in one of two modes (argv[2]):
 *
 * - `agent`: the agent's media path composed as edge-agent/media/index.ts composes it (port pool,
 *   media manager, viewer HTTP server with a stream-token key), with the relay's default caps. The
 *   only stand-in is the signalling: `send` answers INVITESTREAM at once with a Session (the
 *   device's UDP answer), so a stream start costs what the media path costs. The bench device
 *   connects to the leased port and pushes; viewers GET `/streams/<id>.<ps|ts>?token=`.
 * - `pipe`: the baseline, a plain Node TCP relay: the first connection to the device port is piped
 *   (`socket.pipe(socket)`) into the first connection to the viewer port.
 *
 * Requests: `{op: "start", streams: [{streamId, deviceId}]}` → `[{port, session}]`;
 * `{op: "pipe"}` → `{devicePort, viewerPort}`; `{op: "sample", gc?}` → memory, CPU and counters.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { createMediaManager } from "../../edge-agent/media/manager.ts";
import type { MediaSend } from "../../edge-agent/media/media-commands.ts";
import { createPortPool } from "../../edge-agent/media/port-pool.ts";
import { createRelay, type Relay, type ViewerSink } from "../../edge-agent/media/relay.ts";
import { createViewerHttpServer } from "../../edge-agent/media/viewer-http.ts";
import { DEFAULT_VIEW } from "../../edge-agent/signalling/catalogue.ts";
import { buildFields } from "../../edge-agent/signalling/codec/index.ts";
import type { CommandOutcome } from "../../edge-agent/signalling/command-sender.ts";
import { serveParent } from "../lib/child.ts";

export interface AgentChildReady {
  pid: number;
  viewerPort: number;
  /** STREAM_TOKEN_KEY, hex: the parent mints viewer tokens with it. */
  tokenKeyHex: string;
}

export interface AgentSample {
  atMicros: number;
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  /** process.cpuUsage() since the child started, µs. */
  cpuUserMicros: number;
  cpuSystemMicros: number;
  streams: number;
  viewers: number;
  counters: Record<string, number>;
}

const mode = process.argv[2] ?? "agent";
const portMin = Number(process.argv[3] ?? 0);
const portCount = Number(process.argv[4] ?? 0);
const HOST = "127.0.0.1";

function sample(): AgentSample {
  const m = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    atMicros: Math.round((performance.timeOrigin + performance.now()) * 1000),
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed,
    externalBytes: m.external,
    arrayBuffersBytes: m.arrayBuffers,
    cpuUserMicros: cpu.user,
    cpuSystemMicros: cpu.system,
    streams: 0,
    viewers: 0,
    counters: {},
  };
}

/**
 * Sums over the live relays: their own buffers (splitter + GOP cache), drop counters, and what
 * their viewers' sinks hold undrained (`writableLength`: Node's buffers, not the kernel's).
 */
function relayTotals(relays: Set<Relay>, sinks: Set<ViewerSink>): Record<string, number> {
  let viewerBacklogBytes = 0;
  let viewerBacklogMaxBytes = 0;
  for (const k of sinks) {
    const n = k.writableLength ?? 0;
    viewerBacklogBytes += n;
    viewerBacklogMaxBytes = Math.max(viewerBacklogMaxBytes, n);
  }
  const t = {
    relayBufferedBytes: 0,
    relayGopBytes: 0,
    relayViewersDropped: 0,
    relayPacksDropped: 0,
    viewerBacklogBytes,
    viewerBacklogMaxBytes,
  };
  for (const r of relays) {
    const s = r.stats();
    t.relayBufferedBytes += r.bufferedBytes();
    t.relayGopBytes += s.gopBytes;
    t.relayViewersDropped += s.viewersDropped;
    t.relayPacksDropped += s.packsDropped;
  }
  return t;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function runAgent(): Promise<void> {
  const key = randomBytes(32);
  const pool = createPortPool({
    mediaPorts: { min: portMin, max: portMin + portCount - 1 },
    host: HOST,
    acceptTimeoutMs: 30_000,
  });
  let nextSession = 100_000_000;
  const dropped = new Map<string, number>();
  // The manager's own relays (its createRelay hook), to read their buffers and drop counters.
  const relays = new Set<Relay>();
  const sinks = new Set<ViewerSink>();
  const session = DEFAULT_VIEW.commands.inviteStream.reply;
  // The device's answer to INVITESTREAM / BYESTREAM, without the UDP round trip.
  const send = (async (_deviceId: string, commandId: string) => {
    const params =
      commandId === "inviteStream" ? buildFields(session, { session: String(nextSession++) }) : {};
    return { kind: "ok", status: 200, description: "OK", params } satisfies CommandOutcome;
  }) as MediaSend;
  const manager = createMediaManager(
    {
      agentId: "bench-agent",
      publicHost: HOST,
      idleSeconds: 600,
      acceptTimeoutMs: 30_000,
      maxViewersPerStream: 16,
      maxViewers: 1_000_000,
    },
    {
      pool,
      send,
      device: () => ({ host: HOST }),
      createRelay: (c) => {
        const r = createRelay(c);
        relays.add(r);
        // Track the viewers' sinks to sample their backlogs.
        const addViewer = r.addViewer.bind(r);
        r.addViewer = (sink, format, onClose) => {
          sinks.add(sink);
          return addViewer(sink, format, (reason) => {
            sinks.delete(sink);
            onClose?.(reason);
          });
        };
        return r;
      },
      // The periodic stream reports carry the relay's counters (viewersDropped per stream).
      events: { emit: (e) => void dropped.set(e.streamId, e.counters.viewersDropped) },
    },
  );
  const viewer = createViewerHttpServer({ host: HOST, port: 0, key }, { media: manager });
  const { port: viewerPort } = await viewer.start();
  const ready: AgentChildReady = {
    pid: process.pid,
    viewerPort,
    tokenKeyHex: key.toString("hex"),
  };
  serveParent(ready, {
    async handle(body) {
      const req = body as {
        op: string;
        streams?: Array<{ streamId: string; deviceId: string }>;
        gc?: boolean;
      };
      if (req.op === "start") {
        const out: Array<{ port: number; session: number }> = [];
        for (const s of req.streams ?? []) {
          const r = await manager.startStream(s.deviceId, {
            streamId: s.streamId,
            kind: "live",
            channel: 1,
            streamType: "main",
            transport: "tcp",
          });
          if (r.kind !== "ok") throw new Error(`start ${s.streamId}: ${JSON.stringify(r)}`);
          const result = r.result as { port: number; session: string };
          out.push({ port: result.port, session: Number(result.session) });
        }
        return out;
      }
      if (req.op === "sample") {
        if (req.gc) gc();
        return {
          ...sample(),
          streams: manager.streams().length,
          viewers: manager.viewers,
          counters: {
            ...manager.counters(),
            ...viewer.counters(),
            viewersDroppedReported: [...dropped.values()].reduce((a, b) => a + b, 0),
            ...relayTotals(relays, sinks),
          },
        } satisfies AgentSample;
      }
      throw new Error(`unknown op ${req.op}`);
    },
    async close() {
      await viewer.close();
      await manager.close();
      await pool.close();
    },
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, HOST, () => resolve((server.address() as { port: number }).port));
  });
}

async function runPipe(): Promise<void> {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("error", () => {});
    s.once("close", () => sockets.delete(s));
  };
  serveParent({ pid: process.pid, viewerPort: 0, tokenKeyHex: "" } satisfies AgentChildReady, {
    async handle(body) {
      const req = body as { op: string; gc?: boolean };
      if (req.op === "pipe") {
        let device: Socket | undefined;
        let view: Socket | undefined;
        const join = () => {
          if (device && view) device.pipe(view);
        };
        const d = createServer((s) => {
          track(s);
          device = s;
          join();
        });
        const v = createServer((s) => {
          track(s);
          view = s;
          join();
        });
        servers.push(d, v);
        return { devicePort: await listen(d), viewerPort: await listen(v) };
      }
      if (req.op === "sample") {
        if (req.gc) gc();
        return sample();
      }
      throw new Error(`unknown op ${req.op}`);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  });
}

if (mode === "pipe") await runPipe();
else await runAgent();

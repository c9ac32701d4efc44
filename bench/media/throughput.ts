/**
 * One-stream throughput (issue 4, bench/media): how fast the agent's real media path moves one
 * stream, next to a plain Node TCP pipe relay moving the same bytes in the same run.
 *
 * - agent: the device (this process) connects to the leased pool port and pushes `$`-RTP-framed PS
 *   as fast as its socket takes it → de-framer → relay → one PS viewer over HTTP on loopback (this
 *   process). The agent runs in its own process (agent-child.ts).
 * - pipe: the same wire bytes into a `socket.pipe(socket)` relay in its own process, read by a
 *   plain TCP viewer.
 *
 * Time: first byte written by the device → the viewer's end (the device closed after its last
 * byte; the relay flushes and ends the viewer). MB/s = device wire bytes / time (10^6 bytes).
 * One unmeasured warm-up of each relay, then repetitions alternating which runs first; medians.
 */
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { mintStreamToken, streamUrl } from "../../lib/contracts/media.ts";
import { freePortRange } from "../../test/edge-agent/media/helpers/port-range.ts";
import { type ChildHandle, startChild } from "../lib/child.ts";
import { median, round } from "../lib/stats.ts";
import type { AgentChildReady, AgentSample } from "./agent-child.ts";
import { createLiveSource } from "./live-source.ts";

const AGENT_CHILD = join(fileURLToPath(new URL(".", import.meta.url)), "agent-child.ts");
const HOST = "127.0.0.1";

export interface ThroughputOptions {
  /** Device bytes pushed per repetition, MiB. */
  streamMiB: number;
  repetitions: number;
  /** Bytes per device socket write. */
  writeBytes: number;
}

export interface ThroughputRun {
  agentMBps: number;
  pipeMBps: number;
  /** Bytes the agent's PS viewer received / PS bytes the device framed. */
  agentDelivered: number;
  pipeDelivered: number;
  /** Agent CPU (user + system) per MB of device bytes, ms. */
  agentCpuMsPerMB: number;
}

export interface ThroughputScenario {
  name: "one-stream-throughput";
  wireBytes: number;
  psBytes: number;
  writeBytes: number;
  repetitions: number;
  /** Median MB/s through the agent (device → de-framer → relay → HTTP PS viewer). */
  agentMBps: number;
  /** Median MB/s through the plain TCP pipe relay. */
  pipeMBps: number;
  /** agentMBps / pipeMBps (target ≥ 0.5). */
  ratio: number;
  target: number;
  /** Every agent repetition delivered every PS byte to the viewer. */
  agentComplete: boolean;
  /**
   * Repetitions in which the viewer got every PS byte. In the others the HTTP viewer fell more than
   * the relay's per-viewer cap (2 MiB) behind the device and the relay skipped packs for it, by
   * design (a viewer never slows the device).
   */
  agentCompleteRuns: number;
  /** Median share of the PS bytes the agent's viewer received. */
  agentDeliveredMedian: number;
  agentCpuMsPerMB: number;
  perRepetition: ThroughputRun[];
}

/** The device's wire bytes (header + framed packs) and the PS they carry. */
function buildWire(streamMiB: number, session: number): { wire: Buffer; psBytes: number } {
  const source = createLiveSource({ bitrateBps: 4_000_000, session });
  const parts: Buffer[] = [source.header()];
  let wireBytes = parts[0]!.length;
  let psBytes = 0;
  while (wireBytes < streamMiB * 1024 * 1024) {
    const f = source.nextFrame(0);
    parts.push(...f.wire);
    for (const w of f.wire) wireBytes += w.length;
    psBytes += f.psBytes;
  }
  return { wire: Buffer.concat(parts), psBytes };
}

async function push(socket: Socket, wire: Buffer, writeBytes: number): Promise<void> {
  for (let i = 0; i < wire.length; i += writeBytes) {
    if (!socket.write(wire.subarray(i, i + writeBytes))) {
      await new Promise<void>((r) => socket.once("drain", () => r()));
    }
  }
  socket.end();
}

function connected(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: HOST }, () => resolve(s));
    s.once("error", reject);
  });
}

/** GET the viewer URL; resolves once the headers are in, with a promise of the body's size. */
function httpViewer(url: string): Promise<{ done: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`viewer ${url}: HTTP ${res.statusCode}`));
        res.resume();
        return;
      }
      let bytes = 0;
      const done = new Promise<number>((r) => {
        res.on("data", (c: Buffer) => {
          bytes += c.length;
        });
        res.once("end", () => r(bytes));
        res.once("close", () => r(bytes));
      });
      resolve({ done });
    });
    req.once("error", reject);
    req.end();
  });
}

function tcpViewer(socket: Socket): Promise<number> {
  let bytes = 0;
  socket.on("data", (c: Buffer) => {
    bytes += c.length;
  });
  return new Promise((r) => socket.once("close", () => r(bytes)));
}

async function agentRun(
  agent: ChildHandle<AgentChildReady>,
  rep: number,
  wire: Buffer,
  psBytes: number,
  writeBytes: number,
): Promise<{ mbps: number; delivered: number; cpuMsPerMB: number }> {
  const streamId = rep < 0 ? "tp-warm" : `tp-${rep}`;
  const deviceId = `tp-dev-${rep < 0 ? "warm" : rep}`;
  const [lease] = await agent.request<Array<{ port: number; session: number }>>({
    op: "start",
    streams: [{ streamId, deviceId }],
  });
  const key = Buffer.from(agent.ready.tokenKeyHex, "hex");
  const token = mintStreamToken(key, { streamId, deviceId, expiresAt: 4e9 });
  const viewer = await httpViewer(streamUrl(HOST, agent.ready.viewerPort, streamId, "ps", token));
  // The session's SSRC is in the wire (the source was framed with this session's number).
  const device = await connected(lease!.port);
  device.on("error", () => {});
  const before = await agent.request<AgentSample>({ op: "sample" });
  const t0 = performance.now();
  await push(device, wire, writeBytes);
  const bytes = await viewer.done;
  const seconds = (performance.now() - t0) / 1000;
  const after = await agent.request<AgentSample>({ op: "sample" });
  device.destroy();
  const cpuMs =
    (after.cpuUserMicros - before.cpuUserMicros + after.cpuSystemMicros - before.cpuSystemMicros) /
    1000;
  return {
    mbps: wire.length / 1e6 / seconds,
    delivered: bytes / psBytes,
    cpuMsPerMB: cpuMs / (wire.length / 1e6),
  };
}

async function pipeRun(
  pipe: ChildHandle<AgentChildReady>,
  wire: Buffer,
  writeBytes: number,
): Promise<{ mbps: number; delivered: number }> {
  const ports = await pipe.request<{ devicePort: number; viewerPort: number }>({ op: "pipe" });
  const view = await connected(ports.viewerPort);
  const done = tcpViewer(view);
  const device = await connected(ports.devicePort);
  device.on("error", () => {});
  const t0 = performance.now();
  await push(device, wire, writeBytes);
  const bytes = await done;
  const seconds = (performance.now() - t0) / 1000;
  device.destroy();
  return { mbps: wire.length / 1e6 / seconds, delivered: bytes / wire.length };
}

export async function runThroughputBench(options: ThroughputOptions): Promise<ThroughputScenario> {
  const ports = await freePortRange(options.repetitions + 2);
  const agent = await startChild<AgentChildReady>(AGENT_CHILD, {
    name: "media agent",
    args: ["agent", String(ports.min), String(ports.max - ports.min + 1)],
  });
  const pipe = await startChild<AgentChildReady>(AGENT_CHILD, {
    name: "pipe relay",
    args: ["pipe"],
  });
  try {
    // Sessions are numbered from 100 000 000 by the agent child, one per start; the first start
    // is a warm-up of both relays (JIT), not measured.
    const warm = buildWire(Math.min(4, options.streamMiB), 100_000_000);
    await agentRun(agent, -1, warm.wire, warm.psBytes, options.writeBytes);
    await pipeRun(pipe, warm.wire, options.writeBytes);
    const runs: ThroughputRun[] = [];
    let wireBytes = 0;
    let psTotal = 0;
    for (let r = 0; r < options.repetitions; r++) {
      const { wire, psBytes } = buildWire(options.streamMiB, 100_000_001 + r);
      wireBytes = wire.length;
      psTotal = psBytes;
      let a: Awaited<ReturnType<typeof agentRun>>;
      let p: Awaited<ReturnType<typeof pipeRun>>;
      if (r % 2 === 0) {
        a = await agentRun(agent, r, wire, psBytes, options.writeBytes);
        p = await pipeRun(pipe, wire, options.writeBytes);
      } else {
        p = await pipeRun(pipe, wire, options.writeBytes);
        a = await agentRun(agent, r, wire, psBytes, options.writeBytes);
      }
      runs.push({
        agentMBps: round(a.mbps, 1),
        pipeMBps: round(p.mbps, 1),
        agentDelivered: round(a.delivered, 4),
        pipeDelivered: round(p.delivered, 4),
        agentCpuMsPerMB: round(a.cpuMsPerMB, 2),
      });
    }
    const agentMBps = median(runs.map((x) => x.agentMBps));
    const pipeMBps = median(runs.map((x) => x.pipeMBps));
    return {
      name: "one-stream-throughput",
      wireBytes,
      psBytes: psTotal,
      writeBytes: options.writeBytes,
      repetitions: options.repetitions,
      agentMBps: round(agentMBps, 1),
      pipeMBps: round(pipeMBps, 1),
      ratio: round(agentMBps / pipeMBps, 2),
      target: 0.5,
      agentComplete: runs.every((x) => x.agentDelivered === 1),
      agentCompleteRuns: runs.filter((x) => x.agentDelivered === 1).length,
      agentDeliveredMedian: round(median(runs.map((x) => x.agentDelivered)), 4),
      agentCpuMsPerMB: round(median(runs.map((x) => x.agentCpuMsPerMB)), 2),
      perRepetition: runs,
    };
  } finally {
    await agent.close();
    await pipe.close();
  }
}

/**
 * Concurrent live streams (issue 4, bench/media): N streams pushed at a paced bitrate (default 500
 * at 4 Mbit/s, 1 s GOP), each with a PS and a TS viewer reading everything plus one stalled PS
 * viewer that never reads. Three processes besides this one: the agent (agent-child.ts, the real
 * media path), the devices (load-child.ts pusher) and the viewers (load-child.ts viewer).
 *
 * Measured over the window after a warm-up: per healthy viewer the delivered bitrate and the delay
 * (arrival time − the send time stamped in the frame), and its growth over the window (a viewer
 * that does not keep up has a growing delay); how many stalled viewers the agent dropped (its
 * viewer count and the streams' `viewersDropped`); the agent's RSS and heap per stream (after a GC,
 * at the end of the window, when the stalled viewers should be gone; and the peak RSS), and its CPU.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { mintStreamToken, streamUrl } from "../../lib/contracts/media.ts";
import { freePortRange } from "../../test/edge-agent/media/helpers/port-range.ts";
import { type ChildHandle, startChild } from "../lib/child.ts";
import { median, quantile, round } from "../lib/stats.ts";
import type { AgentChildReady, AgentSample } from "./agent-child.ts";
import { wallMicros } from "./live-source.ts";
import type { PusherReport, ViewerReport } from "./load-child.ts";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const HOST = "127.0.0.1";

export interface LiveOptions {
  streams: number;
  /** Measured seconds (after the warm-up). */
  seconds: number;
  warmupSeconds: number;
  bitrateBps: number;
  /** Frames per GOP at 25 fps (25 = a 1 s GOP). */
  gopFrames: number;
}

export interface LiveScenario {
  name: "live-streams";
  streams: number;
  bitrateBps: number;
  gopFrames: number;
  seconds: number;
  warmupSeconds: number;
  /** Healthy viewers (PS + TS) and stalled ones. */
  viewers: { healthy: number; stalled: number };
  pusher: PusherReport;
  healthy: {
    /** Delivered bitrate of PS viewers / the pushed PS bitrate, median and minimum. */
    psBitrateRatioMedian: number;
    psBitrateRatioMin: number;
    tsBitrateBpsMedian: number;
    lagMedianMs: number;
    lagP95Ms: number;
    lagMaxMs: number;
    /** Largest delay growth of any healthy viewer over the window. */
    lagGrowthMaxMs: number;
    /** Healthy viewers that fell behind (PS < 90 % of the bitrate, or delay grew > 500 ms). */
    behind: number;
    closed: number;
  };
  stalled: {
    /** Stalled viewers the agent no longer counts at the end. */
    dropped: number;
    /** `viewersDropped` summed over the streams' last reports. */
    droppedReported: number;
    /** Seconds from the pushing start until the agent's viewer count reached 2 per stream. */
    allDroppedAfterSeconds: number | null;
  };
  agent: {
    rssBaselineBytes: number;
    rssEndBytes: number;
    rssPeakBytes: number;
    /** (RSS at the end, after GC − baseline) / streams. */
    rssPerStreamBytes: number;
    rssPeakPerStreamBytes: number;
    /** (heapUsed + external) delta / streams, after GC. */
    heapPerStreamBytes: number;
    targetPerStreamBytes: number;
    /** Agent CPU over the window, % of one core. */
    cpuPercent: number;
  };
}

function memDelta(a: AgentSample, b: AgentSample): number {
  return b.heapUsedBytes + b.externalBytes - (a.heapUsedBytes + a.externalBytes);
}

export async function runLiveBench(options: LiveOptions): Promise<LiveScenario> {
  const n = options.streams;
  const ports = await freePortRange(n);
  const children: ChildHandle<unknown>[] = [];
  try {
    const agent = await startChild<AgentChildReady>(join(HERE, "agent-child.ts"), {
      name: "media agent",
      args: ["agent", String(ports.min), String(n)],
      nodeFlags: ["--expose-gc"],
    });
    children.push(agent);
    const pusher = await startChild<{ pid: number }>(join(HERE, "load-child.ts"), {
      name: "devices",
      args: ["pusher"],
    });
    children.push(pusher);
    const viewerChild = await startChild<{ pid: number }>(join(HERE, "load-child.ts"), {
      name: "viewers",
      args: ["viewer"],
    });
    children.push(viewerChild);

    const baseline = await agent.request<AgentSample>({ op: "sample", gc: true });
    const ids = Array.from({ length: n }, (_, i) => ({
      streamId: `live-${i}`,
      deviceId: `cam-${i}`,
    }));
    const leases: Array<{ port: number; session: number }> = [];
    for (let i = 0; i < n; i += 50) {
      leases.push(
        ...(await agent.request<Array<{ port: number; session: number }>>({
          op: "start",
          streams: ids.slice(i, i + 50),
        })),
      );
    }
    const key = Buffer.from(agent.ready.tokenKeyHex, "hex");
    const viewers = ids.flatMap(({ streamId, deviceId }) => {
      const token = mintStreamToken(key, { streamId, deviceId, expiresAt: 4e9 });
      const url = (f: "ps" | "ts") => streamUrl(HOST, agent.ready.viewerPort, streamId, f, token);
      return [
        { url: url("ps"), format: "ps" as const, stalled: false },
        { url: url("ts"), format: "ts" as const, stalled: false },
        { url: url("ps"), format: "ps" as const, stalled: true },
      ];
    });
    for (let i = 0; i < viewers.length; i += 300) {
      await viewerChild.request({ op: "view", viewers: viewers.slice(i, i + 300) });
    }
    const pushStart = wallMicros();
    await pusher.request({
      op: "push",
      streams: leases,
      bitrateBps: options.bitrateBps,
      gopFrames: options.gopFrames,
    });

    const samples: AgentSample[] = [];
    let allDroppedAt: number | undefined;
    const until = pushStart + (options.warmupSeconds + options.seconds) * 1e6;
    const windowStart = pushStart + options.warmupSeconds * 1e6;
    while (wallMicros() < until) {
      await new Promise((r) => setTimeout(r, 1000));
      const s = await agent.request<AgentSample>({ op: "sample" });
      samples.push(s);
      if (allDroppedAt === undefined && s.viewers <= 2 * n) allDroppedAt = s.atMicros;
    }
    const windowEnd = wallMicros();
    const [viewerReports, pusherReport] = await Promise.all([
      viewerChild.request<ViewerReport[]>({
        op: "report",
        fromMicros: windowStart,
        toMicros: windowEnd,
      }),
      pusher.request<PusherReport>({ op: "report", fromMicros: windowStart, toMicros: windowEnd }),
    ]);
    const end = await agent.request<AgentSample>({ op: "sample", gc: true });
    await pusher.request({ op: "stop" });

    const inWindow = samples.filter((s) => s.atMicros >= windowStart);
    const first = inWindow[0] ?? samples[0] ?? end;
    const last = inWindow.at(-1) ?? end;
    const cpuMicros =
      last.cpuUserMicros - first.cpuUserMicros + last.cpuSystemMicros - first.cpuSystemMicros;
    const cpuWindow = Math.max(1, last.atMicros - first.atMicros);

    const healthy = viewerReports.filter((v) => !v.stalled);
    const ps = healthy.filter((v) => v.format === "ps");
    const pushed = pusherReport.psBitrateBpsMedian;
    const psRatios = ps.map((v) => v.bitrateBps / pushed);
    const behind = healthy.filter(
      (v) =>
        (v.format === "ps" && v.bitrateBps < 0.9 * pushed) || !(v.lagGrowthMs <= 500) || v.closed,
    ).length;
    const lagsMedian = healthy.map((v) => v.lagMedianMs);
    const rssPeak = Math.max(end.rssBytes, ...samples.map((s) => s.rssBytes));
    return {
      name: "live-streams",
      streams: n,
      bitrateBps: options.bitrateBps,
      gopFrames: options.gopFrames,
      seconds: options.seconds,
      warmupSeconds: options.warmupSeconds,
      viewers: { healthy: healthy.length, stalled: viewerReports.length - healthy.length },
      pusher: pusherReport,
      healthy: {
        psBitrateRatioMedian: round(median(psRatios), 3),
        psBitrateRatioMin: round(psRatios.length ? Math.min(...psRatios) : Number.NaN, 3),
        tsBitrateBpsMedian: round(
          median(healthy.filter((v) => v.format === "ts").map((v) => v.bitrateBps)),
        ),
        lagMedianMs: round(median(lagsMedian), 1),
        lagP95Ms: round(
          quantile(
            healthy.map((v) => v.lagP95Ms),
            0.95,
          ),
          1,
        ),
        lagMaxMs: round(Math.max(...healthy.map((v) => v.lagMaxMs)), 1),
        lagGrowthMaxMs: round(Math.max(...healthy.map((v) => v.lagGrowthMs)), 1),
        behind,
        closed: healthy.filter((v) => v.closed).length,
      },
      stalled: {
        dropped: Math.max(0, 3 * n - end.viewers - healthy.filter((v) => v.closed).length),
        droppedReported: end.counters.viewersDroppedReported ?? 0,
        allDroppedAfterSeconds:
          allDroppedAt === undefined ? null : round((allDroppedAt - pushStart) / 1e6, 1),
      },
      agent: {
        rssBaselineBytes: baseline.rssBytes,
        rssEndBytes: end.rssBytes,
        rssPeakBytes: rssPeak,
        rssPerStreamBytes: round((end.rssBytes - baseline.rssBytes) / n),
        rssPeakPerStreamBytes: round((rssPeak - baseline.rssBytes) / n),
        heapPerStreamBytes: round(memDelta(baseline, end) / n),
        targetPerStreamBytes: 512 * 1024,
        cpuPercent: round((cpuMicros / cpuWindow) * 100, 1),
      },
    };
  } finally {
    for (const c of children.reverse()) await c.close();
  }
}

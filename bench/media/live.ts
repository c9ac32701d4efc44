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
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { mintStreamToken, streamUrl } from "../../lib/contracts/media.ts";
import { freePortRange } from "../../test/edge-agent/media/helpers/port-range.ts";
import { type ChildHandle, startChild } from "../lib/child.ts";
import { median, quantile, round } from "../lib/stats.ts";
import type { AgentChildReady, AgentSample } from "./agent-child.ts";
import { wallMicros } from "./live-source.ts";
import type { LoadCpu, PusherReport, ViewerReport } from "./load-child.ts";

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
  /** Device processes and viewer processes (each). Default one per 500 streams. */
  loadProcesses?: number;
}

export interface LiveScenario {
  name: "live-streams";
  streams: number;
  bitrateBps: number;
  gopFrames: number;
  seconds: number;
  warmupSeconds: number;
  /** Device processes, and as many viewer processes. */
  loadProcesses: number;
  /**
   * The kernel's TCP socket memory during the run (all sockets of the machine; pages of 4 KiB):
   * its peak, the tcp_mem pressure threshold, and how many times TCP entered memory pressure.
   */
  kernelTcp?: { peakBytes: number; pressureBytes: number; pressuresDuringRun: number };
  /** CPU of each device / viewer process over the window, % of one core. */
  loadCpuPercent?: { devices: Array<number | null>; viewers: Array<number | null> };
  /** Healthy viewers (PS + TS) and stalled ones. */
  viewers: { healthy: number; stalled: number };
  pusher: PusherReport;
  healthy: {
    /** Delivered bitrate of PS viewers / the pushed PS bitrate, median and minimum. */
    psBitrateRatioMedian: number;
    psBitrateRatioMin: number;
    tsBitrateBpsMedian: number;
    lagMedianMs: number;
    /** Median of the PS viewers' median delays, and of the TS viewers'. */
    psLagMedianMs: number;
    tsLagMedianMs: number;
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
    /** `viewersDropped` summed over the relays. */
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
    /** Agent CPU per stream, % of one core (cpuPercent / streams): the extrapolation basis. */
    cpuPercentPerStream?: number;
    /** Agent CPU ms per MB (10^6) of PS the devices pushed in the window. */
    cpuMsPerPushedMB?: number;
    /** Undrained bytes in the viewers' sinks (Node's buffers) per stream, at the end / peak. */
    viewerBacklogPerStreamBytes?: number;
    viewerBacklogPeakPerStreamBytes?: number;
    /** The relays' own memory per stream at the end (splitter + last-GOP cache, PS + TS). */
    relayBufferedPerStreamBytes: number;
    /** Packs skipped for viewers over their buffer cap (the stalled ones, before the drop). */
    packsDropped: number;
  };
}

/**
 * The kernel's TCP memory (Linux): pages all TCP sockets hold (/proc/net/sockstat), the pressure
 * threshold (tcp_mem[1]) and how often TCP entered memory pressure (TcpExt TCPMemoryPressures).
 * Stalled viewers' send buffers (autotuned up to tcp_wmem max each) count here, not in the agent's
 * heap; past the threshold the kernel throttles every TCP socket on the machine.
 */
export interface TcpMemory {
  pages: number;
  pressurePages: number;
  pressures: number;
}

export function tcpMemory(): TcpMemory | undefined {
  try {
    const sockstat = readFileSync("/proc/net/sockstat", "utf8");
    const pages = Number(/^TCP:.* mem (\d+)/m.exec(sockstat)?.[1]);
    const mem = readFileSync("/proc/sys/net/ipv4/tcp_mem", "utf8").trim().split(/\s+/);
    const netstat = readFileSync("/proc/net/netstat", "utf8").split("\n");
    const names = netstat.find((l) => l.startsWith("TcpExt:"))?.split(" ") ?? [];
    const values = netstat.filter((l) => l.startsWith("TcpExt:"))[1]?.split(" ") ?? [];
    const k = names.indexOf("TCPMemoryPressures");
    return {
      pages,
      pressurePages: Number(mem[1]),
      pressures: k > 0 ? Number(values[k]) : Number.NaN,
    };
  } catch {
    return undefined;
  }
}

function maxFinite(values: number[]): number {
  const v = values.filter(Number.isFinite);
  return v.length ? Math.max(...v) : Number.NaN;
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
    // Devices and viewers in several processes when one would be the bottleneck.
    const procs = options.loadProcesses ?? Math.max(1, Math.ceil(n / 500));
    const pushers: ChildHandle<{ pid: number }>[] = [];
    const viewerChildren: ChildHandle<{ pid: number }>[] = [];
    for (let i = 0; i < procs; i++) {
      const pusher = await startChild<{ pid: number }>(join(HERE, "load-child.ts"), {
        name: `devices ${i}`,
        args: ["pusher"],
      });
      children.push(pusher);
      pushers.push(pusher);
      const viewerChild = await startChild<{ pid: number }>(join(HERE, "load-child.ts"), {
        name: `viewers ${i}`,
        args: ["viewer"],
      });
      children.push(viewerChild);
      viewerChildren.push(viewerChild);
    }
    const part = <T>(list: T[], i: number, per: number) =>
      list.filter((_, k) => Math.floor(k / per) % procs === i);

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
    await Promise.all(
      viewerChildren.map(async (c, i) => {
        // Each process gets the three viewers of its streams.
        const mine = part(viewers, i, 3);
        for (let k = 0; k < mine.length; k += 300) {
          await c.request({ op: "view", viewers: mine.slice(k, k + 300) });
        }
      }),
    );
    const pushStart = wallMicros();
    await Promise.all(
      pushers.map((c, i) =>
        c.request({
          op: "push",
          streams: part(
            leases.map((l, index) => ({ ...l, index })),
            i,
            1,
          ),
          bitrateBps: options.bitrateBps,
          gopFrames: options.gopFrames,
        }),
      ),
    );

    const loadCpu = () =>
      Promise.all([
        Promise.all(pushers.map((c) => c.request<LoadCpu>({ op: "cpu" }, 300_000))),
        Promise.all(viewerChildren.map((c) => c.request<LoadCpu>({ op: "cpu" }, 300_000))),
      ]);
    let loadCpuStart: Awaited<ReturnType<typeof loadCpu>> | undefined;
    const samples: AgentSample[] = [];
    const tcpAtStart = tcpMemory();
    let tcpPeakPages = tcpAtStart?.pages ?? 0;
    let allDroppedAt: number | undefined;
    const until = pushStart + (options.warmupSeconds + options.seconds) * 1e6;
    const windowStart = pushStart + options.warmupSeconds * 1e6;
    while (wallMicros() < until) {
      await new Promise((r) => setTimeout(r, 1000));
      const s = await agent.request<AgentSample>({ op: "sample" });
      samples.push(s);
      tcpPeakPages = Math.max(tcpPeakPages, tcpMemory()?.pages ?? 0);
      if (loadCpuStart === undefined && s.atMicros >= windowStart) loadCpuStart = await loadCpu();
      if (allDroppedAt === undefined && s.viewers <= 2 * n) allDroppedAt = s.atMicros;
    }
    const windowEnd = wallMicros();
    const tcpAtEnd = tcpMemory();
    const loadCpuEnd = await loadCpu();
    const pct = (a: LoadCpu[] | undefined, b: LoadCpu[]) =>
      b.map((e, k) => {
        const s = a?.[k];
        return s ? round(((e.cpuMicros - s.cpuMicros) / (e.atMicros - s.atMicros)) * 100, 1) : null;
      });
    const loadCpuPercent = {
      devices: pct(loadCpuStart?.[0], loadCpuEnd[0]),
      viewers: pct(loadCpuStart?.[1], loadCpuEnd[1]),
    };
    // Stop the devices first: a saturated machine answers the reports sooner.
    await Promise.all(pushers.map((c) => c.request({ op: "stop" }, 300_000)));
    const window = { op: "report", fromMicros: windowStart, toMicros: windowEnd };
    const [viewerLists, pusherReports] = await Promise.all([
      Promise.all(viewerChildren.map((c) => c.request<ViewerReport[]>(window, 300_000))),
      Promise.all(pushers.map((c) => c.request<PusherReport>(window, 300_000))),
    ]);
    const viewerReports = viewerLists.flat();
    const pusherReport: PusherReport = {
      streams: pusherReports.reduce((a, r) => a + r.streams, 0),
      framesSent: pusherReports.reduce((a, r) => a + r.framesSent, 0),
      psBitrateBpsMedian: round(median(pusherReports.map((r) => r.psBitrateBpsMedian))),
      lateFrames: pusherReports.reduce((a, r) => a + r.lateFrames, 0),
      skippedFrames: pusherReports.reduce((a, r) => a + r.skippedFrames, 0),
      maxBacklogBytes: Math.max(...pusherReports.map((r) => r.maxBacklogBytes)),
      closedByAgent: pusherReports.reduce((a, r) => a + r.closedByAgent, 0),
    };
    const end = await agent.request<AgentSample>({ op: "sample", gc: true }, 300_000);

    // CPU from the last sample before the window (or the first in it) to the end sample: a
    // saturated agent answers few samples.
    const before = samples.filter((s) => s.atMicros <= windowStart).at(-1);
    const first = before ?? samples[0] ?? baseline;
    const last = end;
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
      loadProcesses: procs,
      loadCpuPercent,
      ...(tcpAtStart && tcpAtEnd
        ? {
            kernelTcp: {
              peakBytes: tcpPeakPages * 4096,
              pressureBytes: tcpAtStart.pressurePages * 4096,
              pressuresDuringRun: tcpAtEnd.pressures - tcpAtStart.pressures,
            },
          }
        : {}),
      viewers: { healthy: healthy.length, stalled: viewerReports.length - healthy.length },
      pusher: pusherReport,
      healthy: {
        psBitrateRatioMedian: round(median(psRatios), 3),
        psBitrateRatioMin: round(psRatios.length ? Math.min(...psRatios) : Number.NaN, 3),
        tsBitrateBpsMedian: round(
          median(healthy.filter((v) => v.format === "ts").map((v) => v.bitrateBps)),
        ),
        lagMedianMs: round(median(lagsMedian), 1),
        psLagMedianMs: round(median(ps.map((v) => v.lagMedianMs)), 1),
        tsLagMedianMs: round(
          median(healthy.filter((v) => v.format === "ts").map((v) => v.lagMedianMs)),
          1,
        ),
        lagP95Ms: round(
          quantile(
            healthy.map((v) => v.lagP95Ms),
            0.95,
          ),
          1,
        ),
        lagMaxMs: round(maxFinite(healthy.map((v) => v.lagMaxMs)), 1),
        // A viewer with no stamp in the window's first or last quarter counts as behind.
        lagGrowthMaxMs: round(maxFinite(healthy.map((v) => v.lagGrowthMs)), 1),
        behind,
        closed: healthy.filter((v) => v.closed).length,
      },
      stalled: {
        dropped: Math.max(0, 3 * n - end.viewers - healthy.filter((v) => v.closed).length),
        droppedReported: end.counters.relayViewersDropped ?? 0,
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
        cpuPercentPerStream: round(((cpuMicros / cpuWindow) * 100) / n, 3),
        cpuMsPerPushedMB: round(
          cpuMicros /
            1000 /
            Math.max(1e-9, (pusherReport.psBitrateBpsMedian * n * (cpuWindow / 1e6)) / 8 / 1e6),
          2,
        ),
        viewerBacklogPerStreamBytes: round((end.counters.viewerBacklogBytes ?? 0) / n),
        viewerBacklogPeakPerStreamBytes: round(
          Math.max(0, ...samples.map((s) => s.counters.viewerBacklogBytes ?? 0)) / n,
        ),
        relayBufferedPerStreamBytes: round((end.counters.relayBufferedBytes ?? 0) / n),
        packsDropped: end.counters.relayPacksDropped ?? 0,
      },
    };
  } finally {
    for (const c of children.reverse()) await c.close();
  }
}

/** One run of the largest-count search (relay-index.ts `--max-search`). */
export interface LiveMaxRun {
  streams: number;
  behind: number;
  healthy: number;
  pushedBpsMedian: number;
  psBitrateRatioMin: number;
  lagMedianMs: number;
  lagGrowthMaxMs: number;
  agentCpuPercent: number;
  agentCpuPercentPerStream: number | undefined;
  heapPerStreamBytes: number;
  loadCpuPercent: LiveScenario["loadCpuPercent"];
  kernelTcp: LiveScenario["kernelTcp"];
  loadAverage1m: number;
}

export interface LiveMaxScenario {
  name: "live-max";
  bitrateBps: number;
  gopFrames: number;
  seconds: number;
  warmupSeconds: number;
  runs: LiveMaxRun[];
  /** The largest stream count whose healthy viewers all kept up; null when none did. */
  largestNoneBehind: number | null;
}

export function liveMaxRun(x: LiveScenario): LiveMaxRun {
  return {
    streams: x.streams,
    behind: x.healthy.behind,
    healthy: x.viewers.healthy,
    pushedBpsMedian: x.pusher.psBitrateBpsMedian,
    psBitrateRatioMin: x.healthy.psBitrateRatioMin,
    lagMedianMs: x.healthy.lagMedianMs,
    lagGrowthMaxMs: x.healthy.lagGrowthMaxMs,
    agentCpuPercent: x.agent.cpuPercent,
    agentCpuPercentPerStream: x.agent.cpuPercentPerStream,
    heapPerStreamBytes: x.agent.heapPerStreamBytes,
    loadCpuPercent: x.loadCpuPercent,
    kernelTcp: x.kernelTcp,
    loadAverage1m: round(loadavg()[0] ?? 0, 2),
  };
}

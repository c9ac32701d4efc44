import type { CountingAgentCounters } from "../lib/counting-agent-child.ts";
import { type Fleet, startFleet } from "../lib/fleet.ts";
import { type BenchmarkResult, startResult } from "../lib/output.ts";
import { round } from "../lib/stats.ts";
import type { MemorySample, RegisterResult } from "../signalling/protocol.ts";
import { AGENT_ENV, DEVICES_PER_GENERATOR } from "../signalling/run.ts";
import { runStep, type StepSettings, type StepSummary } from "../signalling/steps.ts";

/**
 * Soak (issue 7): a fleet keepaliving at its real period for minutes, against one agent process.
 * Every device sends a KEEPALIVE every `keepAliveSeconds` (the generators cycle through their
 * devices at devices ÷ period per second), in windows of `windowMs`; after each window the agent's
 * memory is sampled after full GCs. Measured: loss and p99 reply latency per window, agent CPU,
 * RSS and heap over time (the slope of a least-squares line after the first window: a leak shows as
 * a steady climb), and the device events the agent emitted meanwhile (a false `offline` is a
 * failure; `last-seen` is the coalesced write that reaches the cloud). Same-run baseline: the raw
 * UDP echo held at the same rate for one window with the same generators.
 */

export interface SoakOptions {
  quick: boolean;
  devices: number;
  /** Total keepalive time against the agent. */
  durationMs: number;
  windowMs: number;
  keepAliveSeconds: number;
  generators: number | undefined;
  command: string;
  log: (line: string) => void;
}

export const FULL_DEFAULTS = { devices: 100_000, durationMs: 1_800_000, windowMs: 60_000 } as const;
export const QUICK_DEFAULTS = { devices: 2_000, durationMs: 12_000, windowMs: 4_000 } as const;

export interface SoakWindow {
  /** Since the first window started. */
  atSeconds: number;
  sent: number;
  lost: number;
  lossPct: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  agentCpuPct: number;
  cpuUsPerMessage: number;
  /** After full GCs. */
  rssBytes: number;
  heapUsedBytes: number;
  sessions: number;
  /** Neighbours' CPU share of the machine during the window (null off Linux). */
  foreignCpuPct: number | null;
}

export interface SoakScenario {
  devices: number;
  generators: number;
  keepAliveSeconds: number;
  rate: number;
  registration: RegisterResult & { sessionsHeld: number };
  windows: SoakWindow[];
  sent: number;
  lost: number;
  lossPct: number;
  /** Worst window. */
  p99Ms: number;
  meanCpuPct: number;
  /** Least-squares slope over the windows after the first, bytes per minute. */
  rssSlopeBytesPerMin: number;
  heapSlopeBytesPerMin: number;
  /** Last window ÷ first window, after GC. */
  rssGrowthPct: number;
  heapGrowthPct: number;
  rssPerDeviceBytes: number;
  /** Events emitted during the keepalive phase (after registration), by type. */
  events: Record<string, number>;
  /** `offline:*` events during the keepalive phase: devices that kept their period must not go. */
  falseOffline: number;
  echo: { p50Ms: number; p99Ms: number; lossPct: number; cpuUsPerMessage: number };
  /** Agent p99 ÷ echo p99 at the same rate, and agent ÷ echo CPU per message. */
  p99Ratio: number;
  cpuRatio: number;
}

function slopePerMinute(points: ReadonlyArray<{ x: number; y: number }>): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60;
}

async function register(fleet: Fleet): Promise<RegisterResult[]> {
  return Promise.all(
    fleet.generators.map((g, k) =>
      g.request<RegisterResult>(
        {
          type: "register",
          first: 0,
          count: fleet.slices[k]!.count,
          window: 256,
          retryMs: 1000,
          maxSends: 5,
        },
        600_000,
      ),
    ),
  );
}

export async function runSoak(o: SoakOptions): Promise<BenchmarkResult<SoakScenario>> {
  const result = startResult("soak", o.quick ? "quick" : "full", o.command, ["edge-agent"]);
  const generators = o.generators ?? Math.max(2, Math.ceil(o.devices / DEVICES_PER_GENERATOR));
  const rate = Math.round(o.devices / o.keepAliveSeconds);
  const step: StepSettings = {
    durationMs: o.windowMs,
    idleMs: 300,
    maxDrainMs: 2_000,
    lossThresholdPct: 0.1,
    quietMaxWaitMs: 0,
  };
  const agentEnv = {
    ...AGENT_ENV,
    EHOME_AGENT_ID: "bench-soak",
    // The real period: the agent times a device out after 6 missed keepalives.
    EHOME_KEEPALIVE_SECONDS: String(o.keepAliveSeconds),
  };

  // Baseline first: the echo at the same rate, one window.
  let echo: StepSummary;
  {
    const fleet = await startFleet({ kind: "echo", devices: o.devices, generators, agentEnv });
    try {
      await register(fleet);
      echo = await runStep(rate, fleet.generators, fleet.server, step);
      o.log(`echo at ${rate}/s: p50 ${echo.p50Ms} ms, p99 ${echo.p99Ms} ms, loss ${echo.lossPct}%`);
    } finally {
      await fleet.close();
    }
  }

  const fleet = await startFleet({ kind: "agent", devices: o.devices, generators, agentEnv });
  try {
    const parts = await register(fleet);
    const held = await fleet.server.request<CountingAgentCounters>({ type: "counters" });
    const registration = {
      registered: parts.reduce((a, p) => a + p.registered, 0),
      failed: parts.reduce((a, p) => a + p.failed, 0),
      sends: parts.reduce((a, p) => a + p.sends, 0),
      refused: parts.reduce((a, p) => a + p.refused, 0),
      elapsedMs: Math.max(0, ...parts.map((p) => p.elapsedMs)),
      sessionsHeld: held.sessions,
    };
    o.log(`agent: ${registration.registered} registered, ${held.sessions} sessions held`);
    const eventsBefore = held.events;
    const windows: SoakWindow[] = [];
    const started = performance.now();
    // A fixed number of windows (each also drains its replies and samples memory, so the wall
    // time is a little longer than durationMs).
    const count = Math.max(1, Math.ceil(o.durationMs / o.windowMs));
    for (let i = 0; i < count; i++) {
      const atSeconds = round((performance.now() - started) / 1000, 1);
      const s = await runStep(rate, fleet.generators, fleet.server, step);
      const m = await fleet.server.request<MemorySample>({ type: "memory" });
      const w: SoakWindow = {
        atSeconds,
        sent: s.sent,
        lost: s.lost,
        lossPct: s.lossPct,
        p50Ms: s.p50Ms,
        p99Ms: s.p99Ms,
        maxMs: s.maxMs,
        agentCpuPct: s.serverCpuPct,
        cpuUsPerMessage: s.serverCpuUsPerMessage,
        rssBytes: m.rssBytes,
        heapUsedBytes: m.heapUsedBytes,
        sessions: m.sessions,
        foreignCpuPct: s.foreignCpuPct,
      };
      windows.push(w);
      o.log(
        `soak t=${atSeconds}s: sent ${w.sent}, lost ${w.lost}, p99 ${w.p99Ms} ms, CPU ${w.agentCpuPct}%, ` +
          `RSS ${round(w.rssBytes / 2 ** 20, 1)} MiB, heap ${round(w.heapUsedBytes / 2 ** 20, 1)} MiB, ` +
          `sessions ${w.sessions}`,
      );
    }
    const end = await fleet.server.request<CountingAgentCounters>({ type: "counters" });
    const events: Record<string, number> = {};
    for (const [k, v] of Object.entries(end.events)) {
      const d = v - (eventsBefore[k] ?? 0);
      if (d > 0) events[k] = d;
    }
    const falseOffline = Object.entries(events)
      .filter(([k]) => k.startsWith("offline"))
      .reduce((a, [, v]) => a + v, 0);
    const later = windows.slice(1);
    const pts = (pick: (w: SoakWindow) => number) =>
      later.map((w) => ({ x: w.atSeconds, y: pick(w) }));
    const first = windows[0]!;
    const last = windows.at(-1)!;
    const sent = windows.reduce((a, w) => a + w.sent, 0);
    const lost = windows.reduce((a, w) => a + w.lost, 0);
    const meanCpu = windows.reduce((a, w) => a + w.cpuUsPerMessage, 0) / windows.length;
    const scenario: SoakScenario = {
      devices: o.devices,
      generators: fleet.generators.length,
      keepAliveSeconds: o.keepAliveSeconds,
      rate,
      registration,
      windows,
      sent,
      lost,
      lossPct: sent === 0 ? 0 : round((100 * lost) / sent, 4),
      p99Ms: Math.max(...windows.map((w) => w.p99Ms)),
      meanCpuPct: round(windows.reduce((a, w) => a + w.agentCpuPct, 0) / windows.length, 1),
      rssSlopeBytesPerMin: Math.round(slopePerMinute(pts((w) => w.rssBytes))),
      heapSlopeBytesPerMin: Math.round(slopePerMinute(pts((w) => w.heapUsedBytes))),
      rssGrowthPct: round((100 * (last.rssBytes - first.rssBytes)) / first.rssBytes, 2),
      heapGrowthPct: round(
        (100 * (last.heapUsedBytes - first.heapUsedBytes)) / first.heapUsedBytes,
        2,
      ),
      rssPerDeviceBytes: Math.round(last.rssBytes / Math.max(1, last.sessions)),
      events,
      falseOffline,
      echo: {
        p50Ms: echo.p50Ms,
        p99Ms: echo.p99Ms,
        lossPct: echo.lossPct,
        cpuUsPerMessage: echo.serverCpuUsPerMessage,
      },
      p99Ratio: echo.p99Ms > 0 ? round(medianWindowP99(windows) / echo.p99Ms, 2) : 0,
      cpuRatio: echo.serverCpuUsPerMessage > 0 ? round(meanCpu / echo.serverCpuUsPerMessage, 2) : 0,
    };
    return result.finish(
      {
        devices: o.devices,
        durationMs: o.durationMs,
        windowMs: o.windowMs,
        keepAliveSeconds: o.keepAliveSeconds,
        rate,
        generators,
        agentEnv,
      },
      [scenario],
    );
  } finally {
    await fleet.close();
  }
}

/** The median window's p99 (one slow window on a shared machine should not define the ratio). */
function medianWindowP99(windows: readonly SoakWindow[]): number {
  const sorted = windows.map((w) => w.p99Ms).sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
}

import type { CountingAgentCounters } from "../lib/counting-agent-child.ts";
import { type Fleet, type ServerKind, startFleet } from "../lib/fleet.ts";
import { diffUdpCounters, readUdpCounters } from "../lib/machine.ts";
import { type BenchmarkResult, startResult } from "../lib/output.ts";
import { median, round } from "../lib/stats.ts";
import type { RegisterResult, ServerCounters } from "../signalling/protocol.ts";
import { AGENT_ENV, DEVICES_PER_GENERATOR } from "../signalling/run.ts";
import { type PlatformStormRun, stormThroughPlatform } from "./platform.ts";

/**
 * Register storm (issue 7): every device sends its REGISTER at the same moment (a site's power
 * comes back, an agent restarts), from its own loopback source address. Measured: the time until
 * the agent holds a session for every device, REGISTERs per second over that time, the REGISTERs
 * resent because a reply did not come within `retryMs` (the device's own retry, as real firmware
 * does), and the refused ones. The same-run baseline is a raw Node UDP echo answering the same
 * storm from the same generators: the ratio is agent REGISTERs/s ÷ echo replies/s.
 */

export interface StormOptions {
  quick: boolean;
  devices: number;
  repetitions: number;
  generators: number | undefined;
  /** A device resends its REGISTER when no reply came within this. Default 5000 (the simulator's). */
  retryMs: number;
  maxSends: number;
  /** Give up waiting for all-online after this. */
  timeoutMs: number;
  /** Also storm the whole local platform (agent → SQS → registry → DynamoDB → API). */
  platform: boolean;
  /** Platform storm: the first REGISTERs are spread evenly over this (issue 7: 30 s). */
  spreadMs: number;
  command: string;
  log: (line: string) => void;
}

export const FULL_DEFAULTS = { devices: 50_000, repetitions: 1, spreadMs: 30_000 } as const;
export const QUICK_DEFAULTS = { devices: 2_000, repetitions: 1, spreadMs: 5_000 } as const;

export interface StormRun {
  kind: ServerKind;
  devices: number;
  generators: number;
  /** Devices that got a reply (200 for the agent) within `maxSends` REGISTERs. */
  registered: number;
  failed: number;
  refused: number;
  sends: number;
  /** sends − devices: REGISTERs resent after `retryMs` without a reply. */
  retries: number;
  /** Until the last device got its reply (generators' view). */
  lastReplyMs: number;
  /** Until the agent held a session for every device (agent: polled every 50 ms; echo: lastReplyMs). */
  allOnlineMs: number | null;
  /** Devices ÷ allOnlineMs (the echo: replies ÷ lastReplyMs). */
  registersPerSecond: number;
  sessionsHeld: number;
  /** Datagrams the kernel dropped at a full receive queue during the storm (host-wide). */
  rcvbufDrops: number | null;
  /** Server CPU during the storm, ms (user + system). */
  serverCpuMs: number;
  /** Agent only: `registered` events emitted (one per device, sent to the registry). */
  registeredEvents: number | null;
  /** Agent only: heap after the storm, after GC, per session. */
  heapPerSessionBytes: number | null;
}

export interface StormScenario {
  devices: number;
  generators: number;
  repetitions: number;
  /** Medians over repetitions. */
  allOnlineMs: number | null;
  registersPerSecond: number;
  retries: number;
  refused: number;
  failed: number;
  echoRegistersPerSecond: number;
  /** Median of agent REGISTERs/s ÷ echo replies/s, per repetition. */
  ratio: number;
  runs: Array<{ agent: StormRun; echo: StormRun }>;
  /** The same storm through the whole local platform (once), or null when skipped. */
  platform: PlatformStormRun | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function stormOnce(kind: ServerKind, o: StormOptions, generators: number): Promise<StormRun> {
  const fleet: Fleet = await startFleet({
    kind,
    devices: o.devices,
    generators,
    // Sessions must outlive the whole measurement; nothing here depends on keepalives.
    agentEnv: { ...AGENT_ENV, EHOME_AGENT_ID: "bench-storm", EHOME_KEEPALIVE_SECONDS: "600" },
    idPrefix: "STORM",
  });
  try {
    const before = await fleet.server.request<MemoryLike>({ type: "memory" });
    const c0 = await fleet.server.request<ServerCounters>({ type: "counters" });
    const k0 = readUdpCounters();
    const started = performance.now();
    // Every REGISTER at once: each generator's window is its whole slice.
    const replies = Promise.all(
      fleet.generators.map((g, k) =>
        g.request<RegisterResult>(
          {
            type: "register",
            first: 0,
            count: fleet.slices[k]!.count,
            window: fleet.slices[k]!.count,
            retryMs: o.retryMs,
            maxSends: o.maxSends,
          },
          o.timeoutMs + o.retryMs * o.maxSends,
        ),
      ),
    );
    let allOnlineMs: number | null = null;
    if (kind === "agent") {
      for (;;) {
        const c = await fleet.server.request<ServerCounters>({ type: "counters" });
        if (c.sessions >= o.devices) {
          allOnlineMs = Math.round(performance.now() - started);
          break;
        }
        if (performance.now() - started > o.timeoutMs) break;
        await sleep(50);
      }
    }
    const parts = await replies;
    const lastReplyMs = Math.max(0, ...parts.map((p) => p.elapsedMs));
    const k1 = readUdpCounters();
    const c1 = await fleet.server.request<ServerCounters & Partial<CountingAgentCounters>>({
      type: "counters",
    });
    const after = await fleet.server.request<MemoryLike>({ type: "memory" });
    const registered = parts.reduce((a, p) => a + p.registered, 0);
    const sends = parts.reduce((a, p) => a + p.sends, 0);
    const online = kind === "agent" ? allOnlineMs : lastReplyMs;
    const run: StormRun = {
      kind,
      devices: o.devices,
      generators: fleet.generators.length,
      registered,
      failed: parts.reduce((a, p) => a + p.failed, 0),
      refused: parts.reduce((a, p) => a + p.refused, 0),
      sends,
      retries: sends - o.devices,
      lastReplyMs,
      allOnlineMs: online,
      registersPerSecond: online ? round((1000 * registered) / online) : 0,
      sessionsHeld: c1.sessions,
      rcvbufDrops: diffUdpCounters(k0, k1)?.rcvbufErrors ?? null,
      serverCpuMs: round((c1.cpuUs - c0.cpuUs) / 1000),
      registeredEvents: c1.events ? (c1.events.registered ?? 0) : null,
      heapPerSessionBytes:
        kind === "agent" && c1.sessions > 0
          ? round((after.heapUsedBytes - before.heapUsedBytes) / c1.sessions)
          : null,
    };
    o.log(
      `${kind} storm of ${o.devices}: ${registered} answered, all online in ${online ?? "–"} ms ` +
        `(${run.registersPerSecond}/s), ${run.retries} retries, ${run.refused} refused, ` +
        `rcvbuf drops ${run.rcvbufDrops ?? "–"}`,
    );
    return run;
  } finally {
    await fleet.close();
  }
}

interface MemoryLike {
  heapUsedBytes: number;
  rssBytes: number;
}

export async function runRegisterStorm(o: StormOptions): Promise<BenchmarkResult<StormScenario>> {
  const result = startResult("register-storm", o.quick ? "quick" : "full", o.command, [
    "edge-agent",
  ]);
  const generators = o.generators ?? Math.max(2, Math.ceil(o.devices / DEVICES_PER_GENERATOR));
  const runs: StormScenario["runs"] = [];
  for (let rep = 0; rep < o.repetitions; rep++) {
    // Alternate which server goes first, as bench/signalling does.
    const order: ServerKind[] = rep % 2 === 0 ? ["agent", "echo"] : ["echo", "agent"];
    const got: Partial<Record<ServerKind, StormRun>> = {};
    for (const kind of order) got[kind] = await stormOnce(kind, o, generators);
    runs.push({ agent: got.agent!, echo: got.echo! });
  }
  const ratios = runs.map((r) =>
    r.echo.registersPerSecond > 0 ? r.agent.registersPerSecond / r.echo.registersPerSecond : 0,
  );
  const onlineTimes = runs.map((r) => r.agent.allOnlineMs).filter((x): x is number => x !== null);
  const platform = o.platform
    ? await stormThroughPlatform({
        devices: o.devices,
        generators,
        spreadMs: o.spreadMs,
        retryMs: o.retryMs,
        maxSends: o.maxSends,
        timeoutMs: o.timeoutMs,
        log: o.log,
      })
    : null;
  const scenario: StormScenario = {
    devices: o.devices,
    generators,
    repetitions: o.repetitions,
    allOnlineMs: onlineTimes.length === runs.length ? median(onlineTimes) : null,
    registersPerSecond: median(runs.map((r) => r.agent.registersPerSecond)),
    retries: median(runs.map((r) => r.agent.retries)),
    refused: median(runs.map((r) => r.agent.refused)),
    failed: median(runs.map((r) => r.agent.failed)),
    echoRegistersPerSecond: median(runs.map((r) => r.echo.registersPerSecond)),
    ratio: round(median(ratios), 3),
    runs,
    platform,
  };
  return result.finish(
    {
      devices: o.devices,
      repetitions: o.repetitions,
      generators,
      retryMs: o.retryMs,
      maxSends: o.maxSends,
      timeoutMs: o.timeoutMs,
      platform: o.platform,
      spreadMs: o.spreadMs,
      agentEnv: AGENT_ENV,
    },
    [scenario],
  );
}

import { fileURLToPath } from "node:url";
import { type ChildHandle, startChild } from "../lib/child.ts";
import { startGenerators } from "../lib/fleet.ts";
import { diffUdpCounters, readUdpCounters, type UdpCounters } from "../lib/machine.ts";
import { type BenchmarkResult, startResult } from "../lib/output.ts";
import { round } from "../lib/stats.ts";
import { deviceIdOf } from "../signalling/datagrams.ts";
import type { MemorySample, RegisterResult } from "../signalling/protocol.ts";
import { AGENT_ENV } from "../signalling/run.ts";
import { runStep, type StepSettings, type StepSummary } from "../signalling/steps.ts";
import type { FuzzAgentCounters, FuzzAgentReady } from "./agent-child.ts";
import type { FuzzerProgress } from "./fuzzer-child.ts";

/**
 * Live fuzz (issue 7): one agent process (signalling and alarm ports, EHOME_AUTO_PROVISION=false
 * with the legitimate devices on its allowlist), a fleet of legitimate devices keepaliving at a
 * short period from their own loopback addresses (bench/signalling generator), and fuzz processes
 * firing `count` hostile datagrams (bench/fuzz/datagrams.ts) at both ports from 127.0.0.x. The
 * legitimate fleet is measured in windows before, during and after the fuzz; the agent's memory
 * (raw, every `sampleMs`) and counters are sampled throughout. Invariants: the agent is alive at
 * the end, no handler threw, every window answered legitimate keepalives with loss under
 * `maxLossPct`, no legitimate device went offline, no session beyond the allowlist, and memory
 * settled after the fuzz within `maxHeapGrowthBytes` of before with RSS never over `maxRssBytes`.
 */

export interface LiveFuzzOptions {
  quick: boolean;
  /** Fuzzed datagrams in total. */
  count: number;
  /** Fuzzed datagrams per second, all fuzz processes together (open loop): the most ... */
  rate: number;
  /** ... lowered to what the agent keeps up with when `adaptive`, never below `minRate`. */
  adaptive: boolean;
  minRate: number;
  /** Where the controller starts (default 2,000/s). */
  startRate?: number;
  /** EHOME_LOG_LEVEL of the agent (default `error`: what it could not answer shows). */
  agentLogLevel?: string;
  fuzzers: number;
  sourcesPerFuzzer: number;
  legitDevices: number;
  keepAliveSeconds: number;
  windowMs: number;
  sampleMs: number;
  seed: number;
  maxLossPct: number;
  maxHeapGrowthBytes: number;
  maxRssBytes: number;
  command: string;
  log: (line: string) => void;
}

export const FULL_DEFAULTS = {
  count: 1_000_000,
  rate: 20_000,
  fuzzers: 2,
  sourcesPerFuzzer: 8,
  legitDevices: 1_000,
  keepAliveSeconds: 5,
  windowMs: 5_000,
  sampleMs: 2_000,
} as const;

export const QUICK_DEFAULTS = {
  count: 20_000,
  rate: 8_000,
  fuzzers: 1,
  sourcesPerFuzzer: 4,
  legitDevices: 100,
  keepAliveSeconds: 2,
  windowMs: 1_000,
  sampleMs: 500,
} as const;

export const LIMIT_DEFAULTS = {
  adaptive: true,
  minRate: 500,
  seed: 42,
  maxLossPct: 1,
  maxHeapGrowthBytes: 16 * 2 ** 20,
  maxRssBytes: 512 * 2 ** 20,
} as const;

export interface MemoryPoint {
  /** Since the fuzz started. */
  atSeconds: number;
  /** Fuzzed datagrams sent so far. */
  fuzzSent: number;
  /** Fuzzed datagrams per second since the previous sample. */
  fuzzRate: number;
  /** Datagrams the agent read so far (both ports, legitimate and fuzz, since the fuzz began). */
  agentIn: number;
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  sessions: number;
}

export interface LegitWindow {
  phase: "before" | "during" | "after";
  atSeconds: number;
  sent: number;
  answered: number;
  rejected: number;
  lost: number;
  lossPct: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LegitPhase {
  windows: number;
  sent: number;
  answered: number;
  rejected: number;
  lost: number;
  lossPct: number;
  /** Median of the windows' p50, worst window's p99. */
  p50Ms: number;
  p99Ms: number;
}

export interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
}

export interface LiveFuzzScenario {
  count: number;
  targetRate: number;
  fuzzers: number;
  sources: string[];
  fuzz: {
    sent: number;
    bytes: number;
    sendErrors: number;
    /** Datagrams the agent sent back to the fuzz addresses (403s, REGISTER answers, ...). */
    replies: number;
    toAlarmPort: number;
    elapsedMs: number;
    achievedRate: number;
    /** Lowest rate the controller set (the target when the agent always kept up). */
    minRate: number;
    byKind: Record<string, number>;
  };
  agent: {
    alive: boolean;
    crash: string | null;
    /** Agent CPU (user + system) per datagram it read during the fuzz, µs. */
    cpuUsPerDatagram: number | null;
    /** Agent counter deltas over the fuzz phase (non-zero ones). */
    counters: Record<string, number>;
    /** Device events emitted from registration end to the end, by type. */
    events: Record<string, number>;
    reports: Record<string, number>;
    sessionsBefore: number;
    sessionsAfter: number;
    /**
     * Datagrams sent to the agent (fuzz and legitimate) that it never read: dropped by the kernel
     * at its full receive queue.
     */
    dropped: number | null;
    /** Host-wide kernel UDP counters over the fuzz phase (rcvbufErrors: dropped at a full queue). */
    kernel: UdpCounters | null;
  };
  memory: {
    before: MemorySample;
    after: MemorySample | null;
    peakRssBytes: number;
    peakHeapUsedBytes: number;
    heapGrowthBytes: number | null;
    rssGrowthBytes: number | null;
    curve: MemoryPoint[];
  };
  legit: {
    devices: number;
    keepAliveSeconds: number;
    rate: number;
    registration: RegisterResult;
    windows: LegitWindow[];
    before: LegitPhase;
    during: LegitPhase;
    after: LegitPhase;
    falseOffline: number;
    sessionsExpired: number;
  };
  invariants: Invariant[];
  pass: boolean;
}

/** How often the rate controller looks at the agent. */
const CONTROL_MS = 500;
/** Where the controller starts. */
const START_RATE = 2_000;

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

function phaseOf(windows: readonly LegitWindow[]): LegitPhase {
  const sent = windows.reduce((a, w) => a + w.sent, 0);
  const answered = windows.reduce((a, w) => a + w.answered, 0);
  const rejected = windows.reduce((a, w) => a + w.rejected, 0);
  const lost = windows.reduce((a, w) => a + w.lost, 0);
  const p50s = windows.map((w) => w.p50Ms).sort((a, b) => a - b);
  return {
    windows: windows.length,
    sent,
    answered,
    rejected,
    lost,
    lossPct: sent === 0 ? 0 : round((100 * lost) / sent, 3),
    p50Ms: p50s[Math.floor((p50s.length - 1) / 2)] ?? 0,
    p99Ms: Math.max(0, ...windows.map((w) => w.p99Ms)),
  };
}

function diffRecord(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    const d = v - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** Source addresses of fuzz process `k`: 127.0.0.2 upwards (the fleet uses 127.10.0.0/16). */
export function fuzzSources(k: number, perFuzzer: number): string[] {
  return Array.from({ length: perFuzzer }, (_, i) => `127.0.0.${2 + ((k * perFuzzer + i) % 250)}`);
}

export async function runLiveFuzz(o: LiveFuzzOptions): Promise<BenchmarkResult<LiveFuzzScenario>> {
  const result = startResult("fuzz", o.quick ? "quick" : "full", o.command, ["edge-agent"]);
  const agentEnv: Record<string, string> = {
    ...AGENT_ENV,
    EHOME_AGENT_ID: "bench-fuzz",
    EHOME_ALARM_PORT: "0",
    // Only the allowlisted fleet may register: a fuzzed REGISTER must not open a session.
    EHOME_AUTO_PROVISION: "false",
    EHOME_KEEPALIVE_SECONDS: String(o.keepAliveSeconds),
    EHOME_LOG_LEVEL: o.agentLogLevel ?? "error",
  };
  const legitIds = Array.from({ length: o.legitDevices }, (_, i) => deviceIdOf("LEGIT", i));
  const legitRate = Math.max(1, Math.round(o.legitDevices / o.keepAliveSeconds));
  const step: StepSettings = {
    durationMs: o.windowMs,
    idleMs: 300,
    maxDrainMs: 2_000,
    lossThresholdPct: o.maxLossPct,
    quietMaxWaitMs: 0,
  };
  const closers: Array<() => Promise<void>> = [];
  const agent = await startChild<FuzzAgentReady>(here("./agent-child.ts"), {
    name: "agent",
    nodeFlags: ["--expose-gc"],
    args: [JSON.stringify(agentEnv), JSON.stringify({ prefix: "LEGIT", count: o.legitDevices })],
  });
  closers.push(() => agent.close());
  try {
    // Generator and fuzz processes start side by side (each loads tsx: seconds on a busy machine).
    const fuzzers: ChildHandle<unknown>[] = [];
    const starting = Array.from({ length: o.fuzzers }, (_, k) =>
      startChild<unknown>(here("./fuzzer-child.ts"), { name: `fuzzer ${k}` }).then((f) => {
        closers.push(() => f.close());
        fuzzers[k] = f;
        return f.request({
          type: "init",
          host: agent.ready.host,
          signalPort: agent.ready.port,
          alarmPort: agent.ready.alarmPort,
          sources: fuzzSources(k, o.sourcesPerFuzzer),
          seed: o.seed + k,
          legitIds,
        });
      }),
    );
    const fleetStarting = startGenerators({
      target: { host: agent.ready.host, port: agent.ready.port },
      devices: o.legitDevices,
      generators: 1,
      idPrefix: "LEGIT",
    }).then((f) => {
      closers.push(() => f.close());
      return f;
    });
    // allSettled: every process that started is in `closers` before a failure propagates.
    const settled = await Promise.allSettled([fleetStarting, ...starting]);
    const failed = settled.find((x) => x.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const fleet = await fleetStarting;
    const registration = await fleet.generators[0]!.request<RegisterResult>(
      {
        type: "register",
        first: 0,
        count: o.legitDevices,
        window: 256,
        retryMs: 1000,
        maxSends: 5,
      },
      600_000,
    );
    o.log(`fuzz: ${registration.registered}/${o.legitDevices} legitimate devices registered`);
    const c0 = await agent.request<FuzzAgentCounters>({ type: "counters" });
    const memBefore = await agent.request<MemorySample>({ type: "memory" });

    const windows: LegitWindow[] = [];
    let t0 = performance.now();
    const legitWindow = async (phase: LegitWindow["phase"]): Promise<void> => {
      const atSeconds = round((performance.now() - t0) / 1000, 1);
      const s: StepSummary = await runStep(legitRate, fleet.generators, agent, step);
      windows.push({
        phase,
        atSeconds,
        sent: s.sent,
        answered: s.answered,
        rejected: s.rejected,
        lost: s.lost,
        lossPct: s.lossPct,
        p50Ms: s.p50Ms,
        p99Ms: s.p99Ms,
        maxMs: s.maxMs,
      });
      o.log(
        `fuzz: legit ${phase} t=${atSeconds}s sent ${s.sent}, answered ${s.answered}, lost ${s.lost}, ` +
          `p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms`,
      );
    };
    await legitWindow("before");

    // The fuzz, with the legitimate fleet keepaliving and the agent sampled alongside.
    const curve: MemoryPoint[] = [];
    let crash: string | null = null;
    let fuzzDone = false;
    const k0 = readUdpCounters();
    t0 = performance.now();
    // Open loop at the rate the agent keeps up with: every CONTROL_MS the agent's read count is
    // compared with what was offered; clearly behind → 60% of what it read, keeping up → 10% more
    // (up to the target), starting low. Without it a loaded machine overflows the agent's receive
    // queue and the fuzz measures the kernel dropping datagrams, not the agent. The queue (4 MiB,
    // ~900 fuzz datagrams) absorbs well under a second, so a neighbour's burst still drops some.
    let rate = o.adaptive ? Math.min(o.rate, o.startRate ?? START_RATE) : o.rate;
    let minRateSeen = rate;
    const per = Math.floor(o.count / o.fuzzers);
    const runs = Promise.all(
      fuzzers.map((f, k) =>
        f.request<FuzzerProgress>(
          {
            type: "run",
            count: k === 0 ? o.count - per * (o.fuzzers - 1) : per,
            rate: rate / o.fuzzers,
          },
          // At worst the whole count at the controller's floor.
          (1.5 * o.count * 1000) / Math.max(1, Math.min(o.rate, o.minRate)) + 120_000,
        ),
      ),
    ).finally(() => {
      fuzzDone = true;
    });
    let prev = { at: performance.now(), agentIn: 0, fuzzSent: 0 };
    let nextPointAt = 0;
    const setRate = async (r: number): Promise<void> => {
      rate = r;
      minRateSeen = Math.min(minRateSeen, r);
      await Promise.all(fuzzers.map((f) => f.request({ type: "rate", rate: r / o.fuzzers })));
    };
    const sample = async (record: boolean): Promise<void> => {
      const [c, ...p] = await Promise.all([
        agent.request<FuzzAgentCounters>({ type: "counters" }, 30_000),
        ...fuzzers.map((f) => f.request<FuzzerProgress>({ type: "progress" }, 30_000)),
      ]);
      const now = performance.now();
      const point: MemoryPoint = {
        atSeconds: round((now - t0) / 1000, 1),
        fuzzSent: p.reduce((a, x) => a + x.sent, 0),
        agentIn: (c!.metrics.datagrams_in ?? 0) - (c0.metrics.datagrams_in ?? 0),
        fuzzRate: 0,
        rssBytes: c!.rssBytes,
        heapUsedBytes: c!.heapUsedBytes,
        externalBytes: c!.externalBytes,
        sessions: c!.sessions,
      };
      const dt = Math.max(1e-3, (now - prev.at) / 1000);
      point.fuzzRate = Math.round((point.fuzzSent - prev.fuzzSent) / dt);
      if (o.adaptive && !fuzzDone) {
        const offered = point.fuzzSent - prev.fuzzSent + legitRate * dt;
        const read = point.agentIn - prev.agentIn;
        let next = rate;
        if (read >= 0.97 * offered) next = Math.min(o.rate, rate * 1.1);
        else if (read < 0.9 * offered) next = Math.max(o.minRate, 0.6 * (read / dt - legitRate));
        if (Math.abs(next - rate) > 0.02 * rate) await setRate(Math.round(next));
      }
      prev = { at: now, agentIn: point.agentIn, fuzzSent: point.fuzzSent };
      if (!record) return;
      curve.push(point);
      o.log(
        `fuzz: t=${point.atSeconds}s sent ${point.fuzzSent} (${point.fuzzRate}/s), agent read ${point.agentIn}, ` +
          `RSS ${round(point.rssBytes / 2 ** 20, 1)} MiB, heap ${round(point.heapUsedBytes / 2 ** 20, 1)} MiB, ` +
          `sessions ${point.sessions}`,
      );
    };
    const controlMs = Math.min(CONTROL_MS, o.sampleMs);
    const sampler = (async () => {
      while (!fuzzDone && crash === null) {
        const at = performance.now() - t0;
        const record = at >= nextPointAt;
        if (record) nextPointAt += o.sampleMs;
        await sample(record).catch((err: unknown) => {
          crash ??= String(err);
        });
        await new Promise((r) => setTimeout(r, controlMs));
      }
    })();
    const legit = (async () => {
      while (!fuzzDone && crash === null) {
        await legitWindow("during").catch((err: unknown) => {
          crash ??= String(err);
        });
      }
    })();
    let progress: FuzzerProgress[] = [];
    try {
      progress = await runs;
    } catch (err) {
      crash ??= String(err);
    }
    await Promise.all([sampler, legit]);
    const k1 = readUdpCounters();
    let c1: FuzzAgentCounters | undefined;
    let memAfter: MemorySample | null = null;
    if (crash === null) {
      try {
        // The last sample once the agent has read what is queued.
        await new Promise((r) => setTimeout(r, 500));
        await sample(true);
        await legitWindow("after");
        c1 = await agent.request<FuzzAgentCounters>({ type: "counters" }, 30_000);
        memAfter = await agent.request<MemorySample>({ type: "memory" }, 60_000);
      } catch (err) {
        crash = String(err);
      }
    }
    const fuzzSent = progress.reduce((a, x) => a + x.sent, 0);
    const fuzzElapsed = Math.max(1, ...progress.map((x) => x.elapsedMs));
    const byKind: Record<string, number> = {};
    for (const x of progress)
      for (const [kk, v] of Object.entries(x.byKind)) byKind[kk] = (byKind[kk] ?? 0) + (v ?? 0);
    const events = c1 ? diffRecord(c0.events, c1.events) : {};
    const falseOffline = Object.entries(events)
      .filter(([kk]) => kk.startsWith("offline"))
      .reduce((a, [, v]) => a + v, 0);
    const counters = c1 ? diffRecord(c0.metrics, c1.metrics) : {};
    const peakRss = Math.max(0, ...curve.map((p) => p.rssBytes));
    const peakHeap = Math.max(0, ...curve.map((p) => p.heapUsedBytes));
    const heapGrowth = memAfter ? memAfter.heapUsedBytes - memBefore.heapUsedBytes : null;
    const during = windows.filter((w) => w.phase === "during");
    const legitDuring = phaseOf(during);
    const mib = (b: number) => `${round(b / 2 ** 20, 1)} MiB`;

    const invariants: Invariant[] = [
      {
        name: "agent alive",
        ok: crash === null && c1 !== undefined,
        detail: crash ?? `pid ${agent.pid} answered after the fuzz`,
      },
      {
        name: "all fuzz sent",
        ok: fuzzSent === o.count,
        detail: `${fuzzSent} of ${o.count}`,
      },
      {
        name: "no handler error",
        ok: c1 !== undefined && (counters.handler_errors ?? 0) === 0,
        detail: `handler_errors ${counters.handler_errors ?? 0}`,
      },
      {
        name: "legitimate keepalives answered in every window",
        ok: windows.length >= 3 && windows.every((w) => w.answered > 0 && w.rejected === 0),
        detail: `${windows.length} windows, answered ${windows.map((w) => w.answered).join("/")}`,
      },
      {
        name: `legitimate loss during the fuzz < ${o.maxLossPct}%`,
        ok: legitDuring.lossPct < o.maxLossPct,
        detail: `${legitDuring.lost} of ${legitDuring.sent} (${legitDuring.lossPct}%)`,
      },
      {
        name: "no false offline",
        ok: c1 !== undefined && falseOffline === 0 && (counters.sessions_expired ?? 0) === 0,
        detail: `offline events ${falseOffline}, sessions expired ${counters.sessions_expired ?? 0}`,
      },
      {
        name: "no session beyond the allowlist",
        ok: c1 !== undefined && c1.sessions === registration.registered,
        detail: `${c1?.sessions ?? "?"} sessions, ${registration.registered} registered legitimately`,
      },
      {
        name: `heap after GC within ${mib(o.maxHeapGrowthBytes)} of before`,
        ok: heapGrowth !== null && heapGrowth <= o.maxHeapGrowthBytes,
        detail: heapGrowth === null ? "no sample" : `grew ${mib(heapGrowth)}`,
      },
      {
        name: `RSS never over ${mib(o.maxRssBytes)}`,
        ok: curve.length > 0 && peakRss <= o.maxRssBytes,
        detail: `peak ${mib(peakRss)}`,
      },
    ];
    const scenario: LiveFuzzScenario = {
      count: o.count,
      targetRate: o.rate,
      fuzzers: o.fuzzers,
      sources: fuzzers.flatMap((_, k) => fuzzSources(k, o.sourcesPerFuzzer)),
      fuzz: {
        sent: fuzzSent,
        bytes: progress.reduce((a, x) => a + x.bytes, 0),
        sendErrors: progress.reduce((a, x) => a + x.sendErrors, 0),
        replies: progress.reduce((a, x) => a + x.replies, 0),
        toAlarmPort: progress.reduce((a, x) => a + x.toAlarmPort, 0),
        elapsedMs: fuzzElapsed,
        achievedRate: Math.round(fuzzSent / (fuzzElapsed / 1000)),
        minRate: minRateSeen,
        byKind: Object.fromEntries(Object.entries(byKind).sort((a, b) => b[1] - a[1])),
      },
      agent: {
        alive: crash === null && c1 !== undefined,
        crash,
        cpuUsPerDatagram:
          c1 && c1.datagramsIn > c0.datagramsIn
            ? round((c1.cpuUs - c0.cpuUs) / (c1.datagramsIn - c0.datagramsIn), 1)
            : null,
        counters,
        events,
        reports: c1 ? diffRecord(c0.reports, c1.reports) : {},
        dropped: c1
          ? Math.max(
              0,
              fuzzSent +
                windows.reduce((a, w) => a + w.sent, 0) -
                (c1.datagramsIn - c0.datagramsIn),
            )
          : null,
        sessionsBefore: c0.sessions,
        sessionsAfter: c1?.sessions ?? -1,
        kernel: diffUdpCounters(k0, k1),
      },
      memory: {
        before: memBefore,
        after: memAfter,
        peakRssBytes: peakRss,
        peakHeapUsedBytes: peakHeap,
        heapGrowthBytes: heapGrowth,
        rssGrowthBytes: memAfter ? memAfter.rssBytes - memBefore.rssBytes : null,
        curve,
      },
      legit: {
        devices: o.legitDevices,
        keepAliveSeconds: o.keepAliveSeconds,
        rate: legitRate,
        registration,
        windows,
        before: phaseOf(windows.filter((w) => w.phase === "before")),
        during: legitDuring,
        after: phaseOf(windows.filter((w) => w.phase === "after")),
        falseOffline,
        sessionsExpired: counters.sessions_expired ?? 0,
      },
      invariants,
      pass: invariants.every((i) => i.ok),
    };
    for (const i of invariants) o.log(`fuzz: ${i.ok ? "ok  " : "FAIL"} ${i.name}: ${i.detail}`);
    return result.finish(
      {
        count: o.count,
        rate: o.rate,
        adaptive: o.adaptive,
        minRate: o.minRate,
        fuzzers: o.fuzzers,
        sourcesPerFuzzer: o.sourcesPerFuzzer,
        legitDevices: o.legitDevices,
        keepAliveSeconds: o.keepAliveSeconds,
        windowMs: o.windowMs,
        sampleMs: o.sampleMs,
        seed: o.seed,
        maxLossPct: o.maxLossPct,
        maxHeapGrowthBytes: o.maxHeapGrowthBytes,
        maxRssBytes: o.maxRssBytes,
        agentEnv,
      },
      [scenario],
    );
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
}

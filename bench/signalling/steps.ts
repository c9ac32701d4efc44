import { cpus } from "node:os";
import type { ChildHandle } from "../lib/child.ts";
import {
  emptyLatencyHistogram,
  type LatencyHistogram,
  latencyQuantileMs,
  mergeLatency,
} from "../lib/histogram.ts";
import {
  diffUdpCounters,
  readCpuTimes,
  readUdpCounters,
  type UdpCounters,
  waitForQuiet,
} from "../lib/machine.ts";
import { round } from "../lib/stats.ts";
import type { ServerCounters, ServerReady, StepResult } from "./protocol.ts";

/** One offered rate held for a while, summed over the generators. */
export interface StepSummary {
  /** KEEPALIVEs per second asked of the generators. */
  targetRate: number;
  /** KEEPALIVEs per second actually sent (first to last send). */
  offeredRate: number;
  /** Matched 200 replies per second (first send to last reply). */
  answeredRate: number;
  sent: number;
  answered: number;
  rejected: number;
  unmatched: number;
  lost: number;
  lossPct: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Server CPU per datagram it received (user + system, µs). */
  serverCpuUsPerMessage: number;
  /** Server CPU over the step as a share of one core. */
  serverCpuPct: number;
  generatorCpuUsPerMessage: number;
  /** Worst generator stall between send ticks, and the largest catch-up burst. */
  maxTickGapMs: number;
  maxBurst: number;
  server: {
    datagramsIn: number;
    datagramsOut: number;
    keepalivesUnknown: number;
    sendErrors: number;
  };
  /**
   * CPU used on this machine by processes other than the server and the generators, as a share of
   * all cores over the step (neighbours; null off Linux), and hypervisor steal. A failed step with
   * a high share says more about the machine than about the server.
   */
  foreignCpuPct: number | null;
  stealPct: number | null;
  /** Time spent before the step waiting for the neighbours to quieten, and their share then. */
  quietWaitMs: number;
  busyBeforePct: number | null;
  /** Host-wide UDP counter deltas: rcvbufErrors = datagrams dropped at a full receive queue. */
  kernel: UdpCounters | null;
  /** Loss below the threshold and no rejected KEEPALIVE. */
  pass: boolean;
  /** 1, or 2 for the repeat of a rate that failed once. */
  attempt: number;
}

export interface StepSettings {
  durationMs: number;
  idleMs: number;
  maxDrainMs: number;
  lossThresholdPct: number;
  /** Before each step, wait up to this long for the machine to be at most 20% busy (0: never). */
  quietMaxWaitMs: number;
}

export async function runStep(
  rate: number,
  generators: readonly ChildHandle<unknown>[],
  server: ChildHandle<ServerReady>,
  s: StepSettings,
): Promise<StepSummary> {
  const quiet = await waitForQuiet({ maxBusyPct: 20, sampleMs: 500, maxWaitMs: s.quietMaxWaitMs });
  const c0 = await server.request<ServerCounters>({ type: "counters" });
  const k0 = readUdpCounters();
  const cpu0 = readCpuTimes();
  const wall0 = performance.now();
  const parts = await Promise.all(
    generators.map((g) =>
      g.request<StepResult>(
        {
          type: "step",
          rate: rate / generators.length,
          durationMs: s.durationMs,
          idleMs: s.idleMs,
          maxDrainMs: s.maxDrainMs,
        },
        s.durationMs + s.maxDrainMs + 60_000,
      ),
    ),
  );
  const k1 = readUdpCounters();
  const cpu1 = readCpuTimes();
  const wallMs = performance.now() - wall0;
  const c1 = await server.request<ServerCounters>({ type: "counters" });

  const latency: LatencyHistogram = emptyLatencyHistogram();
  let sent = 0;
  let answered = 0;
  let rejected = 0;
  let unmatched = 0;
  let genCpu = 0;
  let maxTickGapMs = 0;
  let maxBurst = 0;
  let first = Number.POSITIVE_INFINITY;
  let lastSend = 0;
  let lastReply = 0;
  for (const p of parts) {
    mergeLatency(latency, p.latency);
    sent += p.sent;
    answered += p.answered;
    rejected += p.rejected;
    unmatched += p.unmatched;
    genCpu += p.cpuUs;
    maxTickGapMs = Math.max(maxTickGapMs, p.maxTickGapMs);
    maxBurst = Math.max(maxBurst, p.maxBurst);
    if (p.sent > 0) first = Math.min(first, p.firstSendAt);
    lastSend = Math.max(lastSend, p.lastSendAt);
    lastReply = Math.max(lastReply, p.lastReplyAt);
  }
  const sendSeconds = Math.max(1e-3, (lastSend - first) / 1000);
  const answerSeconds = Math.max(1e-3, (Math.max(lastReply, lastSend) - first) / 1000);
  const lost = Math.max(0, sent - answered - rejected);
  const lossPct = sent === 0 ? 0 : (100 * lost) / sent;
  const serverIn = c1.datagramsIn - c0.datagramsIn;
  const serverCpu = c1.cpuUs - c0.cpuUs;
  const capacityMs = cpus().length * wallMs;
  const foreignCpuPct =
    cpu0 && cpu1
      ? round(
          Math.max(
            0,
            (100 * (cpu1.busyMs - cpu0.busyMs - (serverCpu + genCpu) / 1000)) / capacityMs,
          ),
          1,
        )
      : null;
  const stealPct =
    cpu0 && cpu1 ? round((100 * (cpu1.stealMs - cpu0.stealMs)) / capacityMs, 1) : null;
  return {
    targetRate: rate,
    offeredRate: Math.round(sent / sendSeconds),
    answeredRate: Math.round(answered / answerSeconds),
    sent,
    answered,
    rejected,
    unmatched,
    lost,
    lossPct: round(lossPct, 3),
    p50Ms: round(latencyQuantileMs(latency, 0.5), 3),
    p99Ms: round(latencyQuantileMs(latency, 0.99), 3),
    maxMs: round(latency.maxUs / 1000, 3),
    serverCpuUsPerMessage: serverIn === 0 ? 0 : round(serverCpu / serverIn, 1),
    serverCpuPct: round((100 * serverCpu) / 1000 / (answerSeconds * 1000), 1),
    generatorCpuUsPerMessage: sent === 0 ? 0 : round(genCpu / sent, 1),
    maxTickGapMs,
    maxBurst,
    server: {
      datagramsIn: serverIn,
      datagramsOut: c1.datagramsOut - c0.datagramsOut,
      keepalivesUnknown: c1.keepalivesUnknown - c0.keepalivesUnknown,
      sendErrors: c1.sendErrors - c0.sendErrors,
    },
    foreignCpuPct,
    stealPct,
    quietWaitMs: quiet.waitedMs,
    busyBeforePct: quiet.busyPct,
    kernel: diffUdpCounters(k0, k1),
    pass: lossPct < s.lossThresholdPct && rejected === 0 && sent > 0,
    attempt: 1,
  };
}

/**
 * Finds the saturation point: the offered rates in order until one fails (loss ≥ threshold),
 * then `refine` bisections between the last passing and the first failing rate. A rate that fails
 * is run once more before it counts as failed: on a shared 2-core machine one scheduling stall of
 * a server process (100+ ms) overflows its receive queue at any rate above ~20k/s, and that is the
 * neighbours' doing, not the server's capacity. When the failed attempt also saw neighbours using
 * more than `busyNeighbourPct` of the machine, up to `busyRetries` attempts are made instead. Every
 * attempt stays in the result.
 */
export async function searchSaturation(
  rates: readonly number[],
  refine: number,
  run: (rate: number) => Promise<StepSummary>,
  retries = 1,
  busyRetries = 2,
  busyNeighbourPct = 10,
): Promise<StepSummary[]> {
  const steps: StepSummary[] = [];
  const attempt = async (rate: number): Promise<StepSummary> => {
    let s = await run(rate);
    steps.push(s);
    for (let k = 0; !s.pass; k++) {
      const disturbed = (s.foreignCpuPct ?? 0) > busyNeighbourPct;
      if (k >= (disturbed ? busyRetries : retries)) break;
      s = { ...(await run(rate)), attempt: k + 2 };
      steps.push(s);
    }
    return s;
  };
  let pass: StepSummary | undefined;
  let fail: StepSummary | undefined;
  for (const r of rates) {
    const s = await attempt(r);
    if (s.pass) pass = s;
    else {
      fail = s;
      break;
    }
  }
  for (let i = 0; i < refine && pass && fail; i++) {
    const mid = Math.round((pass.targetRate + fail.targetRate) / 2 / 500) * 500;
    if (mid <= pass.targetRate || mid >= fail.targetRate) break;
    const s = await attempt(mid);
    if (s.pass) pass = s;
    else fail = s;
  }
  return steps;
}

import { type BenchmarkResult, startResult } from "../lib/output.ts";
import { median, medianOf, round } from "../lib/stats.ts";
import type { StepSummary } from "./steps.ts";
import { runTarget, type TargetKind, type TargetRun, type TargetSettings } from "./target.ts";

/**
 * bench/signalling: KEEPALIVE throughput and reply latency of the edge agent holding N registered
 * sessions, next to a raw Node UDP echo measured in the same run by the same generators, and the
 * agent's memory per held session. See docs/BENCHMARKS.md for how to read the result.
 */

/** A process holds at most as many device sockets as it has descriptors (20,000 here). */
export const DEVICES_PER_GENERATOR = 17_000;

export interface SignallingBenchOptions {
  quick: boolean;
  devices: number[];
  repetitions: number;
  /** Offered rates tried in order until one fails, then `refine` bisections. */
  rates: number[];
  refine: number;
  stepMs: number;
  warmupMs: number;
  /** Generator processes; default max(2, ⌈devices / 17,000⌉). */
  generators: number | undefined;
  lossThresholdPct: number;
  /** Before each step, wait up to this long for neighbours to use at most 20% of the machine. */
  quietMaxWaitMs: number;
  idleMs: number;
  maxDrainMs: number;
  profileDir: string | undefined;
  command: string;
  log: (line: string) => void;
}

export const FULL_DEFAULTS = {
  devices: [10_000, 100_000],
  repetitions: 3,
  rates: [5_000, 10_000, 20_000, 40_000, 80_000, 160_000],
  refine: 3,
  stepMs: 3_000,
  warmupMs: 1_000,
} as const;

export const QUICK_DEFAULTS = {
  devices: [1_000],
  repetitions: 1,
  rates: [5_000, 20_000, 80_000],
  refine: 1,
  stepMs: 1_000,
  warmupMs: 300,
} as const;

/** The agent's configuration in the benchmark (all EHOME_* variables; see docs/configuration.md). */
export const AGENT_ENV: Record<string, string> = {
  EHOME_AGENT_ID: "bench",
  EHOME_HOST: "127.0.0.1",
  EHOME_PUBLIC_HOST: "127.0.0.1",
  EHOME_SIGNAL_PORT: "0",
  EHOME_AUTO_PROVISION: "true",
  // No session may expire while a long run cycles through 100k devices at low rates.
  EHOME_KEEPALIVE_SECONDS: "600",
  // Learning sends GETDEVICECONFIG/GETDEVICEWORKSTATUS after each REGISTER; the generator does not
  // answer them, so their resends would pollute the measurement (see docs/BENCHMARKS.md).
  EHOME_LEARN_DEVICES: "false",
  EHOME_LOG_LEVEL: "warn",
};

const TARGETS = {
  ratioMin: 0.3,
  lossPctBelowSaturation: 0,
  memoryPerSessionMaxBytes: 2048,
} as const;

export interface ServerFigures {
  /** Medians over the repetitions, at each repetition's saturation point. */
  offeredRate: number;
  answeredRate: number;
  lossPct: number;
  p50Ms: number;
  p99Ms: number;
  peakAnsweredRate: number;
  cpuUsPerMessage: number;
  /** Repetitions in which no offered rate failed (the true saturation is higher). */
  lowerBoundRuns: number;
}

export interface LadderRow {
  targetRate: number;
  agent: Pick<StepSummary, "answeredRate" | "lossPct" | "p50Ms" | "p99Ms"> | null;
  echo: Pick<StepSummary, "answeredRate" | "lossPct" | "p50Ms" | "p99Ms"> | null;
}

export interface SignallingScenario extends ServerFigures {
  devices: number;
  generators: number;
  repetitions: number;
  echo: ServerFigures;
  /** Median over repetitions of agent answeredRate / echo answeredRate at saturation. */
  ratio: number;
  ratios: number[];
  /** Median over repetitions of agent / echo highest answered rate (loss allowed). */
  peakRatio: number;
  /**
   * Echo CPU per datagram ÷ agent CPU per datagram at the same offered rate (the highest rate both
   * passed), median over repetitions: the share of the echo's per-core capacity the agent reaches,
   * independent of how fast the generators are.
   */
  cpuRatio: number;
  cpuRatioAtRate: number | null;
  /** (after − before) / N over registering all N devices, medians over repetitions. */
  rssPerSessionBytes: number;
  heapPerSessionBytes: number;
  /** Growth over the second half of the registrations only: the marginal cost of a session. */
  rssMarginalPerSessionBytes: number;
  heapMarginalPerSessionBytes: number;
  /** Datagrams lost by the agent at rates below its saturation, worst repetition. */
  lostBelowSaturation: number;
  /** Median figures at each of the fixed offered rates (both servers, same generators). */
  ladder: LadderRow[];
  targets: {
    ratio: { min: number; met: boolean };
    zeroLossBelowSaturation: { met: boolean };
    /** Judged on heap (all N) and RSS (second half); see rssPerSessionBytes for the all-N RSS. */
    memoryPerSession: { maxBytes: number; met: boolean };
  };
  runs: Array<{ agent: TargetRun; echo: TargetRun }>;
}

function figures(runs: TargetRun[]): ServerFigures {
  const sat = runs.map((r) => r.saturation);
  return {
    offeredRate: Math.round(medianOf(sat, (s) => s?.offeredRate ?? 0)),
    answeredRate: Math.round(medianOf(sat, (s) => s?.answeredRate ?? 0)),
    lossPct: round(
      medianOf(sat, (s) => s?.lossPct),
      3,
    ),
    p50Ms: round(
      medianOf(sat, (s) => s?.p50Ms),
      3,
    ),
    p99Ms: round(
      medianOf(sat, (s) => s?.p99Ms),
      3,
    ),
    peakAnsweredRate: Math.round(medianOf(runs, (r) => r.peakAnsweredRate)),
    cpuUsPerMessage: round(
      medianOf(sat, (s) => s?.serverCpuUsPerMessage),
      1,
    ),
    lowerBoundRuns: runs.filter((r) => r.saturationIsLowerBound).length,
  };
}

function ladderCell(runs: TargetRun[], rate: number): LadderRow["agent"] {
  const at = runs
    .map((r) => r.steps.findLast((s) => s.targetRate === rate))
    .filter((s): s is StepSummary => s !== undefined);
  // Only when every repetition reached this rate, so the median compares like with like.
  if (at.length < runs.length || at.length === 0) return null;
  return {
    answeredRate: Math.round(medianOf(at, (s) => s.answeredRate)),
    lossPct: round(
      medianOf(at, (s) => s.lossPct),
      3,
    ),
    p50Ms: round(
      medianOf(at, (s) => s.p50Ms),
      3,
    ),
    p99Ms: round(
      medianOf(at, (s) => s.p99Ms),
      3,
    ),
  };
}

/** The highest fixed rate that both servers passed in every repetition. */
function commonRate(runs: Array<{ agent: TargetRun; echo: TargetRun }>): number | null {
  const passed = (r: TargetRun) =>
    new Set(
      [...new Map(r.steps.map((x) => [x.targetRate, x])).values()]
        .filter((x) => x.pass)
        .map((x) => x.targetRate),
    );
  const sets = runs.flatMap((r) => [passed(r.agent), passed(r.echo)]);
  const common = [...(sets[0] ?? [])].filter((rate) => sets.every((set) => set.has(rate)));
  return common.length === 0 ? null : Math.max(...common);
}

export async function runSignallingBench(
  o: SignallingBenchOptions,
): Promise<BenchmarkResult<SignallingScenario>> {
  const result = startResult("signalling", o.quick ? "quick" : "full", o.command, [
    "edge-agent",
    "bench",
  ]);
  const scenarios: SignallingScenario[] = [];
  for (const devices of o.devices) {
    const generators = o.generators ?? Math.max(2, Math.ceil(devices / DEVICES_PER_GENERATOR));
    const settings: TargetSettings = {
      devices,
      generators,
      rates: o.rates,
      refine: o.refine,
      warmupMs: o.warmupMs,
      durationMs: o.stepMs,
      idleMs: o.idleMs,
      maxDrainMs: o.maxDrainMs,
      lossThresholdPct: o.lossThresholdPct,
      quietMaxWaitMs: o.quietMaxWaitMs,
      agentEnv: AGENT_ENV,
      profileDir: o.profileDir,
      log: o.log,
    };
    const runs: Array<{ agent: TargetRun; echo: TargetRun }> = [];
    for (let rep = 0; rep < o.repetitions; rep++) {
      // Alternate the order so a machine that drifts over time does not favour one side.
      const order: TargetKind[] = rep % 2 === 0 ? ["agent", "echo"] : ["echo", "agent"];
      const got: Partial<Record<TargetKind, TargetRun>> = {};
      for (const kind of order) {
        o.log(`— ${devices} devices, repetition ${rep + 1}/${o.repetitions}: ${kind}`);
        got[kind] = await runTarget(kind, settings);
      }
      runs.push({ agent: got.agent!, echo: got.echo! });
    }
    const agentRuns = runs.map((r) => r.agent);
    const echoRuns = runs.map((r) => r.echo);
    const ratios = runs.map((r) =>
      round(
        (r.agent.saturation?.answeredRate ?? 0) / Math.max(1, r.echo.saturation?.answeredRate ?? 0),
        3,
      ),
    );
    const agent = figures(agentRuns);
    const peakRatio = round(
      median(runs.map((r) => r.agent.peakAnsweredRate / Math.max(1, r.echo.peakAnsweredRate))),
      3,
    );
    const common = commonRate(runs);
    const cpuRatio =
      common === null
        ? Number.NaN
        : round(
            median(
              runs.map((r) => {
                const a = r.agent.steps.findLast((x) => x.targetRate === common)!;
                const e = r.echo.steps.findLast((x) => x.targetRate === common)!;
                return e.serverCpuUsPerMessage / Math.max(0.1, a.serverCpuUsPerMessage);
              }),
            ),
            3,
          );
    const rss = Math.round(medianOf(agentRuns, (r) => r.memory?.rssPerSessionBytes));
    const heap = Math.round(medianOf(agentRuns, (r) => r.memory?.heapPerSessionBytes));
    const lostBelowSaturation = Math.max(0, ...agentRuns.map((r) => r.lostBelowSaturation));
    const ratio = round(median(ratios), 3);
    const fixed = [...new Set(o.rates)].sort((a, b) => a - b);
    scenarios.push({
      devices,
      generators,
      repetitions: o.repetitions,
      ...agent,
      echo: figures(echoRuns),
      ratio,
      ratios,
      peakRatio,
      cpuRatio,
      cpuRatioAtRate: common,
      rssPerSessionBytes: rss,
      heapPerSessionBytes: heap,
      rssMarginalPerSessionBytes: Math.round(
        medianOf(agentRuns, (r) => r.memory?.rssMarginalPerSessionBytes),
      ),
      heapMarginalPerSessionBytes: Math.round(
        medianOf(agentRuns, (r) => r.memory?.heapMarginalPerSessionBytes),
      ),
      lostBelowSaturation,
      ladder: fixed.map((rate) => ({
        targetRate: rate,
        agent: ladderCell(agentRuns, rate),
        echo: ladderCell(echoRuns, rate),
      })),
      targets: {
        ratio: { min: TARGETS.ratioMin, met: ratio >= TARGETS.ratioMin },
        zeroLossBelowSaturation: { met: lostBelowSaturation <= TARGETS.lossPctBelowSaturation },
        memoryPerSession: {
          maxBytes: TARGETS.memoryPerSessionMaxBytes,
          // The all-N RSS also carries one-time growth (V8's young generation grows to its
          // maximum under any allocation-heavy load, ~30 MB); the second half's RSS is per session.
          met:
            Math.max(
              heap,
              medianOf(agentRuns, (r) => r.memory?.rssMarginalPerSessionBytes),
            ) < TARGETS.memoryPerSessionMaxBytes,
        },
      },
      runs,
    });
  }
  return result.finish(
    {
      devices: o.devices,
      repetitions: o.repetitions,
      rates: o.rates,
      refine: o.refine,
      stepMs: o.stepMs,
      warmupMs: o.warmupMs,
      lossThresholdPct: o.lossThresholdPct,
      quietMaxWaitMs: o.quietMaxWaitMs,
      generators: o.generators ?? `max(2, ceil(devices / ${DEVICES_PER_GENERATOR}))`,
      agentEnv: AGENT_ENV,
      profileDir: o.profileDir ?? null,
    },
    scenarios,
  );
}

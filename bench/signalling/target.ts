import { fileURLToPath } from "node:url";
import { type ChildHandle, startChild } from "../lib/child.ts";
import type { MemorySample, RegisterResult, ServerCounters, ServerReady } from "./protocol.ts";
import { runStep, type StepSettings, type StepSummary, searchSaturation } from "./steps.ts";

/** One server (the agent or the raw echo) measured once: register N devices, then find saturation. */

export type TargetKind = "agent" | "echo";

export interface TargetSettings extends StepSettings {
  devices: number;
  generators: number;
  rates: readonly number[];
  refine: number;
  warmupMs: number;
  /** EHOME_* variables of the agent child. */
  agentEnv: Record<string, string>;
  /** When set, the agent child writes a V8 CPU profile here (node --cpu-prof). */
  profileDir: string | undefined;
  log: (line: string) => void;
  /** Replaces the server child (experiments: a variant of the echo or of the agent adapter). */
  serverModule?: string;
}

export interface TargetRun {
  kind: TargetKind;
  devices: number;
  generators: number;
  registration: RegisterResult & { sessionsHeld: number };
  memory: {
    before: MemorySample;
    /** After the first half of the devices registered. */
    half: MemorySample;
    after: MemorySample;
    /** (after − before) / sessions: everything registering cost, one-time growth included. */
    rssPerSessionBytes: number;
    heapPerSessionBytes: number;
    /** (after − half) / sessions of the second half: the marginal cost of one more session. */
    rssMarginalPerSessionBytes: number;
    heapMarginalPerSessionBytes: number;
  } | null;
  steps: StepSummary[];
  /** The passing step with the highest offered rate (null when even the first rate failed). */
  saturation: StepSummary | null;
  /** True when no rate failed: the server kept up with everything offered (a lower bound). */
  saturationIsLowerBound: boolean;
  /** Highest answered rate of any step, passing or not. */
  peakAnsweredRate: number;
  /** Datagrams lost in passing steps (target: zero below saturation). */
  lostBelowSaturation: number;
  /** Rates that failed once and passed when run again (see searchSaturation). */
  passedOnRetry: number[];
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** Device slices: contiguous ids, as even as possible. */
export function slices(
  devices: number,
  generators: number,
): Array<{ first: number; count: number }> {
  const out: Array<{ first: number; count: number }> = [];
  let first = 0;
  for (let k = 0; k < generators; k++) {
    const count = Math.floor(devices / generators) + (k < devices % generators ? 1 : 0);
    out.push({ first, count });
    first += count;
  }
  return out;
}

export async function runTarget(kind: TargetKind, s: TargetSettings): Promise<TargetRun> {
  const nodeFlags = ["--expose-gc"];
  if (kind === "agent" && s.profileDir) {
    nodeFlags.push("--cpu-prof", `--cpu-prof-dir=${s.profileDir}`);
  }
  const server = await startChild<ServerReady>(
    s.serverModule ?? here(kind === "agent" ? "./agent-child.ts" : "./echo-child.ts"),
    { name: kind, nodeFlags, args: [JSON.stringify(s.agentEnv)] },
  );
  const generators: ChildHandle<unknown>[] = [];
  try {
    const target = { host: server.ready.host, port: server.ready.port };
    const before = await server.request<MemorySample>({ type: "memory" });
    const started = await Promise.allSettled(
      slices(s.devices, s.generators).map((_, k) =>
        startChild<unknown>(here("./generator.ts"), { name: `generator ${k}` }),
      ),
    );
    for (const r of started) if (r.status === "fulfilled") generators.push(r.value);
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await Promise.all(
      slices(s.devices, s.generators).map((slice, k) =>
        generators[k]!.request(
          {
            type: "init",
            target,
            idPrefix: "BENCH",
            firstIndex: slice.first,
            count: slice.count,
          },
          300_000,
        ),
      ),
    );
    // Two halves, with a memory sample after each: the second half's growth is the marginal cost
    // of a session, free of one-time growth (V8's young generation, code, maps) that the first
    // half also pays for.
    const sliceList = slices(s.devices, s.generators);
    const registerHalf = (half: 0 | 1) =>
      Promise.all(
        generators.map((g, k) => {
          const n = sliceList[k]!.count;
          const mid = Math.floor(n / 2);
          return g.request<RegisterResult>(
            {
              type: "register",
              first: half === 0 ? 0 : mid,
              count: half === 0 ? mid : n - mid,
              window: 64,
              retryMs: 1000,
              maxSends: 5,
            },
            600_000,
          );
        }),
      );
    const regFirst = await registerHalf(0);
    const half = kind === "agent" ? await server.request<MemorySample>({ type: "memory" }) : null;
    const regSecond = await registerHalf(1);
    const regParts = [...regFirst, ...regSecond];
    const held = await server.request<ServerCounters>({ type: "counters" });
    const registration = {
      registered: regParts.reduce((a, p) => a + p.registered, 0),
      failed: regParts.reduce((a, p) => a + p.failed, 0),
      sends: regParts.reduce((a, p) => a + p.sends, 0),
      refused: regParts.reduce((a, p) => a + p.refused, 0),
      elapsedMs:
        Math.max(0, ...regFirst.map((p) => p.elapsedMs)) +
        Math.max(0, ...regSecond.map((p) => p.elapsedMs)),
      sessionsHeld: held.sessions,
    };
    s.log(
      `${kind} ${s.devices} devices: ${registration.registered} registered in ${registration.elapsedMs} ms` +
        (kind === "agent" ? `, ${held.sessions} sessions held` : ""),
    );
    let memory: TargetRun["memory"] = null;
    if (kind === "agent" && half) {
      const after = await server.request<MemorySample>({ type: "memory" });
      const n = Math.max(1, after.sessions - before.sessions);
      const n2 = Math.max(1, after.sessions - half.sessions);
      memory = {
        before,
        half,
        after,
        rssPerSessionBytes: Math.round((after.rssBytes - before.rssBytes) / n),
        heapPerSessionBytes: Math.round((after.heapUsedBytes - before.heapUsedBytes) / n),
        rssMarginalPerSessionBytes: Math.round((after.rssBytes - half.rssBytes) / n2),
        heapMarginalPerSessionBytes: Math.round((after.heapUsedBytes - half.heapUsedBytes) / n2),
      };
      s.log(
        `agent memory per session: ${memory.heapPerSessionBytes} B heap, ${memory.rssPerSessionBytes} B RSS ` +
          `(second half: ${memory.heapMarginalPerSessionBytes} B heap, ${memory.rssMarginalPerSessionBytes} B RSS)`,
      );
    }

    const run = async (rate: number) => {
      const step = await runStep(rate, generators, server, s);
      s.log(
        `${kind} ${s.devices} @ ${rate}/s: offered ${step.offeredRate}, answered ${step.answeredRate}, ` +
          `loss ${step.lossPct}%, p50 ${step.p50Ms} ms, p99 ${step.p99Ms} ms, ` +
          `${step.serverCpuUsPerMessage} µs CPU/msg, gap ${step.maxTickGapMs} ms, ` +
          `neighbours ${step.foreignCpuPct}% CPU, steal ${step.stealPct}%` +
          (step.kernel ? `, rcvbuf drops ${step.kernel.rcvbufErrors}` : ""),
      );
      return step;
    };
    if (s.warmupMs > 0 && s.rates.length > 0) {
      // JIT and socket buffers warm up at a rate every server handles; not reported.
      await runStep(s.rates[0]!, generators, server, { ...s, durationMs: s.warmupMs });
    }
    const steps = await searchSaturation(s.rates, s.refine, run);
    // The outcome of a rate is its last attempt.
    const finals = new Map(steps.map((x) => [x.targetRate, x]));
    const passing = [...finals.values()].filter((x) => x.pass);
    const saturation = passing.reduce<StepSummary | null>(
      (best, x) => (best === null || x.offeredRate > best.offeredRate ? x : best),
      null,
    );
    return {
      kind,
      devices: s.devices,
      generators: generators.length,
      registration,
      memory,
      steps,
      saturation,
      saturationIsLowerBound: [...finals.values()].every((x) => x.pass),
      peakAnsweredRate: Math.max(0, ...steps.map((x) => x.answeredRate)),
      lostBelowSaturation: passing.reduce((a, x) => a + x.lost, 0),
      passedOnRetry: steps.filter((x) => x.pass && x.attempt > 1).map((x) => x.targetRate),
    };
  } finally {
    await Promise.all(generators.map((g) => g.close()));
    await server.close();
  }
}

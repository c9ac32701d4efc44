import { dec, int, provenance, table } from "../lib/markdown.ts";
import type { BenchmarkResult } from "../lib/output.ts";
import { median } from "../lib/stats.ts";
import type { SignallingScenario } from "./run.ts";

/** The generated section of docs/BENCHMARKS.md for bench/signalling (called by bench/run-all.ts). */

export const title = "Signalling: KEEPALIVE throughput, reply latency, memory per session";

const yes = (met: boolean) => (met ? "met" : "**not met**");

export function render(result: BenchmarkResult): string {
  const r = result as BenchmarkResult<SignallingScenario>;
  const s = r.settings as Record<string, unknown>;
  const sc = r.scenarios;
  const reps = sc[0]?.repetitions ?? 0;
  const out: string[] = [];
  out.push(provenance(r));
  out.push(
    `- Settings: offered rates ${(s.rates as number[]).map(int).join(", ")} /s in order until one ` +
      `loses ≥ ${s.lossThresholdPct}%, then ${s.refine} bisections; ${s.stepMs} ms per rate after a ` +
      `${s.warmupMs} ms warm-up; ${reps} repetition(s), agent and echo alternating first; figures are ` +
      `medians over repetitions.`,
  );
  out.push("");
  out.push(
    "Saturation: the highest offered rate answered with less than the loss threshold. " +
      "(≥): a repetition never failed, so the true saturation is higher. Peak ratio: highest " +
      "answered rates of any step (loss allowed). CPU ratio: echo CPU per datagram ÷ agent CPU " +
      "per datagram at the highest rate both passed.",
  );
  out.push("");
  out.push(
    table(
      [
        "Devices",
        "Generators",
        "Agent answered/s",
        "Loss %",
        "p50 ms",
        "p99 ms",
        "Agent CPU µs/msg",
        "Echo answered/s",
        "Echo p50 ms",
        "Echo p99 ms",
        "Echo CPU µs/msg",
        "Ratio agent/echo (per repetition)",
        "Peak ratio",
        "CPU ratio (at rate)",
      ],
      sc.map((x) => [
        int(x.devices),
        String(x.generators),
        int(x.answeredRate) + (x.lowerBoundRuns > 0 ? " (≥)" : ""),
        dec(x.lossPct, 3),
        dec(x.p50Ms),
        dec(x.p99Ms),
        dec(x.cpuUsPerMessage, 1),
        int(x.echo.answeredRate) + (x.echo.lowerBoundRuns > 0 ? " (≥)" : ""),
        dec(x.echo.p50Ms),
        dec(x.echo.p99Ms),
        dec(x.echo.cpuUsPerMessage, 1),
        `${dec(x.ratio)} (${x.ratios.map((v) => dec(v)).join(", ")})`,
        dec(x.peakRatio),
        `${dec(x.cpuRatio)} (${int(x.cpuRatioAtRate)}/s)`,
      ]),
    ),
  );
  out.push("");
  out.push(
    "Peak answered (highest answered rate of any step, loss allowed): " +
      sc
        .map(
          (x) =>
            `${int(x.devices)} devices: agent ${int(x.peakAnsweredRate)}/s, echo ${int(x.echo.peakAnsweredRate)}/s`,
        )
        .join("; ") +
      ".",
  );
  const retried = sc.flatMap((x) =>
    x.runs.flatMap((run, i) =>
      (["agent", "echo"] as const).flatMap((k) =>
        run[k].passedOnRetry.map(
          (rate) => `${int(x.devices)} devices, repetition ${i + 1}, ${k} at ${int(rate)}/s`,
        ),
      ),
    ),
  );
  out.push("");
  out.push(
    retried.length === 0
      ? "No rate needed a second attempt."
      : `Rates that failed first and passed on a later attempt: ${retried.join("; ")}.`,
  );
  const steps = sc.flatMap((x) => x.runs.flatMap((run) => [...run.agent.steps, ...run.echo.steps]));
  const foreign = steps.map((x) => x.foreignCpuPct).filter((v): v is number => v !== null);
  if (foreign.length > 0) {
    const busy = foreign.filter((v) => v > 10).length;
    out.push("");
    out.push(
      `Neighbours (other processes on the machine) used more than 10% of its CPU during ${busy} of ` +
        `${foreign.length} steps (at most ${dec(Math.max(...foreign), 1)}%; median ` +
        `${dec(median(foreign), 1)}%). Waited for quiet before steps: ` +
        `${dec(steps.reduce((a, x) => a + (x.quietWaitMs ?? 0), 0) / 1000, 0)} s in all.`,
    );
  }
  out.push("");
  out.push("Same offered rate for both servers (medians; – where a repetition stopped below it):");
  out.push("");
  const rows: string[][] = [];
  for (const x of sc) {
    for (const l of x.ladder) {
      if (!l.agent && !l.echo) continue;
      rows.push([
        int(x.devices),
        int(l.targetRate),
        int(l.agent?.answeredRate),
        dec(l.agent?.lossPct, 3),
        dec(l.agent?.p50Ms),
        dec(l.agent?.p99Ms),
        int(l.echo?.answeredRate),
        dec(l.echo?.lossPct, 3),
        dec(l.echo?.p50Ms),
        dec(l.echo?.p99Ms),
      ]);
    }
  }
  out.push(
    table(
      [
        "Devices",
        "Offered/s",
        "Agent answered/s",
        "Agent loss %",
        "Agent p50 ms",
        "Agent p99 ms",
        "Echo answered/s",
        "Echo loss %",
        "Echo p50 ms",
        "Echo p99 ms",
      ],
      rows,
    ),
  );
  out.push("");
  out.push("Agent memory per held session (agent process alone, after full GCs):");
  out.push("");
  out.push(
    table(
      [
        "Devices",
        "Sessions held",
        "Heap B/session",
        "RSS B/session",
        "Heap B/session, 2nd half",
        "RSS B/session, 2nd half",
      ],
      sc.map((x) => [
        int(x.devices),
        int(x.runs[0]?.agent.registration.sessionsHeld),
        int(x.heapPerSessionBytes),
        int(x.rssPerSessionBytes),
        int(x.heapMarginalPerSessionBytes),
        int(x.rssMarginalPerSessionBytes),
      ]),
    ),
  );
  out.push("");
  out.push("Targets (issue 2):");
  out.push("");
  out.push(
    table(
      ["Devices", "Ratio ≥ 0.3× echo", "Zero loss below saturation", "< 2 KiB per session"],
      sc.map((x) => [
        int(x.devices),
        `${yes(x.targets.ratio.met)} (${dec(x.ratio)})`,
        `${yes(x.targets.zeroLossBelowSaturation.met)} (${int(x.lostBelowSaturation)} lost)`,
        `${yes(x.targets.memoryPerSession.met)} (heap ${int(x.heapPerSessionBytes)} B; RSS ` +
          `${int(x.rssMarginalPerSessionBytes)} B per added session, ${int(x.rssPerSessionBytes)} B ` +
          `with one-time growth)`,
      ]),
    ),
  );
  return out.join("\n");
}

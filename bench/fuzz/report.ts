import { dec, int, provenance, table } from "../lib/markdown.ts";
import type { BenchmarkResult } from "../lib/output.ts";
import type { FuzzScenario } from "./index.ts";
import type { MemoryPoint } from "./run.ts";

/** The generated section of docs/BENCHMARKS.md for bench/fuzz (`npm run fuzz`). */

export const title =
  "Fuzz: hostile datagrams at a running agent (crashes, memory, legitimate devices)";

const mib = (b: number | null | undefined) =>
  b === null || b === undefined ? "–" : dec(b / 2 ** 20, 1);

/** At most `max` points, evenly spread, first and last kept. */
export function thin(points: readonly MemoryPoint[], max: number): MemoryPoint[] {
  if (points.length <= max) return [...points];
  const out: MemoryPoint[] = [];
  for (let i = 0; i < max; i++)
    out.push(points[Math.round((i * (points.length - 1)) / (max - 1))]!);
  return out;
}

const list = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${int(v)}`)
    .join(", ") || "none";

export function render(result: BenchmarkResult): string {
  const r = result as BenchmarkResult<FuzzScenario>;
  const s = r.settings as Record<string, unknown>;
  const out: string[] = [provenance(r)];
  out.push(
    `- Settings: ${int(s.count as number)} fuzzed datagrams from ${s.fuzzers} processes × ` +
      `${s.sourcesPerFuzzer} source addresses (127.0.0.x) at up to ${int(s.rate as number)}/s` +
      (s.adaptive
        ? ` (lowered to what the agent keeps up with, floor ${int(s.minRate as number)}/s)`
        : "") +
      `, seed ${s.seed}; ${int(s.legitDevices as number)} legitimate devices (127.10.x.x, on the ` +
      `agent's allowlist, \`EHOME_AUTO_PROVISION=false\`) sending a KEEPALIVE every ` +
      `${s.keepAliveSeconds} s, measured in windows of ${dec((s.windowMs as number) / 1000, 0)} s ` +
      `before, during and after the fuzz; agent memory sampled raw every ` +
      `${dec((s.sampleMs as number) / 1000, 0)} s and after full GCs before and after.`,
  );
  for (const x of r.scenarios) {
    out.push("");
    out.push(
      table(
        [
          "Fuzz sent",
          "To the alarm port",
          "Rate achieved /s",
          "Lowest rate set /s",
          "Agent read",
          "Agent CPU µs/datagram",
          "Dropped at the agent's queue",
          "Decode errors",
          "Oversize",
          "Handler errors",
          "Sessions before → after",
          "Agent alive",
          "Pass",
        ],
        [
          [
            int(x.fuzz.sent),
            int(x.fuzz.toAlarmPort),
            int(x.fuzz.achievedRate),
            int(x.fuzz.minRate),
            int(x.agent.counters.datagrams_in),
            dec(x.agent.cpuUsPerDatagram, 1),
            int(x.agent.dropped),
            int(x.agent.counters.decode_errors ?? 0),
            int(x.agent.counters.datagrams_oversize ?? 0),
            int(x.agent.counters.handler_errors ?? 0),
            `${int(x.agent.sessionsBefore)} → ${int(x.agent.sessionsAfter)}`,
            x.agent.alive ? "yes" : `no: ${x.agent.crash}`,
            x.pass ? "yes" : "**no**",
          ],
        ],
      ),
    );
    out.push("");
    out.push(`What was sent, by kind: ${list(x.fuzz.byKind)}.`);
    out.push("");
    out.push("Invariants:");
    out.push("");
    out.push(
      table(
        ["Invariant", "Held", "Measured"],
        x.invariants.map((i) => [i.name, i.ok ? "yes" : "**no**", i.detail]),
      ),
    );
    out.push("");
    out.push(
      `Legitimate devices (${int(x.legit.devices)}, ${int(x.legit.rate)} KEEPALIVEs/s; false ` +
        `offline ${int(x.legit.falseOffline)}, sessions expired ${int(x.legit.sessionsExpired)}):`,
    );
    out.push("");
    out.push(
      table(
        ["Phase", "Windows", "Sent", "Answered", "Lost", "Loss %", "p50 ms", "p99 ms (worst)"],
        (["before", "during", "after"] as const).map((p) => {
          const l = x.legit[p];
          return [
            p,
            int(l.windows),
            int(l.sent),
            int(l.answered),
            int(l.lost),
            dec(l.lossPct, 3),
            dec(l.p50Ms),
            dec(l.p99Ms),
          ];
        }),
      ),
    );
    out.push("");
    out.push(
      `Memory after full GCs: RSS ${mib(x.memory.before.rssBytes)} → ${mib(x.memory.after?.rssBytes)} MiB, ` +
        `heap ${mib(x.memory.before.heapUsedBytes)} → ${mib(x.memory.after?.heapUsedBytes)} MiB; ` +
        `peak raw RSS ${mib(x.memory.peakRssBytes)} MiB, heap ${mib(x.memory.peakHeapUsedBytes)} MiB. ` +
        `The curve (raw, not after GC${x.memory.curve.length > 25 ? `; 25 of ${x.memory.curve.length} samples` : ""}):`,
    );
    out.push("");
    out.push(
      table(
        ["t (s)", "Fuzz sent", "Rate /s", "Agent read", "RSS MiB", "Heap MiB", "Sessions"],
        thin(x.memory.curve, 25).map((p) => [
          dec(p.atSeconds, 1),
          int(p.fuzzSent),
          int(p.fuzzRate),
          int(p.agentIn),
          mib(p.rssBytes),
          mib(p.heapUsedBytes),
          int(p.sessions),
        ]),
      ),
    );
    out.push("");
    out.push(`Agent counters over the fuzz: ${list(x.agent.counters)}.`);
    out.push("");
    out.push(
      `Device events over the fuzz: ${list(x.agent.events)}; reports handed on: ${list(x.agent.reports)}.`,
    );
    if (x.codec) {
      const c = x.codec;
      out.push("");
      out.push(
        `Codec fuzz (in process, then): ${int(c.count)} mutated datagrams decoded at ` +
          `${int(c.decodesPerSecond)}/s, ${int(c.roundTrips)} decoded messages re-encoded and decoded ` +
          `back equal, ${int(c.encode.count)} random messages encoded at ${int(c.encode.encodesPerSecond)}/s; ` +
          `invariant violations: ${int(c.violations.length)}.`,
      );
    }
  }
  return out.join("\n");
}

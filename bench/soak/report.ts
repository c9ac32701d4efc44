import { dec, int, provenance, table } from "../lib/markdown.ts";
import type { BenchmarkResult } from "../lib/output.ts";
import type { SoakScenario } from "./run.ts";

/** The generated section of docs/BENCHMARKS.md for bench/soak. */

export const title = "Soak: a fleet keepaliving for minutes (loss, p99, memory drift)";

const mib = (b: number) => dec(b / 2 ** 20, 1);

export function render(result: BenchmarkResult): string {
  const r = result as BenchmarkResult<SoakScenario>;
  const s = r.settings as Record<string, unknown>;
  const out: string[] = [provenance(r)];
  out.push(
    `- Settings: every device sends a KEEPALIVE every ${s.keepAliveSeconds} s (${int(s.rate as number)} ` +
      `/s in total) for ${dec((s.durationMs as number) / 60_000, 1)} min, in windows of ` +
      `${dec((s.windowMs as number) / 1000, 0)} s; the agent (alone in its process, events counted ` +
      `not sent) is sampled after full GCs at the end of each window. Baseline: the raw UDP echo ` +
      `held at the same rate for one window with the same generators.`,
  );
  for (const x of r.scenarios) {
    out.push("");
    out.push(
      table(
        [
          "Devices",
          "Sent",
          "Lost",
          "Loss %",
          "p99 ms (worst window)",
          "Echo p99 ms",
          "p99 ratio agent/echo (median window)",
          "Agent CPU % of a core",
          "CPU ratio agent/echo per msg",
          "RSS per device (B)",
          "RSS slope (MiB/min)",
          "Heap slope (MiB/min)",
          "False offline",
          "Events during the soak",
        ],
        [
          [
            int(x.devices),
            int(x.sent),
            int(x.lost),
            dec(x.lossPct, 4),
            dec(x.p99Ms),
            dec(x.echo.p99Ms),
            dec(x.p99Ratio),
            dec(x.meanCpuPct, 1),
            dec(x.cpuRatio),
            int(x.rssPerDeviceBytes),
            dec(x.rssSlopeBytesPerMin / 2 ** 20, 2),
            dec(x.heapSlopeBytesPerMin / 2 ** 20, 2),
            int(x.falseOffline),
            Object.entries(x.events)
              .map(([k, v]) => `${k} ${int(v)}`)
              .join(", ") || "none",
          ],
        ],
      ),
    );
    out.push("");
    out.push("Per window (memory after full GCs):");
    out.push("");
    out.push(
      table(
        [
          "t (s)",
          "Sent",
          "Lost",
          "p50 ms",
          "p99 ms",
          "Agent CPU %",
          "RSS MiB",
          "Heap MiB",
          "Neighbours CPU %",
        ],
        x.windows.map((w) => [
          dec(w.atSeconds, 0),
          int(w.sent),
          int(w.lost),
          dec(w.p50Ms),
          dec(w.p99Ms),
          dec(w.agentCpuPct, 1),
          mib(w.rssBytes),
          mib(w.heapUsedBytes),
          w.foreignCpuPct === null ? "–" : dec(w.foreignCpuPct, 1),
        ]),
      ),
    );
  }
  return out.join("\n");
}

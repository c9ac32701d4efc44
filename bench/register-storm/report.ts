import { dec, int, provenance, table } from "../lib/markdown.ts";
import type { BenchmarkResult } from "../lib/output.ts";
import type { StormScenario } from "./run.ts";

/** The generated section of docs/BENCHMARKS.md for bench/register-storm. */

export const title = "Register storm: every device registers at once";

export function render(result: BenchmarkResult): string {
  const r = result as BenchmarkResult<StormScenario>;
  const s = r.settings as Record<string, unknown>;
  const out: string[] = [provenance(r)];
  out.push(
    `- Settings: every device sends its REGISTER at the same moment from its own loopback address ` +
      `(generators' window = their whole slice); a device resends after ${s.retryMs} ms without a ` +
      `reply, at most ${s.maxSends} times; ${s.repetitions} repetition(s), medians. Agent alone in ` +
      `its process (events counted, not sent: the cloud side is measured by cloud-writes). ` +
      `Baseline: a raw Node UDP echo answering the same storm from the same generators.`,
  );
  out.push("");
  out.push(
    table(
      [
        "Devices",
        "Generators",
        "All online at the agent (s)",
        "REGISTERs/s",
        "Retries",
        "Refused",
        "Failed",
        "Echo replies/s",
        "Ratio agent/echo",
        "Kernel rcvbuf drops (agent run)",
        "Agent heap per session (B)",
      ],
      r.scenarios.map((x) => {
        const first = x.runs[0]?.agent;
        return [
          int(x.devices),
          String(x.generators),
          x.allOnlineMs === null ? "not reached" : dec(x.allOnlineMs / 1000, 2),
          int(x.registersPerSecond),
          int(x.retries),
          int(x.refused),
          int(x.failed),
          int(x.echoRegistersPerSecond),
          dec(x.ratio, 3),
          int(first?.rcvbufDrops),
          int(first?.heapPerSessionBytes),
        ];
      }),
    ),
  );
  return out.join("\n");
}

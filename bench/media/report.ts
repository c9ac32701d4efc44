import { dec, int, provenance, table } from "../lib/markdown.ts";
import type { BenchmarkResult } from "../lib/output.ts";
import type { DeframerScenario } from "./deframer.ts";

/** The generated section of docs/BENCHMARKS.md for bench/media (called by bench/run-all.ts). */

export const title = "Media: de-framer throughput";

export function render(result: BenchmarkResult): string {
  const r = result as BenchmarkResult<DeframerScenario>;
  const out: string[] = [provenance(r)];
  const s = r.settings as { streamMiB: number; readBytes: number; repetitions: number };
  out.push(
    `- Settings: a ${s.streamMiB} MiB synthetic PS (main-stream shaped); ` +
      `${s.repetitions} repetitions, de-framer and baseline alternating first; medians. ` +
      "Baseline: `Buffer.from(chunk)` of the same reads (one copy, the least a relay does).",
  );
  out.push("");
  out.push(
    table(
      ["Input", "Read bytes", "MB/s de-framer", "MB/s copy baseline", "Ratio", "Output identical"],
      r.scenarios.map((x) => [
        `${x.name}: ${x.description}`,
        int(x.readBytes),
        dec(x.deframerMBps, 1),
        dec(x.copyMBps, 1),
        dec(x.ratio),
        x.outputIdentical ? "yes" : "**no**",
      ]),
    ),
  );
  return out.join("\n");
}

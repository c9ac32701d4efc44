import type { BenchmarkResult } from "./output.ts";

/** Helpers for the generated parts of docs/BENCHMARKS.md. */

export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** 12345 → "12,345"; NaN/null → "–". */
export function int(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  return Math.round(n).toLocaleString("en-US");
}

/** Fixed decimals; NaN/null → "–". */
export function dec(n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  return n.toFixed(digits);
}

/** The lines every generated section starts with: command, machine, when. */
export function provenance(r: BenchmarkResult): string {
  const m = r.machine;
  const gib = (m.totalMemoryBytes / 2 ** 30).toFixed(1);
  return [
    `- Command: \`${r.command}\` (${r.mode} mode; ${r.elapsedSeconds} s)`,
    `- Run: ${r.startedAt.replace("T", " ").replace(/\.\d+Z$/, " UTC")} on commit ` +
      `${r.source.commit ?? "unknown"}` +
      (r.source.dirty ? ` with uncommitted changes to ${r.source.dirtyFiles.join(", ")}` : ""),
    `- Machine: ${m.cpuModel}, ${m.cores} cores, ${gib} GiB, Node ${m.nodeVersion}, ${m.platform} ${m.kernel}; ` +
      `load average ${m.loadAverage1m} at the start, ${r.loadAverageEnd} at the end; net.core.rmem_max ${int(m.udpRmemMaxBytes)} B; ` +
      `open files ${int(m.openFilesLimit)}`,
  ].join("\n");
}

import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { type MachineInfo, machineInfo } from "./machine.ts";

/**
 * The common shape of every benchmark's JSON result (style rule 10: machine-readable, with a
 * same-run baseline inside `scenarios`). bench/run-all.ts reads these files to regenerate
 * docs/BENCHMARKS.md.
 */
export interface BenchmarkResult<S = unknown> {
  benchmark: string;
  mode: "quick" | "full";
  /** The command line that produced the result, for the docs. */
  command: string;
  startedAt: string;
  finishedAt: string;
  elapsedSeconds: number;
  machine: MachineInfo;
  /** The code measured: HEAD, and whether the working tree differed from it under `paths`. */
  source: SourceInfo;
  /** 1-minute load average when the benchmark finished (machine.loadAverage1m is at the start). */
  loadAverageEnd: number;
  /** Benchmark-specific settings (rates, durations, repetitions, ...). */
  settings: Record<string, unknown>;
  /** One object per scenario; each carries its own baseline and ratio. */
  scenarios: S[];
}

export interface SourceInfo {
  commit: string | null;
  /** Uncommitted changes to tracked files under the measured paths (then the numbers are for them). */
  dirty: boolean | null;
  dirtyFiles: string[];
  paths: string[];
}

function git(args: string[]): string | null {
  try {
    return execFileSync("git", args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      // trimEnd: a porcelain line starts with a status column that may be a space (" M file").
    }).trimEnd();
  } catch {
    return null;
  }
}

/** Paths of `git status --porcelain` lines (`XY path`; X or Y may be a space). */
export function porcelainPaths(status: string): string[] {
  return status
    .split("\n")
    .filter((l) => l.length > 3)
    .map((l) => l.slice(3));
}

/** The commit under test; `paths` are what the benchmark measures (e.g. edge-agent). */
export function sourceInfo(paths: string[]): SourceInfo {
  const status = git(["status", "--porcelain", "--untracked-files=no", "--", ...paths]);
  const dirtyFiles = status ? porcelainPaths(status) : [];
  return {
    commit: git(["rev-parse", "--short=12", "HEAD"]),
    dirty: status === null ? null : dirtyFiles.length > 0,
    dirtyFiles,
    paths,
  };
}

export interface CommonArgs {
  quick: boolean;
  /** Where to write the JSON besides stdout. */
  out: string | undefined;
}

/** The flags every benchmark entry understands: `--quick`, `--out <file>`. */
export const COMMON_OPTIONS = {
  quick: { type: "boolean", default: false },
  out: { type: "string" },
} as const;

export function startResult(
  benchmark: string,
  mode: "quick" | "full",
  command: string,
  measuredPaths: string[],
): { finish<S>(settings: Record<string, unknown>, scenarios: S[]): BenchmarkResult<S> } {
  const started = Date.now();
  const machine = machineInfo();
  const source = sourceInfo(measuredPaths);
  return {
    finish(settings, scenarios) {
      const finished = Date.now();
      return {
        benchmark,
        mode,
        command,
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date(finished).toISOString(),
        elapsedSeconds: Math.round((finished - started) / 100) / 10,
        machine,
        source,
        loadAverageEnd: machineInfo().loadAverage1m,
        settings,
        scenarios,
      };
    },
  };
}

/** Prints the result as JSON on stdout (and to `out` when given). */
export function writeResult(result: BenchmarkResult, out: string | undefined): void {
  const text = `${JSON.stringify(result, null, 2)}\n`;
  if (out) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, text);
  }
  process.stdout.write(text);
}

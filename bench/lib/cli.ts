import { type ParseArgsConfig, parseArgs } from "node:util";
import { COMMON_OPTIONS } from "./output.ts";

/**
 * The command line of a benchmark entry (bench/<name>/index.ts): `COMMON_OPTIONS` plus its own,
 * parsed strictly; a bad option or value prints `bench/<name>: <message>` and exits 2. Numbers
 * may be written with underscores (`--devices 100_000`).
 */
export interface BenchArgs {
  /** `--quick`. */
  readonly quick: boolean;
  str(name: string): string | undefined;
  flag(name: string): boolean;
  /** A number ≥ `min`, or `fallback` when the option is absent. */
  num(name: string, fallback: number, min: number): number;
  /** An integer ≥ `min` (default 1), or `fallback` when the option is absent. */
  int(name: string, fallback: number, min?: number): number;
  /** An integer ≥ `min` (default 1), or undefined when the option is absent. */
  intOrUndefined(name: string, min?: number): number | undefined;
  /** Positive integers separated by commas, or a copy of `fallback` when absent. */
  list(name: string, fallback: readonly number[]): number[];
  /** `entry` and the arguments, without `--out`: the command that reproduces the run. */
  command(entry: string): string;
  fail(message: string): never;
}

export function parseBenchArgs(
  bench: string,
  argv: readonly string[],
  options: NonNullable<ParseArgsConfig["options"]>,
): BenchArgs {
  const fail = (message: string): never => {
    process.stderr.write(`bench/${bench}: ${message}\n`);
    process.exit(2);
  };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined> = {};
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      options: { ...COMMON_OPTIONS, ...options },
    }).values;
  } catch (err) {
    fail((err as Error).message);
  }
  const str = (name: string) => {
    const v = values[name];
    return typeof v === "string" ? v : undefined;
  };
  const number = (v: string) => Number(v.replace(/_/g, ""));
  const int = (name: string, fallback: number, min = 1) => {
    const v = str(name);
    if (v === undefined) return fallback;
    const n = number(v);
    if (!Number.isSafeInteger(n) || n < min)
      fail(`--${name} expects an integer ≥ ${min}, got ${v}`);
    return n;
  };
  return {
    quick: values.quick === true,
    str,
    flag: (name) => values[name] === true,
    num(name, fallback, min) {
      const v = str(name);
      if (v === undefined) return fallback;
      const n = number(v);
      if (!Number.isFinite(n) || n < min) fail(`--${name} expects a number ≥ ${min}, got ${v}`);
      return n;
    },
    int,
    intOrUndefined: (name, min = 1) => (str(name) === undefined ? undefined : int(name, 0, min)),
    list(name, fallback) {
      const v = str(name);
      if (v === undefined) return [...fallback];
      const out = v.split(",").map((x) => number(x.trim()));
      if (out.some((n) => !Number.isSafeInteger(n) || n <= 0)) {
        fail(`--${name} expects positive integers separated by commas, got ${JSON.stringify(v)}`);
      }
      return out;
    },
    command: (entry) =>
      [entry, ...argv.filter((a, i) => a !== "--out" && argv[i - 1] !== "--out")].join(" "),
    fail,
  };
}

/**
 * `npm run bench` entry of the register storm (bench/run-all.ts runs it; it also runs alone):
 *
 *   npx tsx bench/register-storm/index.ts [--quick] [--devices 50000] [--repetitions 1]
 *     [--generators N] [--retry-ms 5000] [--max-sends 10] [--timeout-ms 900000] [--skip-platform]
 *     [--spread-ms 30000]
 *     [--out file]
 *
 * Prints one JSON object (BenchmarkResult<StormScenario>) on stdout; progress on stderr.
 */
import { parseArgs } from "node:util";
import { COMMON_OPTIONS, writeResult } from "../lib/output.ts";
import { FULL_DEFAULTS, QUICK_DEFAULTS, runRegisterStorm } from "./run.ts";

function fail(message: string): never {
  process.stderr.write(`bench/register-storm: ${message}\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
let values: Record<string, string | boolean | undefined>;
try {
  values = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...COMMON_OPTIONS,
      devices: { type: "string" },
      repetitions: { type: "string" },
      generators: { type: "string" },
      "retry-ms": { type: "string" },
      "max-sends": { type: "string" },
      "timeout-ms": { type: "string" },
      "skip-platform": { type: "boolean", default: false },
      "spread-ms": { type: "string" },
    },
  }).values;
} catch (err) {
  fail((err as Error).message);
}
const str = (k: string) => values[k] as string | undefined;
function int(name: string, fallback: number, min = 1): number {
  const v = str(name);
  if (v === undefined) return fallback;
  const n = Number(v.replace(/_/g, ""));
  if (!Number.isSafeInteger(n) || n < min) fail(`--${name} expects an integer ≥ ${min}, got ${v}`);
  return n;
}
const quick = values.quick === true;
const d = quick ? QUICK_DEFAULTS : FULL_DEFAULTS;
const result = await runRegisterStorm({
  quick,
  devices: int("devices", d.devices),
  repetitions: int("repetitions", d.repetitions),
  generators: str("generators") === undefined ? undefined : int("generators", 2),
  retryMs: int("retry-ms", 5_000, 100),
  maxSends: int("max-sends", 10),
  timeoutMs: int("timeout-ms", 900_000, 1000),
  platform: values["skip-platform"] !== true,
  spreadMs: int("spread-ms", d.spreadMs, 0),
  command: [
    "npx tsx bench/register-storm/index.ts",
    ...argv.filter((a, i) => a !== "--out" && argv[i - 1] !== "--out"),
  ].join(" "),
  log: (line) => process.stderr.write(`${line}\n`),
});
writeResult(result, str("out"));

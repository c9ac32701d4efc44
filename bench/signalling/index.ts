/**
 * `npm run bench` entry of the signalling benchmark (bench/run-all.ts runs it; it also runs alone):
 *
 *   npx tsx bench/signalling/index.ts [--quick] [--devices 10000,100000] [--repetitions 3]
 *     [--rates 5000,10000,...] [--refine 3] [--step-ms 3000] [--generators N] [--profile DIR]
 *     [--quiet-wait-ms 30000] [--out results.json]
 *
 * Prints one JSON object (BenchmarkResult<SignallingScenario>) on stdout; progress on stderr.
 */
import { parseArgs } from "node:util";
import { COMMON_OPTIONS, writeResult } from "../lib/output.ts";
import { FULL_DEFAULTS, QUICK_DEFAULTS, runSignallingBench } from "./run.ts";

function fail(message: string): never {
  process.stderr.write(`bench/signalling: ${message}\n`);
  process.exit(2);
}

function list(name: string, v: string | undefined, fallback: readonly number[]): number[] {
  if (v === undefined) return [...fallback];
  const out = v.split(",").map((x) => Number(x.trim().replace(/_/g, "")));
  if (out.length === 0 || out.some((n) => !Number.isSafeInteger(n) || n <= 0)) {
    fail(`--${name} expects positive integers separated by commas, got ${JSON.stringify(v)}`);
  }
  return out;
}

function int(name: string, v: string | undefined, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  const n = Number(v.replace(/_/g, ""));
  if (!Number.isSafeInteger(n) || n < min) fail(`--${name} expects an integer ≥ ${min}, got ${v}`);
  return n;
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
      rates: { type: "string" },
      refine: { type: "string" },
      "step-ms": { type: "string" },
      "warmup-ms": { type: "string" },
      generators: { type: "string" },
      profile: { type: "string" },
      "quiet-wait-ms": { type: "string" },
    },
  }).values;
} catch (err) {
  fail((err as Error).message);
}
const quick = values.quick === true;
const d = quick ? QUICK_DEFAULTS : FULL_DEFAULTS;
const str = (k: string) => values[k] as string | undefined;
const result = await runSignallingBench({
  quick,
  devices: list("devices", str("devices"), d.devices),
  repetitions: int("repetitions", str("repetitions"), d.repetitions),
  rates: list("rates", str("rates"), d.rates),
  refine: int("refine", str("refine"), d.refine, 0),
  stepMs: int("step-ms", str("step-ms"), d.stepMs, 100),
  warmupMs: int("warmup-ms", str("warmup-ms"), d.warmupMs, 0),
  generators: str("generators") === undefined ? undefined : int("generators", str("generators"), 2),
  lossThresholdPct: 0.1,
  // A shared machine: let the neighbours' bursts (a typecheck, a test suite) pass before a step.
  quietMaxWaitMs: int("quiet-wait-ms", str("quiet-wait-ms"), quick ? 0 : 30_000, 0),
  idleMs: 300,
  maxDrainMs: 2_000,
  profileDir: str("profile"),
  command: [
    "npx tsx bench/signalling/index.ts",
    ...argv.filter((a, i) => a !== "--out" && argv[i - 1] !== "--out"),
  ].join(" "),
  log: (line) => process.stderr.write(`${line}\n`),
});
writeResult(result, str("out"));

/**
 * `npm run bench` entry of the signalling benchmark (bench/run-all.ts runs it; it also runs alone):
 *
 *   npx tsx bench/signalling/index.ts [--quick] [--devices 10000,100000] [--repetitions 3]
 *     [--rates 5000,10000,...] [--refine 3] [--step-ms 3000] [--generators N] [--profile DIR]
 *     [--quiet-wait-ms 30000] [--out results.json]
 *
 * Prints one JSON object (BenchmarkResult<SignallingScenario>) on stdout; progress on stderr.
 */
import { parseBenchArgs } from "../lib/cli.ts";
import { writeResult } from "../lib/output.ts";
import { FULL_DEFAULTS, QUICK_DEFAULTS, runSignallingBench } from "./run.ts";

const args = parseBenchArgs("signalling", process.argv.slice(2), {
  devices: { type: "string" },
  repetitions: { type: "string" },
  rates: { type: "string" },
  refine: { type: "string" },
  "step-ms": { type: "string" },
  "warmup-ms": { type: "string" },
  generators: { type: "string" },
  profile: { type: "string" },
  "quiet-wait-ms": { type: "string" },
});
const { quick } = args;
const d = quick ? QUICK_DEFAULTS : FULL_DEFAULTS;
const result = await runSignallingBench({
  quick,
  devices: args.list("devices", d.devices),
  repetitions: args.int("repetitions", d.repetitions),
  rates: args.list("rates", d.rates),
  refine: args.int("refine", d.refine, 0),
  stepMs: args.int("step-ms", d.stepMs, 100),
  warmupMs: args.int("warmup-ms", d.warmupMs, 0),
  generators: args.intOrUndefined("generators"),
  lossThresholdPct: 0.1,
  // A shared machine: let the neighbours' bursts (a typecheck, a test suite) pass before a step.
  quietMaxWaitMs: args.int("quiet-wait-ms", quick ? 0 : 30_000, 0),
  idleMs: 300,
  maxDrainMs: 2_000,
  profileDir: args.str("profile"),
  command: args.command("npx tsx bench/signalling/index.ts"),
  log: (line) => process.stderr.write(`${line}\n`),
});
writeResult(result, args.str("out"));

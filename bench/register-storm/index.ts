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
import { parseBenchArgs } from "../lib/cli.ts";
import { writeResult } from "../lib/output.ts";
import { FULL_DEFAULTS, QUICK_DEFAULTS, runRegisterStorm } from "./run.ts";

const args = parseBenchArgs("register-storm", process.argv.slice(2), {
  devices: { type: "string" },
  repetitions: { type: "string" },
  generators: { type: "string" },
  "retry-ms": { type: "string" },
  "max-sends": { type: "string" },
  "timeout-ms": { type: "string" },
  "skip-platform": { type: "boolean", default: false },
  "spread-ms": { type: "string" },
});
const { quick, int } = args;
const d = quick ? QUICK_DEFAULTS : FULL_DEFAULTS;
const result = await runRegisterStorm({
  quick,
  devices: int("devices", d.devices),
  repetitions: int("repetitions", d.repetitions),
  generators: args.intOrUndefined("generators"),
  retryMs: int("retry-ms", 5_000, 100),
  maxSends: int("max-sends", 10),
  timeoutMs: int("timeout-ms", 900_000, 1000),
  platform: !args.flag("skip-platform"),
  spreadMs: int("spread-ms", d.spreadMs, 0),
  command: args.command("npx tsx bench/register-storm/index.ts"),
  log: (line) => process.stderr.write(`${line}\n`),
});
writeResult(result, args.str("out"));

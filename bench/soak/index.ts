/**
 * `npm run bench` entry of the soak (bench/run-all.ts runs it; it also runs alone):
 *
 *   npx tsx bench/soak/index.ts [--quick] [--devices 100000] [--minutes 30] [--window-s 60]
 *     [--keepalive-s 15] [--generators N] [--out file]
 *
 * Prints one JSON object (BenchmarkResult<SoakScenario>) on stdout; progress on stderr.
 * Full mode is the 30-minute soak; `--minutes 3` is a short one.
 */
import { parseBenchArgs } from "../lib/cli.ts";
import { writeResult } from "../lib/output.ts";
import { FULL_DEFAULTS, QUICK_DEFAULTS, runSoak } from "./run.ts";

const args = parseBenchArgs("soak", process.argv.slice(2), {
  devices: { type: "string" },
  minutes: { type: "string" },
  "window-s": { type: "string" },
  "keepalive-s": { type: "string" },
  generators: { type: "string" },
});
const { quick, num } = args;
const d = quick ? QUICK_DEFAULTS : FULL_DEFAULTS;
const result = await runSoak({
  quick,
  devices: Math.round(num("devices", d.devices, 1)),
  durationMs: Math.round(num("minutes", d.durationMs / 60_000, 0.05) * 60_000),
  windowMs: Math.round(num("window-s", d.windowMs / 1000, 1) * 1000),
  keepAliveSeconds: num("keepalive-s", 15, 1),
  generators: args.intOrUndefined("generators"),
  command: args.command("npx tsx bench/soak/index.ts"),
  log: (line) => process.stderr.write(`${line}\n`),
});
writeResult(result, args.str("out"));

/**
 * `npm run bench` entry of the soak (bench/run-all.ts runs it; it also runs alone):
 *
 *   npx tsx bench/soak/index.ts [--quick] [--devices 100000] [--minutes 30] [--window-s 60]
 *     [--keepalive-s 15] [--generators N] [--out file]
 *
 * Prints one JSON object (BenchmarkResult<SoakScenario>) on stdout; progress on stderr.
 * Full mode is the 30-minute soak; `--minutes 3` is a short one.
 */
import { parseArgs } from "node:util";
import { COMMON_OPTIONS, writeResult } from "../lib/output.ts";
import { FULL_DEFAULTS, QUICK_DEFAULTS, runSoak } from "./run.ts";

function fail(message: string): never {
  process.stderr.write(`bench/soak: ${message}\n`);
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
      minutes: { type: "string" },
      "window-s": { type: "string" },
      "keepalive-s": { type: "string" },
      generators: { type: "string" },
    },
  }).values;
} catch (err) {
  fail((err as Error).message);
}
const str = (k: string) => values[k] as string | undefined;
function num(name: string, fallback: number, min: number): number {
  const v = str(name);
  if (v === undefined) return fallback;
  const n = Number(v.replace(/_/g, ""));
  if (!Number.isFinite(n) || n < min) fail(`--${name} expects a number ≥ ${min}, got ${v}`);
  return n;
}
const quick = values.quick === true;
const d = quick ? QUICK_DEFAULTS : FULL_DEFAULTS;
const result = await runSoak({
  quick,
  devices: Math.round(num("devices", d.devices, 1)),
  durationMs: Math.round(num("minutes", d.durationMs / 60_000, 0.05) * 60_000),
  windowMs: Math.round(num("window-s", d.windowMs / 1000, 1) * 1000),
  keepAliveSeconds: num("keepalive-s", 15, 1),
  generators: str("generators") === undefined ? undefined : Math.round(num("generators", 2, 1)),
  command: [
    "npx tsx bench/soak/index.ts",
    ...argv.filter((a, i) => a !== "--out" && argv[i - 1] !== "--out"),
  ].join(" "),
  log: (line) => process.stderr.write(`${line}\n`),
});
writeResult(result, str("out"));

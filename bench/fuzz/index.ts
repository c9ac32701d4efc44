/**
 * `npm run fuzz` and the `npm run bench` entry of the fuzz (bench/run-all.ts runs it):
 *
 *   npx tsx bench/fuzz/index.ts [--quick] [--count 1000000] [--rate 20000] [--fixed-rate]
 *     [--min-rate 500] [--legit-devices 1000] [--keepalive-s 5] [--fuzzers 2] [--seed 42]
 *     [--codec-count N] [--max-loss-pct 1] [--out file]
 *
 * First the live fuzz (bench/fuzz/run.ts: `--count` hostile datagrams at a running agent while
 * `--legit-devices` keepalive), then the in-process codec fuzz (`--codec-count` decodes, default
 * the same count; 0 skips it). Prints one JSON object (BenchmarkResult<FuzzScenario>) on stdout,
 * progress on stderr; exits 1 when an invariant broke.
 */
import { pathToFileURL } from "node:url";
import { parseBenchArgs } from "../lib/cli.ts";
import { writeResult } from "../lib/output.ts";
import { type CodecFuzzSummary, runCodecFuzz } from "./codec.ts";
import {
  FULL_DEFAULTS,
  LIMIT_DEFAULTS,
  type LiveFuzzScenario,
  QUICK_DEFAULTS,
  runLiveFuzz,
} from "./run.ts";

export interface FuzzScenario extends LiveFuzzScenario {
  /** The in-process codec fuzz run after the live one; null when skipped. */
  codec: CodecFuzzSummary | null;
}

/** Runs the fuzz with `argv`; `defaultOut` is where the JSON goes without `--out`. */
export async function main(argv: string[], entry: string, defaultOut?: string): Promise<void> {
  const args = parseBenchArgs("fuzz", argv, {
    count: { type: "string" },
    rate: { type: "string" },
    "fixed-rate": { type: "boolean", default: false },
    "min-rate": { type: "string" },
    "legit-devices": { type: "string" },
    "keepalive-s": { type: "string" },
    fuzzers: { type: "string" },
    seed: { type: "string" },
    "codec-count": { type: "string" },
    "max-loss-pct": { type: "string" },
  });
  const { quick, num } = args;
  const d = quick ? QUICK_DEFAULTS : FULL_DEFAULTS;
  const count = Math.round(num("count", d.count, 1));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const live = await runLiveFuzz({
    quick,
    count,
    rate: num("rate", d.rate, 1),
    adaptive: !args.flag("fixed-rate"),
    minRate: num("min-rate", LIMIT_DEFAULTS.minRate, 1),
    fuzzers: Math.round(num("fuzzers", d.fuzzers, 1)),
    sourcesPerFuzzer: d.sourcesPerFuzzer,
    legitDevices: Math.round(num("legit-devices", d.legitDevices, 1)),
    keepAliveSeconds: num("keepalive-s", d.keepAliveSeconds, 1),
    windowMs: d.windowMs,
    sampleMs: d.sampleMs,
    seed: Math.round(num("seed", LIMIT_DEFAULTS.seed, 0)),
    maxLossPct: num("max-loss-pct", LIMIT_DEFAULTS.maxLossPct, 0),
    maxHeapGrowthBytes: LIMIT_DEFAULTS.maxHeapGrowthBytes,
    maxRssBytes: LIMIT_DEFAULTS.maxRssBytes,
    command: args.command(entry).replace(/ --$/, ""),
    log,
  });
  const codecCount = Math.round(num("codec-count", count, 0));
  let codec: CodecFuzzSummary | null = null;
  if (codecCount > 0) {
    log(`fuzz: codec fuzz, ${codecCount} decodes`);
    codec = runCodecFuzz(codecCount, Math.ceil(codecCount / 5), live.settings.seed as number);
    log(
      `fuzz: codec ${codec.decodesPerSecond} decodes/s, ${codec.roundTrips} round trips, ` +
        `${codec.violations.length} violations`,
    );
  }
  const scenarios: FuzzScenario[] = live.scenarios.map((s) => ({ ...s, codec }));
  const result = { ...live, scenarios };
  writeResult(result, args.str("out") ?? defaultOut);
  const pass = scenarios.every((s) => s.pass) && (codec?.violations.length ?? 0) === 0;
  process.exitCode = pass ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await main(process.argv.slice(2), "npx tsx bench/fuzz/index.ts");
}

/**
 * The codec fuzzer with a large count: `npm run fuzz -- --count 5000000 --seed 42`.
 *
 * Prints one JSON object on stdout (count, seed, elapsed, decodes/s, error-code histogram, encode
 * run alongside) and exits 1 when an invariant broke, with the offending inputs in `violations`.
 * The same fuzzer runs with 100,000 datagrams in `npm test` (test/edge-agent/signalling/codec).
 */
import { parseArgs } from "node:util";
import { runDecodeFuzz, runEncodeFuzz } from "../test/fixtures/datagrams/fuzz.ts";

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replace(/_/g, ""));
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    count: { type: "string" },
    seed: { type: "string" },
    "encode-count": { type: "string" },
  },
});
const count = positiveInt("count", values.count, 1_000_000);
const seed = positiveInt("seed", values.seed, 42);
const encodeCount = positiveInt("encode-count", values["encode-count"], Math.ceil(count / 5));

const decodeStats = runDecodeFuzz(count, seed);
const encodeStats = runEncodeFuzz(encodeCount, seed ^ 0x5a5a5a5a);
const sortDesc = (h: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(h).sort((a, b) => b[1] - a[1]));

const report = {
  benchmark: "codec-fuzz",
  node: process.version,
  count,
  seed,
  elapsedMs: Math.round(decodeStats.elapsedMs),
  decodesPerSecond: Math.round(count / (decodeStats.elapsedMs / 1000)),
  histogram: sortDesc(decodeStats.histogram),
  mutators: sortDesc(decodeStats.mutators),
  roundTrips: decodeStats.roundTrips,
  encode: {
    count: encodeCount,
    elapsedMs: Math.round(encodeStats.elapsedMs),
    encodesPerSecond: Math.round(encodeCount / (encodeStats.elapsedMs / 1000)),
    histogram: sortDesc(encodeStats.histogram),
  },
  violations: [...decodeStats.violations, ...encodeStats.violations],
};
console.log(JSON.stringify(report, null, 2));
process.exitCode = report.violations.length > 0 ? 1 : 0;

import {
  type FuzzViolation,
  runDecodeFuzz,
  runEncodeFuzz,
} from "../../test/fixtures/datagrams/fuzz.ts";

/**
 * The in-process codec fuzz (test/fixtures/datagrams/fuzz.ts) as a summary for the fuzz result:
 * `count` decodes of mutated datagrams, every result checked against the decoder's promises and
 * re-encoded, and `encodeCount` random OutboundMessages encoded and decoded back.
 */
export interface CodecFuzzSummary {
  count: number;
  seed: number;
  elapsedMs: number;
  decodesPerSecond: number;
  histogram: Record<string, number>;
  mutators: Record<string, number>;
  roundTrips: number;
  encode: {
    count: number;
    elapsedMs: number;
    encodesPerSecond: number;
    histogram: Record<string, number>;
  };
  violations: FuzzViolation[];
}

const sortDesc = (h: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(h).sort((a, b) => b[1] - a[1]));

export function runCodecFuzz(count: number, encodeCount: number, seed: number): CodecFuzzSummary {
  const decodeStats = runDecodeFuzz(count, seed);
  const encodeStats = runEncodeFuzz(encodeCount, seed ^ 0x5a5a5a5a);
  return {
    count,
    seed,
    elapsedMs: Math.round(decodeStats.elapsedMs),
    decodesPerSecond: Math.round(count / Math.max(1e-3, decodeStats.elapsedMs / 1000)),
    histogram: sortDesc(decodeStats.histogram),
    mutators: sortDesc(decodeStats.mutators),
    roundTrips: decodeStats.roundTrips,
    encode: {
      count: encodeCount,
      elapsedMs: Math.round(encodeStats.elapsedMs),
      encodesPerSecond: Math.round(encodeCount / Math.max(1e-3, encodeStats.elapsedMs / 1000)),
      histogram: sortDesc(encodeStats.histogram),
    },
    violations: [...decodeStats.violations, ...encodeStats.violations],
  };
}

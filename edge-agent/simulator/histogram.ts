/**
 * Latency histogram with logarithmic buckets (10 µs to ~2 min, 5 % wide): constant memory, O(1)
 * record, and mergeable by adding counts, so worker processes can be aggregated exactly.
 */

const BASE_MS = 0.01;
const RATIO = 1.05;
const LOG_RATIO = Math.log(RATIO);
export const HISTOGRAM_BUCKETS = 340;

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Plain data, so it crosses the worker IPC channel as JSON. */
export interface HistogramData {
  counts: number[];
  count: number;
  sumMs: number;
  maxMs: number;
}

export function emptyHistogram(): HistogramData {
  return { counts: new Array<number>(HISTOGRAM_BUCKETS).fill(0), count: 0, sumMs: 0, maxMs: 0 };
}

export function recordLatency(h: HistogramData, ms: number): void {
  const v = Math.max(0, ms);
  const i =
    v <= BASE_MS
      ? 0
      : Math.min(HISTOGRAM_BUCKETS - 1, Math.floor(Math.log(v / BASE_MS) / LOG_RATIO) + 1);
  h.counts[i] = (h.counts[i] ?? 0) + 1;
  h.count++;
  h.sumMs += v;
  if (v > h.maxMs) h.maxMs = v;
}

export function mergeHistogram(into: HistogramData, from: HistogramData): void {
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) into.counts[i]! += from.counts[i] ?? 0;
  into.count += from.count;
  into.sumMs += from.sumMs;
  if (from.maxMs > into.maxMs) into.maxMs = from.maxMs;
}

/** Upper edge of bucket i, capped at the largest value seen (so p99 never exceeds max). */
function bucketValue(h: HistogramData, i: number): number {
  const upper = i === 0 ? BASE_MS : BASE_MS * RATIO ** i;
  return Math.min(upper, h.maxMs);
}

export function percentile(h: HistogramData, q: number): number {
  if (h.count === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * h.count));
  let seen = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
    seen += h.counts[i]!;
    if (seen >= rank) return bucketValue(h, i);
  }
  return h.maxMs;
}

export function summarise(h: HistogramData): LatencySummary {
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    count: h.count,
    meanMs: h.count === 0 ? 0 : round(h.sumMs / h.count),
    p50Ms: round(percentile(h, 0.5)),
    p99Ms: round(percentile(h, 0.99)),
    maxMs: round(h.maxMs),
  };
}

/**
 * Latency histogram in microseconds with log-linear buckets (HDR style: 32 linear sub-buckets per
 * power of two, so every value is known to within ~3%). Constant memory, O(1) record, and mergeable
 * by adding counts, so generator processes can be aggregated exactly. Plain arrays so it crosses
 * the IPC channel as JSON.
 */

const SUB_BITS = 5;
const SUB = 1 << SUB_BITS; // 32
/** Values below 2·SUB µs get a bucket each; above, 32 buckets per power of two up to 2^31 µs. */
export const LATENCY_BUCKETS = 2 * SUB + (31 - SUB_BITS - 1) * SUB;

export interface LatencyHistogram {
  /** counts[i] = values that fell in bucket i. */
  counts: number[];
  count: number;
  sumUs: number;
  maxUs: number;
}

export function emptyLatencyHistogram(): LatencyHistogram {
  return { counts: new Array<number>(LATENCY_BUCKETS).fill(0), count: 0, sumUs: 0, maxUs: 0 };
}

export function bucketOf(us: number): number {
  const v = us <= 0 ? 0 : Math.min(0x7fffffff, Math.floor(us));
  if (v < 2 * SUB) return v;
  const shift = 31 - Math.clz32(v) - SUB_BITS; // ≥ 1
  return 2 * SUB + (shift - 1) * SUB + ((v >>> shift) - SUB);
}

/** Smallest value (µs) that lands in bucket i. */
export function bucketLowerUs(i: number): number {
  if (i < 2 * SUB) return i;
  const shift = Math.floor((i - 2 * SUB) / SUB) + 1;
  const m = ((i - 2 * SUB) % SUB) + SUB;
  return m * 2 ** shift;
}

/** Width (µs) of bucket i. */
function bucketWidthUs(i: number): number {
  if (i < 2 * SUB) return 1;
  return 2 ** (Math.floor((i - 2 * SUB) / SUB) + 1);
}

export function recordUs(h: LatencyHistogram, us: number): void {
  const i = bucketOf(us);
  h.counts[i]! += 1;
  h.count++;
  h.sumUs += us;
  if (us > h.maxUs) h.maxUs = us;
}

export function mergeLatency(into: LatencyHistogram, from: LatencyHistogram): LatencyHistogram {
  for (let i = 0; i < LATENCY_BUCKETS; i++) into.counts[i]! += from.counts[i] ?? 0;
  into.count += from.count;
  into.sumUs += from.sumUs;
  if (from.maxUs > into.maxUs) into.maxUs = from.maxUs;
  return into;
}

/** The q-quantile in ms (bucket midpoint, capped at the maximum seen); 0 when empty. */
export function latencyQuantileMs(h: LatencyHistogram, q: number): number {
  if (h.count === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * h.count));
  let seen = 0;
  for (let i = 0; i < LATENCY_BUCKETS; i++) {
    seen += h.counts[i]!;
    if (seen >= rank) {
      const mid = bucketLowerUs(i) + (bucketWidthUs(i) - 1) / 2;
      return Math.min(mid, h.maxUs) / 1000;
    }
  }
  return h.maxUs / 1000;
}

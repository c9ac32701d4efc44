import { describe, expect, it } from "vitest";
import {
  bucketLowerUs,
  bucketOf,
  emptyLatencyHistogram,
  LATENCY_BUCKETS,
  latencyQuantileMs,
  mergeLatency,
  recordUs,
} from "../../../bench/lib/histogram.ts";
import { median, quantile } from "../../../bench/lib/stats.ts";

describe("latency histogram", () => {
  it("puts every value in a bucket whose lower edge is within 1/32 below it", () => {
    for (const us of [0, 1, 63, 64, 65, 127, 128, 1_000, 12_345, 999_999, 2 ** 31 - 1]) {
      const i = bucketOf(us);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(LATENCY_BUCKETS);
      expect(bucketLowerUs(i)).toBeLessThanOrEqual(us);
      expect(us - bucketLowerUs(i)).toBeLessThanOrEqual(us / 32);
    }
  });

  it("reports quantiles of a known distribution within 3%", () => {
    const h = emptyLatencyHistogram();
    for (let us = 1; us <= 10_000; us++) recordUs(h, us); // 1 µs .. 10 ms, uniform
    expect(latencyQuantileMs(h, 0.5)).toBeCloseTo(5, 0);
    expect(Math.abs(latencyQuantileMs(h, 0.5) - 5) / 5).toBeLessThan(0.03);
    expect(Math.abs(latencyQuantileMs(h, 0.99) - 9.9) / 9.9).toBeLessThan(0.03);
    expect(latencyQuantileMs(h, 1)).toBeLessThanOrEqual(10);
  });

  it("merges exactly by adding counts", () => {
    const a = emptyLatencyHistogram();
    const b = emptyLatencyHistogram();
    for (let i = 0; i < 100; i++) recordUs(a, 100);
    for (let i = 0; i < 100; i++) recordUs(b, 10_000);
    const m = mergeLatency(mergeLatency(emptyLatencyHistogram(), a), b);
    expect(m.count).toBe(200);
    expect(m.maxUs).toBe(10_000);
    expect(latencyQuantileMs(m, 0.25)).toBeCloseTo(0.1, 1);
    expect(latencyQuantileMs(m, 0.75)).toBeGreaterThan(9.6);
    expect(latencyQuantileMs(emptyLatencyHistogram(), 0.5)).toBe(0);
  });
});

describe("stats", () => {
  it("takes medians of odd and even samples and ignores non-finite values", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([1, Number.NaN, 3])).toBe(2);
    expect(median([])).toBeNaN();
    expect(quantile([0, 10], 0.99)).toBeCloseTo(9.9);
  });
});

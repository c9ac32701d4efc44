import { describe, expect, it } from "vitest";
import {
  emptyHistogram,
  mergeHistogram,
  percentile,
  recordLatency,
  summarise,
} from "../../../edge-agent/simulator/histogram.ts";
import { seededRandom } from "../../../edge-agent/simulator/random.ts";

describe("latency histogram", () => {
  it("percentiles are within one 5 % bucket of the exact value", () => {
    const random = seededRandom(11);
    const values = Array.from({ length: 20_000 }, () => 0.05 + random() ** 3 * 400);
    const h = emptyHistogram();
    for (const v of values) recordLatency(h, v);
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = sorted[Math.ceil(q * sorted.length) - 1]!;
      const got = percentile(h, q);
      expect(got / exact).toBeGreaterThanOrEqual(0.99);
      expect(got / exact).toBeLessThanOrEqual(1.06);
    }
    expect(summarise(h).maxMs).toBeCloseTo(sorted.at(-1)!, 2);
  });

  it("merging two histograms equals recording everything in one", () => {
    const a = emptyHistogram();
    const b = emptyHistogram();
    const all = emptyHistogram();
    const random = seededRandom(5);
    for (let i = 0; i < 1000; i++) {
      const v = random() * 50;
      recordLatency(i % 2 ? a : b, v);
      recordLatency(all, v);
    }
    mergeHistogram(a, b);
    expect(a.counts).toEqual(all.counts);
    expect(summarise(a)).toEqual(summarise(all));
  });

  it("an empty histogram summarises to zeros", () => {
    expect(summarise(emptyHistogram())).toEqual({
      count: 0,
      meanMs: 0,
      p50Ms: 0,
      p99Ms: 0,
      maxMs: 0,
    });
  });
});

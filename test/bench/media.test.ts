import { describe, expect, it } from "vitest";
import { startResult } from "../../bench/lib/output.ts";
import { runDeframerBench } from "../../bench/media/deframer.ts";
import { render } from "../../bench/media/report.ts";

/** Smoke test of bench/media so it cannot silently rot; the numbers belong in docs/BENCHMARKS.md. */
describe("bench/media quick mode", () => {
  it("measures the de-framer next to a copy baseline, with identical output", () => {
    const settings = { streamMiB: 1, readBytes: 65_536, repetitions: 1 };
    const scenarios = runDeframerBench(settings);
    expect(scenarios.map((s) => s.name)).toEqual(["rtp-hik", "rtp-hik-mss", "raw-ps"]);
    for (const s of scenarios) {
      expect(s.outputIdentical).toBe(true);
      expect(s.deframerMBps).toBeGreaterThan(0);
      expect(s.copyMBps).toBeGreaterThan(0);
      expect(s.ratio).toBeCloseTo(s.deframerMBps / s.copyMBps, 0);
    }
    const result = startResult("media", "quick", "test", ["edge-agent/media"]).finish(
      settings,
      scenarios,
    );
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(render(result)).toContain("rtp-hik-mss");
  });
});

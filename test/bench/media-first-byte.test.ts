import { describe, expect, it } from "vitest";
import { startResult } from "../../bench/lib/output.ts";
import { runFirstByteBench } from "../../bench/media/first-byte.ts";
import { render } from "../../bench/media/relay-report.ts";

/**
 * Smoke test of bench/media/first-byte.ts (time from POST /devices/{id}/streams to the first viewer
 * byte through the `npm start` platform) at one run, so it cannot silently rot; the numbers belong
 * in docs/BENCHMARKS.md.
 */
describe("bench/media time to first byte, quick mode", () => {
  it("starts a live stream through the API and times its first viewer byte", async () => {
    const s = await runFirstByteBench({ runs: 1, streamType: "sub" });
    expect(s.perRun).toHaveLength(1);
    const run = s.perRun[0]!;
    expect(run.postMs).toBeGreaterThan(0);
    expect(run.firstByteMs).toBeGreaterThanOrEqual(run.postMs);
    expect(s.firstByteMsMedian).toBe(run.firstByteMs);
    const result = startResult("media-relay", "quick", "test", ["edge-agent/media"]).finish(
      { fullSize: false },
      [s],
    );
    expect(render(result)).toContain("POST → first byte at the viewer");
  }, 60_000);
});

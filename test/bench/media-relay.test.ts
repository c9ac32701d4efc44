import { describe, expect, it } from "vitest";
import { startResult } from "../../bench/lib/output.ts";
import { runLiveBench } from "../../bench/media/live.ts";
import {
  createLiveSource,
  createLiveSources,
  createStampReader,
} from "../../bench/media/live-source.ts";
import { render } from "../../bench/media/relay-report.ts";
import { runThroughputBench } from "../../bench/media/throughput.ts";
import { createDeframer } from "../../edge-agent/media/deframer.ts";
import { createPsPackSplitter } from "../../edge-agent/media/ps-packs.ts";

/**
 * Smoke test of bench/media/relay-index.ts at a tiny size, so it cannot silently rot: the agent and
 * the pipe relay in their own processes, one stream through each; two paced live streams with
 * their PS, TS and stalled viewers. The numbers belong in docs/BENCHMARKS.md; here only that
 * bytes arrived intact and the JSON and its section are well formed. (The time-to-first-byte part
 * needs the whole local platform; bench/media/first-byte.ts runs only under `npm run bench`.)
 */
describe("bench/media relay quick mode", () => {
  it("the live source's stamps survive framing and de-framing, across any chunking", () => {
    const source = createLiveSource({ bitrateBps: 1_000_000, session: 42 });
    const sent = [1_700_000_000_000_001, 1_700_000_000_040_002, 1_700_000_000_080_003];
    const wire = Buffer.concat([source.header(), ...sent.flatMap((t) => source.nextFrame(t).wire)]);
    const ps = Buffer.concat(createDeframer().push(wire));
    const seen: number[] = [];
    const read = createStampReader((t) => seen.push(t));
    for (let i = 0; i < ps.length; i += 7) read(ps.subarray(i, i + 7));
    expect(seen).toEqual(sent);
  });

  it("the pre-framed source patches each stream's SSRC, SCR, PTS and stamp: whole packs, keyframes every GOP, any GOP phase", () => {
    const sources = createLiveSources({ bitrateBps: 2_000_000, gopFrames: 10 });
    for (const [session, startFrame] of [
      [7, 0],
      [8, 3],
    ] as const) {
      const source = sources(session, startFrame);
      const frames = Array.from({ length: 25 }, (_, k) => source.nextFrame(1_000 + k).wire[0]!);
      const deframer = createDeframer({ expectedSsrc: session });
      const ps = Buffer.concat(deframer.push(Buffer.concat([source.header(), ...frames])));
      expect(deframer.stats().ssrcMismatches).toBe(0);
      const splitter = createPsPackSplitter();
      const packs = [...splitter.push(ps), ...splitter.end()];
      expect(packs).toHaveLength(25);
      packs.forEach((p, k) => {
        const frame = startFrame + k;
        expect({ k, pts: p.pts, scr: p.scr, key: p.keyframe }).toEqual({
          k,
          pts: 90_000 + 3600 * frame,
          scr: 90_000 + 3600 * (frame - 1),
          key: frame % 10 === 0,
        });
      });
      const seen: number[] = [];
      createStampReader((t) => seen.push(t))(ps);
      expect(seen).toEqual(Array.from({ length: 25 }, (_, k) => 1_000 + k));
    }
  });

  it("one stream through the agent and through a TCP pipe, then two live streams with stalled viewers", async () => {
    const tp = await runThroughputBench({ streamMiB: 1, repetitions: 1, writeBytes: 65_536 });
    expect(tp.agentComplete).toBe(true);
    expect(tp.perRepetition[0]!.pipeDelivered).toBe(1);
    expect(tp.agentMBps).toBeGreaterThan(0);
    expect(tp.ratio).toBeCloseTo(tp.agentMBps / tp.pipeMBps, 1);

    const live = await runLiveBench({
      streams: 2,
      seconds: 2,
      warmupSeconds: 1,
      bitrateBps: 1_000_000,
      gopFrames: 25,
    });
    expect(live.viewers).toEqual({ healthy: 4, stalled: 2 });
    expect(live.pusher.streams).toBe(2);
    expect(live.pusher.psBitrateBpsMedian).toBeGreaterThan(0);
    expect(live.healthy.psBitrateRatioMedian).toBeGreaterThan(0.5);
    expect(live.healthy.tsBitrateBpsMedian).toBeGreaterThan(0);
    expect(live.healthy.lagMedianMs).toBeGreaterThan(0);
    // The stamps survive the TS remux too.
    expect(live.healthy.tsLagMedianMs).toBeGreaterThan(0);
    expect(live.agent.rssBaselineBytes).toBeGreaterThan(0);
    expect(Number.isFinite(live.agent.heapPerStreamBytes)).toBe(true);

    const result = startResult("media-relay", "quick", "test", ["edge-agent/media"]).finish(
      { fullSize: false },
      [tp, live],
    );
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    const md = render(result);
    expect(md).toContain("MB/s TCP pipe");
    expect(md).toContain("2 live streams");
    expect(md).toContain("Reduced sizes");
  }, 60_000);
});

import { describe, expect, it } from "vitest";
import { createRelay } from "../../../edge-agent/media/relay.ts";
import { randomInt, seededRandom } from "../../../edge-agent/simulator/random.ts";
import { hikPs } from "./helpers/ps-fixtures.ts";
import { CollectingSink, manualClock, StalledSink, settle } from "./helpers/relay-sinks.ts";

const MAX_PACK = 64 * 1024;
const MAX_GOP = 256 * 1024;
const CAP = 48 * 1024;

describe("relay under random and mutated input", () => {
  it("never throws, keeps its own buffers and every viewer's backlog under the caps", async () => {
    const random = seededRandom(2024);
    const base = hikPs({ frames: 40, keyEvery: 10, frameBytes: 2500, audioType: 0x0f, seed: 9 }).ps;
    for (let run = 0; run < 150; run++) {
      const clock = manualClock();
      const relay = createRelay(
        {
          maxPackBytes: MAX_PACK,
          maxGopBytes: MAX_GOP,
          maxViewerBufferBytes: CAP,
          drainTimeoutMs: 500,
        },
        clock,
      );
      const input = Buffer.from(base);
      if (run % 4 === 0) {
        for (let i = 0; i < input.length; i++) input[i] = randomInt(random, 0, 255);
      } else {
        for (let n = randomInt(random, 1, 60); n > 0; n--) {
          input[randomInt(random, 0, input.length - 1)] =
            random() < 0.5 ? 0 : randomInt(random, 0, 255);
        }
      }
      const fastTs = new CollectingSink();
      const stalled = [new StalledSink(), new StalledSink()];
      relay.addViewer(new CollectingSink(), "ps");
      relay.addViewer(fastTs, "ts");
      relay.addViewer(stalled[0]!, "ps");
      relay.addViewer(stalled[1]!, "ts");
      let peakRelay = 0;
      let peakBacklog = 0;
      for (let at = 0; at < input.length; ) {
        const n = randomInt(random, 1, 6000);
        relay.push(input.subarray(at, at + n));
        at += n;
        clock.advance(randomInt(random, 0, 40));
        if (random() < 0.05) relay.addViewer(new CollectingSink(), random() < 0.5 ? "ps" : "ts");
        peakRelay = Math.max(peakRelay, relay.bufferedBytes());
        for (const s of stalled) peakBacklog = Math.max(peakBacklog, s.writableLength);
      }
      expect(peakRelay).toBeLessThanOrEqual(MAX_GOP + MAX_PACK + 1024 + 3);
      // A backlog passes the cap only by a pack written to an empty sink.
      expect(peakBacklog).toBeLessThanOrEqual(Math.max(CAP, 2 * MAX_PACK));
      relay.end();
      await settle();
      expect(fastTs.bytes().length % 188).toBe(0);
      relay.close();
      expect(clock.pending()).toBe(0);
    }
  });
});

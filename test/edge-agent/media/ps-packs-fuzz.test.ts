import { describe, expect, it } from "vitest";
import { createPsPackSplitter, type PsPack } from "../../../edge-agent/media/ps-packs.ts";
import { type Random, randomInt, seededRandom } from "../../../edge-agent/simulator/random.ts";
import { hikPs } from "./helpers/ps-fixtures.ts";

const MAX_PACK = 64 * 1024;
/** The pack being built plus one element header and the sync carry. */
const BOUND = MAX_PACK + 6 + 1018 + 3;

function mutate(random: Random, input: Buffer): Buffer {
  const b = Buffer.from(input);
  switch (randomInt(random, 0, 4)) {
    case 0:
      for (let n = randomInt(random, 1, 8); n > 0 && b.length > 0; n--) {
        b[randomInt(random, 0, b.length - 1)] = randomInt(random, 0, 255);
      }
      return b;
    case 1:
      return b.subarray(0, randomInt(random, 0, b.length));
    case 2: {
      const at = randomInt(random, 0, b.length);
      const junk = Buffer.from(
        Array.from({ length: randomInt(random, 1, 64) }, () =>
          random() < 0.3
            ? 0
            : random() < 0.2
              ? 1
              : random() < 0.2
                ? 0xba
                : randomInt(random, 0, 255),
        ),
      );
      return Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]);
    }
    case 3: {
      const a = randomInt(random, 0, b.length);
      return Buffer.concat([b.subarray(0, a), b.subarray(a + randomInt(random, 1, 300))]);
    }
    default: {
      // A start code whose length field claims up to 64 KiB.
      const at = b.indexOf(Buffer.from([0, 0, 1]), randomInt(random, 0, b.length));
      if (at >= 0 && at + 6 < b.length) b.writeUInt16BE(randomInt(random, 0, 0xffff), at + 4);
      return b;
    }
  }
}

describe("PS pack splitter under random and mutated input", () => {
  it("never throws, emits only whole-looking packs, accounts for every byte and stays within its memory bound", () => {
    const random = seededRandom(42);
    const base = [
      hikPs({ frames: 12, keyEvery: 5, frameBytes: 800, audioType: 0x90, seed: 1 }).ps,
      hikPs({ frames: 8, keyEvery: 3, frameBytes: 30_000, codec: "h265", seed: 2 }).ps,
    ];
    for (let run = 0; run < 600; run++) {
      let input: Buffer;
      if (run % 5 === 0) {
        input = Buffer.from(
          Array.from({ length: randomInt(random, 0, 3000) }, () => randomInt(random, 0, 255)),
        );
      } else {
        input = base[run % 2]!;
        for (let m = randomInt(random, 1, 4); m > 0; m--) input = mutate(random, input);
      }
      const s = createPsPackSplitter({ maxPackBytes: MAX_PACK });
      let emitted = 0;
      let peak = 0;
      let malformed = 0;
      const check = (packs: PsPack[]): void => {
        for (const p of packs) {
          emitted += p.bytes.length;
          if (p.bytes.readUInt32BE(0) !== 0x1ba || p.bytes.length > MAX_PACK) malformed++;
          for (const pes of p.pes) {
            const ordered = pes.offset < pes.payloadOffset && pes.payloadOffset <= pes.end;
            if (!ordered || pes.end > p.bytes.length) malformed++;
          }
        }
      };
      for (let at = 0; at < input.length; ) {
        const n = randomInt(random, 1, random() < 0.5 ? 16 : 5000);
        check(s.push(input.subarray(at, at + n)));
        at += n;
        peak = Math.max(peak, s.bufferedBytes());
      }
      check(s.end());
      expect(malformed).toBe(0);
      expect(peak).toBeLessThanOrEqual(BOUND);
      const st = s.stats();
      expect(st.bytesOut).toBe(emitted);
      expect(st.bytesOut + st.garbageBytes + st.oversizeBytes + st.truncatedBytes).toBe(
        input.length,
      );
    }
  });
});

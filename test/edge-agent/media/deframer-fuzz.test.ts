import { describe, expect, it } from "vitest";
import { createDeframer } from "../../../edge-agent/media/deframer.ts";
import { createFramer, privateHeader } from "../../../edge-agent/media/framer.ts";
import { type Random, randomInt, seededRandom } from "../../../edge-agent/simulator/random.ts";
import { syntheticPs } from "./helpers/synthetic-ps.ts";

const MAX_CHUNK = 64 * 1024;
/** One incomplete record (4 + 65535) plus one partial chunk: the de-framer's memory bound. */
const BOUND = 4 + 0xffff + MAX_CHUNK;

function mutate(random: Random, input: Buffer): Buffer {
  const b = Buffer.from(input);
  switch (randomInt(random, 0, 5)) {
    case 0: // flip bytes
      for (let n = randomInt(random, 1, 8); n > 0 && b.length > 0; n--) {
        const j = randomInt(random, 0, b.length - 1);
        b[j] = b[j]! ^ 0xff;
      }
      return b;
    case 1: // truncate
      return b.subarray(0, randomInt(random, 0, b.length));
    case 2: {
      // insert random bytes (with '$' and RTP-looking bytes)
      const at = randomInt(random, 0, b.length);
      const junk = Buffer.from(
        Array.from({ length: randomInt(random, 1, 64) }, () =>
          random() < 0.2 ? 0x24 : random() < 0.2 ? 0x80 : randomInt(random, 0, 255),
        ),
      );
      return Buffer.concat([b.subarray(0, at), junk, b.subarray(at)]);
    }
    case 3: {
      // delete a range
      const a = randomInt(random, 0, b.length);
      return Buffer.concat([b.subarray(0, a), b.subarray(a + randomInt(random, 1, 300))]);
    }
    case 4: {
      // duplicate a range
      const a = randomInt(random, 0, b.length);
      const e = Math.min(b.length, a + randomInt(random, 1, 500));
      return Buffer.concat([b.subarray(0, e), b.subarray(a, e), b.subarray(e)]);
    }
    default: {
      // corrupt a length field: a '$' record claiming up to 64 KiB
      const at = b.indexOf(0x24, randomInt(random, 0, b.length));
      if (at >= 0 && at + 3 < b.length) b.writeUInt16BE(randomInt(random, 0, 0xffff), at + 2);
      return b;
    }
  }
}

describe("de-framer fuzz: random and mutated input never throws and memory stays bounded", () => {
  it("survives 24 000 seeded inputs fed in random chunk sizes", () => {
    const random = seededRandom(20261124);
    const seeds: Buffer[] = [];
    for (let i = 0; i < 8; i++) {
      const src = syntheticPs(random, { frames: 3, keyEvery: 2, maxKeyframeBytes: 3000 });
      const framer = createFramer({ ssrc: i * 7919, maxPayloadBytes: randomInt(random, 40, 1400) });
      const wire = Buffer.concat(src.units.flatMap((u) => framer.frame(u)));
      seeds.push(i % 3 === 0 ? Buffer.concat([privateHeader(), wire]) : wire);
      if (i === 7) seeds.push(src.ps);
    }
    let outBytes = 0;
    let resyncs = 0;
    for (let n = 0; n < 24_000; n++) {
      let input: Buffer;
      if (n % 4 === 0) {
        input = Buffer.allocUnsafe(randomInt(random, 0, 600));
        for (let i = 0; i < input.length; i++) input[i] = (random() * 256) | 0;
      } else {
        input = seeds[n % seeds.length]!;
        for (let m = randomInt(random, 1, 3); m > 0; m--) input = mutate(random, input);
      }
      const d = createDeframer({
        maxChunkBytes: MAX_CHUNK,
        ...(n % 2 === 0 ? { expectedSsrc: (n % 8) * 7919 } : {}),
      });
      const maxRead = random() < 0.5 ? 16 : 4096;
      for (let i = 0; i < input.length; ) {
        const k = randomInt(random, 1, maxRead);
        for (const out of d.push(input.subarray(i, i + k))) outBytes += out.length;
        if (d.bufferedBytes() > BOUND)
          throw new Error(`input ${n}: ${d.bufferedBytes()} bytes held`);
        i += k;
      }
      d.end();
      const s = d.stats();
      resyncs += s.resyncs;
      if (s.bytesOut > s.bytesIn) throw new Error(`input ${n}: more bytes out than in`);
      if (d.bufferedBytes() !== 0) throw new Error(`input ${n}: memory held after end()`);
    }
    // The fuzzer reached the interesting paths.
    expect(outBytes).toBeGreaterThan(0);
    expect(resyncs).toBeGreaterThan(1000);
  });
});

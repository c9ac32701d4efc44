import { describe, expect, it } from "vitest";
import { createDeframer, type DeframerOptions } from "../../../edge-agent/media/deframer.ts";
import {
  createFramer,
  type FramerOptions,
  PRIVATE_HEADER_BYTES,
  privateHeader,
} from "../../../edge-agent/media/framer.ts";
import { scanPs } from "../../../edge-agent/media/ps.ts";
import { seededRandom } from "../../../edge-agent/simulator/random.ts";
import { syntheticPs } from "./helpers/synthetic-ps.ts";

const SSRC = 679647373;

function frameAll(units: Buffer[], options: Partial<FramerOptions> = {}): Buffer[] {
  const framer = createFramer({ ssrc: SSRC, ...options });
  return units.flatMap((u, i) => framer.frame(u, { timestamp: i * 3600 }));
}

function run(chunks: Buffer[], options: DeframerOptions = {}) {
  const d = createDeframer(options);
  const out: Buffer[] = [];
  for (const c of chunks) out.push(...d.push(c));
  d.end();
  return { ps: Buffer.concat(out), stats: d.stats(), pieces: out };
}

/** Cuts a buffer into pieces of random sizes in [1, max]. */
function chop(b: Buffer, random: () => number, max: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; ) {
    const n = 1 + Math.floor(random() * max);
    out.push(b.subarray(i, i + n));
    i += n;
  }
  return out;
}

// Several records: small maxPayload so one PS yields whole chunks (0x0d) and fragment runs (0x1c).
const small = syntheticPs(seededRandom(1), {
  frames: 4,
  keyEvery: 3,
  maxKeyframeBytes: 400,
  maxFrameBytes: 120,
});
const smallWire = Buffer.concat(frameAll(small.units, { maxPayloadBytes: 96 }));

describe("de-framer: $-framed RTP with Hikvision markers (ehome-2.0 §4.1)", () => {
  it("turns a whole main-stream style push (0x0d chunks and 0x1c fragments mixed) into the exact PS", () => {
    const src = syntheticPs(seededRandom(2), { frames: 60, keyEvery: 25 });
    const wire = Buffer.concat(frameAll(src.units));
    const { ps, stats } = run([wire]);
    expect(ps.equals(src.ps)).toBe(true);
    expect(stats.chunks).toBeGreaterThan(0);
    expect(stats.fragments).toBeGreaterThan(0);
    expect(stats.reassembled).toBeGreaterThan(0);
    expect(stats.markers).toBe("hik");
    expect(stats.recordsDropped + stats.resyncs + stats.garbageBytes).toBe(0);
    expect(stats.bytesIn).toBe(wire.length);
    expect(stats.bytesOut).toBe(src.ps.length);
    const scan = scanPs(ps);
    expect(scan.error).toBeUndefined();
    expect(scan.packs).toBe(60);
    expect(scan.audio).toBe(src.audioPackets);
  });

  it("never leaves a 0x1c marker pair in the PS (the ZLMediaKit main-stream defect)", () => {
    const { ps, stats } = run([smallWire]);
    expect(stats.fragments).toBeGreaterThan(2);
    expect(ps.equals(small.ps)).toBe(true);
    expect(scanPs(ps).error).toBeUndefined();
  });

  it("gives the same PS when the stream is split at every byte boundary", () => {
    const wire = Buffer.concat([privateHeader({ session: SSRC }), smallWire]);
    for (let k = 0; k <= wire.length; k++) {
      const { ps, stats } = run([wire.subarray(0, k), wire.subarray(k)]);
      if (!ps.equals(small.ps)) throw new Error(`split at ${k} changed the output`);
      expect(stats.headerBytes).toBe(PRIVATE_HEADER_BYTES);
    }
  });

  it("gives the same PS when fed one byte at a time", () => {
    const bytes = [...smallWire].map((v) => Buffer.from([v]));
    const { ps, stats } = run(bytes);
    expect(ps.equals(small.ps)).toBe(true);
    expect(stats.records).toBeGreaterThan(small.units.length);
  });

  it("reassembles fragments spread across records and across randomly sized TCP reads", () => {
    const random = seededRandom(3);
    const src = syntheticPs(random, { frames: 50, keyEvery: 10 });
    const wire = Buffer.concat(frameAll(src.units, { maxPayloadBytes: 1400 }));
    for (const max of [7, 1500, 70_000]) {
      const { ps, stats } = run(chop(wire, random, max));
      expect(ps.equals(src.ps)).toBe(true);
      expect(stats.reassembled).toBeGreaterThan(0);
    }
  });

  it("passes payload through zero-copy when a record lies inside one chunk", () => {
    const d = createDeframer();
    const out = d.push(smallWire);
    expect(out.some((b) => b.buffer === smallWire.buffer)).toBe(true);
  });

  it("honours CSRCs, a header extension and RTP padding", () => {
    const wire = Buffer.concat(
      frameAll(small.units, {
        maxPayloadBytes: 80,
        csrcs: [1, 2, 3],
        extension: { profile: 0xbede, data: Buffer.alloc(8, 0x24) },
        padding: 3,
      }),
    );
    const { ps, stats } = run(chop(wire, seededRandom(4), 50));
    expect(ps.equals(small.ps)).toBe(true);
    expect(stats.malformedRecords).toBe(0);
  });

  it("passes plain RTP-PS (no marker bytes) through unchanged", () => {
    const wire = Buffer.concat(frameAll(small.units, { markers: "none", maxPayloadBytes: 64 }));
    const { ps, stats } = run([wire]);
    expect(ps.equals(small.ps)).toBe(true);
    expect(stats.markers).toBe("none");
  });

  it("drops RTCP records on an interleaved channel", () => {
    const records = frameAll(small.units, { maxPayloadBytes: 96 });
    const rtcp = Buffer.from([0x24, 0x01, 0x00, 0x1c, 0x80, 0xc8, 0x00, 0x06, ...Buffer.alloc(24)]);
    const wire = Buffer.concat([records[0]!, rtcp, ...records.slice(1)]);
    const { ps, stats } = run([wire]);
    expect(ps.equals(small.ps)).toBe(true);
    expect(stats.rtcpRecords).toBe(1);
  });
});

describe("de-framer: the optional 256-byte private header (ehome-2.0 §4.1 item 2)", () => {
  it("skips and reports the header at connection start", () => {
    const header = privateHeader({ session: SSRC, channel: 1, deviceId: "dev-1" });
    const seen: Buffer[] = [];
    const { ps, stats } = run([Buffer.concat([header, smallWire])], {
      onHeader: (h) => seen.push(h),
    });
    expect(ps.equals(small.ps)).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.equals(header)).toBe(true);
    expect(stats.headerBytes).toBe(256);
  });

  it("works without the header", () => {
    const seen: Buffer[] = [];
    const { ps, stats } = run([smallWire], { onHeader: (h) => seen.push(h) });
    expect(ps.equals(small.ps)).toBe(true);
    expect(seen).toHaveLength(0);
    expect(stats.headerBytes).toBe(0);
  });

  it("does not mistake a first record whose length is 256 for the header", () => {
    // RTP header (12) + marker (1) + 243 bytes of PS = 256: the record starts 24 00 01 00.
    const unit = Buffer.concat([small.ps.subarray(0, 243)]);
    const records = createFramer({ ssrc: SSRC }).frame(unit);
    expect([...records[0]!.subarray(0, 4)]).toEqual([0x24, 0x00, 0x01, 0x00]);
    const { ps, stats } = run(records);
    expect(ps.equals(unit)).toBe(true);
    expect(stats.headerBytes).toBe(0);
  });

  it("looks for the header only at connection start: header-like bytes later are garbage", () => {
    const framer = createFramer({ ssrc: SSRC, maxPayloadBytes: 96 });
    const perUnit = small.units.map((u) => framer.frame(u));
    const fake = privateHeader({ session: 1 });
    const wire = Buffer.concat([...perUnit[0]!, fake, ...perUnit.slice(1).flat()]);
    const seen: Buffer[] = [];
    const { ps, stats } = run([wire], { onHeader: (h) => seen.push(h) });
    expect(seen).toHaveLength(0);
    expect(ps.equals(small.ps)).toBe(true);
    expect(stats.resyncs).toBe(1);
    expect(stats.garbageBytes).toBe(256);
  });
});

describe("de-framer: garbage and resynchronisation", () => {
  const random = seededRandom(5);
  const src = syntheticPs(random, { frames: 30, keyEvery: 10, maxKeyframeBytes: 8000 });
  const framer = createFramer({ ssrc: SSRC, maxPayloadBytes: 500 });
  const perUnit = src.units.map((u) => framer.frame(u));

  /** Garbage full of '$' followed by RTP-v2-looking bytes, but with a foreign SSRC. */
  function hostileGarbage(n: number): Buffer {
    const g = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) g[i] = (random() * 256) | 0;
    for (let i = 0; i + 16 < n; i += 17) g.set([0x24, 0x00, 0x00, 0x40, 0x80, 0x60], i);
    return g;
  }

  it("resynchronises after garbage between chunks and loses nothing else", () => {
    const wire: Buffer[] = [];
    perUnit.forEach((records, i) => {
      wire.push(...records);
      if (i % 4 === 1) wire.push(hostileGarbage(50 + i));
    });
    const all = Buffer.concat(wire);
    for (const max of [3, 200, 100_000]) {
      const { ps, stats } = run(chop(all, random, max));
      expect(ps.equals(src.ps)).toBe(true);
      expect(stats.resyncs).toBe(Math.ceil((perUnit.length - 1) / 4));
      expect(stats.garbageBytes).toBeGreaterThan(0);
    }
  });

  it("drops a fragmented chunk interrupted by garbage and keeps the rest", () => {
    const k = perUnit.findIndex((r, i) => i > 0 && r.length >= 3);
    expect(k).toBeGreaterThan(0);
    const broken = perUnit[k]!;
    const wire = Buffer.concat([
      ...perUnit.slice(0, k).flat(),
      broken[0]!,
      hostileGarbage(40),
      ...broken.slice(1),
      ...perUnit.slice(k + 1).flat(),
    ]);
    const { ps, stats } = run([wire], { expectedSsrc: SSRC });
    const expected = Buffer.concat(src.units.filter((_, i) => i !== k));
    expect(ps.equals(expected)).toBe(true);
    expect(stats.fragmentsMissingLast).toBe(1);
    expect(stats.fragmentsMissingFirst).toBe(1);
  });

  it("resynchronises when garbage precedes the first record", () => {
    const g = Buffer.from("not a media stream \x01\x00\x01 at all", "latin1");
    const { ps, stats } = run([g, ...perUnit.flat()]);
    expect(ps.equals(src.ps)).toBe(true);
    expect(stats.headerBytes).toBe(0);
    expect(stats.garbageBytes).toBe(g.length);
  });

  it("counts a missing first fragment and a missing last fragment, dropping the partial", () => {
    const runs = perUnit.map((r, i) => ({ r, i })).filter(({ r }) => r.length >= 3);
    const a = runs[0]!;
    const b = runs[1]!;
    const wire = perUnit.flatMap((records, i) =>
      i === a.i ? records.slice(1) : i === b.i ? records.slice(0, -1) : records,
    );
    const { ps, stats } = run(wire);
    const expected = Buffer.concat(src.units.filter((_, i) => i !== a.i && i !== b.i));
    expect(ps.equals(expected)).toBe(true);
    expect(stats.fragmentsMissingFirst).toBe(1);
    expect(stats.fragmentsMissingLast).toBe(1);
    expect(stats.resyncs).toBe(0);
  });

  it("drops a chunk larger than maxChunkBytes, counting it, and bounds its memory", () => {
    const d = createDeframer({ maxChunkBytes: 1000 });
    const out: Buffer[] = [];
    for (const r of perUnit.flat()) {
      out.push(...d.push(r));
      expect(d.bufferedBytes()).toBeLessThanOrEqual(1000 + 4 + 0xffff);
    }
    const stats = d.stats();
    expect(stats.fragmentOverflows).toBeGreaterThan(0);
    const kept = src.units.filter((u, i) => perUnit[i]!.length === 1 || u.length <= 1000);
    expect(Buffer.concat(out).equals(Buffer.concat(kept))).toBe(true);
  });

  it("counts the bytes of an incomplete record at the end of the stream", () => {
    const d = createDeframer();
    const wire = smallWire.subarray(0, smallWire.length - 5);
    d.push(wire);
    d.end();
    expect(d.stats().truncatedBytes).toBeGreaterThan(0);
    expect(d.bufferedBytes()).toBe(0);
    expect(d.push(smallWire)).toEqual([]);
  });
});

describe("de-framer: SSRC against the session (ehome-2.0 §4.1 item 5)", () => {
  const other = createFramer({ ssrc: 0x0a689ebc, maxPayloadBytes: 96 });
  const mine = createFramer({ ssrc: SSRC, maxPayloadBytes: 96 });
  const intruder = syntheticPs(seededRandom(6), {
    frames: 3,
    maxFrameBytes: 300,
    maxKeyframeBytes: 400,
  });
  const wire = Buffer.concat(
    small.units.flatMap((u, i) => [
      ...mine.frame(u),
      ...(intruder.units[i] ? other.frame(intruder.units[i]!) : []),
    ]),
  );

  it("drops and counts records whose SSRC is not the session's", () => {
    const { ps, stats } = run([wire], { expectedSsrc: SSRC });
    expect(ps.equals(small.ps)).toBe(true);
    expect(stats.ssrcMismatches).toBe(intruder.units.length);
    expect(stats.foreignSsrc).toBe(0x0a689ebc);
    expect(stats.ssrc).toBe(SSRC);
  });

  it("without a session SSRC, keeps to the first record's SSRC", () => {
    const { ps, stats } = run([wire]);
    expect(ps.equals(small.ps)).toBe(true);
    expect(stats.ssrcMismatches).toBe(intruder.units.length);
  });

  it("relearns the SSRC when only another one arrives for 64 KiB (a restarted stream)", () => {
    const later = syntheticPs(seededRandom(9), { frames: 40, keyEvery: 10 });
    const restarted = createFramer({ ssrc: 0x0a689ebc });
    const { ps, stats } = run([
      Buffer.concat([...frameAll(small.units), ...later.units.flatMap((u) => restarted.frame(u))]),
    ]);
    expect(stats.ssrc).toBe(0x0a689ebc);
    expect(ps.subarray(0, small.ps.length).equals(small.ps)).toBe(true);
    expect(ps.subarray(-50_000).equals(later.ps.subarray(-50_000))).toBe(true);
  });
});

describe("de-framer: raw MPEG-PS for playback and download (ehome-2.0 §2.7, §8)", () => {
  const src = syntheticPs(seededRandom(7), { frames: 20, keyEvery: 10, maxKeyframeBytes: 20_000 });

  it("passes a stream that starts with a pack header through unchanged", () => {
    const { ps, stats } = run(chop(src.ps, seededRandom(8), 3000));
    expect(ps.equals(src.ps)).toBe(true);
    expect(stats.mode).toBe("ps");
    expect(stats.records).toBe(0);
  });

  it("passes raw PS through after the private header, split at every byte of the start", () => {
    const wire = Buffer.concat([privateHeader(), src.ps]);
    for (let k = 0; k <= 300; k++) {
      const { ps, stats } = run([wire.subarray(0, k), wire.subarray(k)]);
      if (!ps.equals(src.ps)) throw new Error(`split at ${k} changed the output`);
      expect(stats.headerBytes).toBe(256);
    }
  });

  it("does not copy passthrough data", () => {
    const d = createDeframer();
    d.push(src.ps.subarray(0, 100));
    const out = d.push(src.ps.subarray(100));
    expect(out).toHaveLength(1);
    expect(out[0]!.buffer).toBe(src.ps.buffer);
  });
});

describe("de-framer: records it cannot use", () => {
  it("drops and counts a Hikvision-stream record without a valid marker", () => {
    const hik = createFramer({ ssrc: SSRC, maxPayloadBytes: 96 });
    const plain = createFramer({ ssrc: SSRC, markers: "none" });
    const stray = Buffer.from([0x47, 1, 2, 3]);
    const badFlag = Buffer.from([0x1c, 0x20, 9, 9]);
    const wire = Buffer.concat([
      ...hik.frame(small.units[0]!),
      ...plain.frame(stray),
      ...plain.frame(badFlag),
      ...small.units.slice(1).flatMap((u) => hik.frame(u)),
    ]);
    const { ps, stats } = run([wire]);
    expect(ps.equals(small.ps)).toBe(true);
    expect(stats.badMarkers).toBe(2);
    expect(stats.recordsDropped).toBe(2);
  });

  it("drops and counts a record whose CSRCs, extension or padding overrun it", () => {
    const good = createFramer({ ssrc: SSRC, maxPayloadBytes: 96 });
    const records = small.units.map((u) => good.frame(u));
    const overrun = (mutate: (r: Buffer) => void): Buffer => {
      const r = Buffer.from(createFramer({ ssrc: SSRC }).frame(Buffer.from([0, 0, 1, 0xe0]))[0]!);
      mutate(r);
      return r;
    };
    const bad = [
      overrun((r) => {
        r[4] = 0x8f; // 15 CSRCs in a 17-byte packet
      }),
      overrun((r) => {
        r[4] = 0xa0; // padding flag; last byte 0xe0 > what is left
      }),
      overrun((r) => {
        r[4] = 0x90; // extension header, no room for it
      }),
    ];
    const wire = Buffer.concat([...records[0]!, ...bad, ...records.slice(1).flat()]);
    const { ps, stats } = run([wire]);
    expect(ps.equals(small.ps)).toBe(true);
    expect(stats.malformedRecords).toBe(3);
  });

  it("accepts Uint8Array input as well as Buffer", () => {
    const u8 = new Uint8Array(smallWire.length);
    u8.set(smallWire);
    const d = createDeframer();
    const out = Buffer.concat([...d.push(u8.subarray(0, 100)), ...d.push(u8.subarray(100))]);
    expect(out.equals(small.ps)).toBe(true);
  });
});

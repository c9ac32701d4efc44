import { describe, expect, it } from "vitest";
import { packHeader, pesPacket } from "../../../edge-agent/media/ps.ts";
import {
  createPsPackSplitter,
  type PsPack,
  type PsPackSplitter,
} from "../../../edge-agent/media/ps-packs.ts";
import { seededRandom } from "../../../edge-agent/simulator/random.ts";
import { accessUnit, hikPs, psm } from "./helpers/ps-fixtures.ts";

/** Pack bytes equal to `expected`, compared without vitest's slow byte-by-byte diff. */
function expectPacks(packs: PsPack[], expected: Buffer[]): void {
  expect(packs.length).toBe(expected.length);
  expect(packs.every((p, k) => p.bytes.equals(expected[k]!))).toBe(true);
}

function feed(s: PsPackSplitter, input: Buffer, cuts: number[]): PsPack[] {
  const out: PsPack[] = [];
  let at = 0;
  for (const c of [...cuts, input.length]) {
    out.push(...s.push(input.subarray(at, c)));
    at = c;
  }
  out.push(...s.end());
  return out;
}

describe("PS pack splitter (ISO/IEC 13818-1 §2.5.3)", () => {
  const stream = hikPs({ frames: 6, keyEvery: 3, frameBytes: 300, audioType: 0x90 });

  it("returns each pack whole, with its keyframe flag, PTS and PES list", () => {
    const s = createPsPackSplitter();
    const packs = feed(s, stream.ps, []);
    expect(packs.map((p) => p.bytes)).toEqual(stream.packs);
    expect(packs.map((p) => p.keyframe)).toEqual(stream.keyframes);
    expect(packs.map((p) => p.pts)).toEqual(stream.pts);
    expect(packs[0]!.codec).toBe("h264");
    expect(packs[0]!.map?.streams).toEqual([
      { streamId: 0xe0, streamType: 0x1b },
      { streamId: 0xc0, streamType: 0x90 },
    ]);
    // The map object is kept while unchanged, so consumers can compare by identity.
    expect(packs[5]!.map).toBe(packs[0]!.map);
    const first = packs[0]!;
    const video = first.pes[0]!;
    expect(video.streamId).toBe(0xe0);
    expect(first.bytes.subarray(video.payloadOffset, video.end)).toEqual(stream.units[0]);
    expect(video.end).toBe(first.bytes.length);
    expect(s.stats()).toMatchObject({
      packs: stream.packs.length,
      keyframes: 2,
      bytesIn: stream.ps.length,
      bytesOut: stream.ps.length,
      resyncs: 0,
      garbageBytes: 0,
    });
    expect(s.bufferedBytes()).toBe(0);
  });

  it("gives the same packs when the input is split at every byte boundary", () => {
    const small = hikPs({ frames: 3, keyEvery: 2, frameBytes: 40, audioType: 0x0f });
    for (let cut = 1; cut < small.ps.length; cut++) {
      const packs = feed(createPsPackSplitter(), small.ps, [cut]);
      expectPacks(packs, small.packs);
      expect(packs.map((p) => p.keyframe)).toEqual(small.keyframes);
      expect(packs.map((p) => p.pts)).toEqual(small.pts);
    }
  });

  it("gives the same packs one byte at a time and in random read sizes", () => {
    const oneByOne = feed(
      createPsPackSplitter(),
      stream.ps,
      Array.from({ length: stream.ps.length - 1 }, (_, i) => i + 1),
    );
    expectPacks(oneByOne, stream.packs);
    expect(oneByOne.map((p) => p.keyframe)).toEqual(stream.keyframes);
    const random = seededRandom(7);
    for (let run = 0; run < 20; run++) {
      const cuts: number[] = [];
      for (let at = 0; at < stream.ps.length; at += 1 + Math.floor(random() * 900)) cuts.push(at);
      const packs = feed(createPsPackSplitter(), stream.ps, cuts);
      expectPacks(packs, stream.packs);
      expect(packs.map((p) => p.keyframe)).toEqual(stream.keyframes);
    }
  });

  it("honours pack_stuffing_length and never checks the stuffing values (ehome-2.0 §4.1 item 4)", () => {
    // Stuffing that looks like a start code and a pack header must not be read as one.
    const stuffing = Buffer.from([0x00, 0x00, 0x01, 0xba, 0x00, 0x00, 0x01]);
    const au = accessUnit(seededRandom(1), "h264", true, 50);
    const pack1 = Buffer.concat([packHeader(0, 50_000, stuffing), pesPacket(0xe0, au, 3600)]);
    const pack2 = Buffer.concat([packHeader(3600, 50_000, stuffing), pesPacket(0xe0, au, 7200)]);
    const packs = feed(createPsPackSplitter(), Buffer.concat([pack1, pack2]), []);
    expect(packs.map((p) => p.bytes)).toEqual([pack1, pack2]);
    expect(packs.map((p) => p.scr)).toEqual([0, 3600]);
    expect(packs.map((p) => p.pts)).toEqual([3600, 7200]);
  });

  it("skips garbage before, between and inside packs and resynchronises on the next pack header", () => {
    const junk = Buffer.from([0x1c, 0x80, 0, 0, 0, 1, 0x65, 0xff, 0, 0, 1]);
    const [p0, p1, p2, p3] = stream.packs;
    // Garbage inside p2 after its header: p2 ends at its last whole element (the pack header).
    const p2Header = p2!.subarray(0, 20);
    const input = Buffer.concat([junk, p0!, junk, p1!, p2Header, junk, p3!]);
    for (const cuts of [[], [3], [5, 30, 31, 32], [input.length - 1]]) {
      const s = createPsPackSplitter();
      const packs = feed(s, input, cuts);
      expect(packs.map((p) => p.bytes)).toEqual([p0, p1, p2Header, p3]);
      expect(s.stats().resyncs).toBe(3);
      expect(s.stats().garbageBytes).toBe(3 * junk.length);
    }
  });

  it("drops and counts packs over maxPackBytes, keeping the ones around them", () => {
    const big = hikPs({ frames: 4, keyEvery: 2, frameBytes: 20_000, seed: 3 });
    const s = createPsPackSplitter({ maxPackBytes: 30_000 });
    const packs = feed(s, big.ps, [1000, 50_000, 50_001]);
    // The keyframes (4 × 20 000 bytes) are oversize; the others pass.
    expect(packs.map((p) => p.bytes)).toEqual([big.packs[1], big.packs[3]]);
    expect(s.stats()).toMatchObject({
      oversizePacks: 2,
      oversizeBytes: big.packs[0]!.length + big.packs[2]!.length,
    });
  });

  it("holds at most the pack being built (bounded by maxPackBytes)", () => {
    const big = hikPs({ frames: 3, keyEvery: 1, frameBytes: 40_000, seed: 4 });
    const s = createPsPackSplitter({ maxPackBytes: 50_000 });
    let peak = 0;
    for (let at = 0; at < big.ps.length; at += 1400) {
      s.push(big.ps.subarray(at, at + 1400));
      peak = Math.max(peak, s.bufferedBytes());
    }
    expect(peak).toBeLessThanOrEqual(50_000 + 1024 + 3);
    expect(s.stats().oversizePacks).toBe(2);
  });

  it("cuts an incomplete element at the end of the stream and emits the rest of the pack", () => {
    const [p0, p1] = stream.packs;
    const s = createPsPackSplitter();
    const packs = feed(s, Buffer.concat([p0!, p1!.subarray(0, p1!.length - 5)]), []);
    expect(packs.map((p) => p.bytes)).toEqual([p0, p1!.subarray(0, 20)]);
    expect(s.stats().truncatedBytes).toBe(p1!.length - 5 - 20);
    expect(s.push(p0!)).toEqual([]);
  });

  it("emits a pack at a program end code", () => {
    const p0 = stream.packs[0]!;
    const withEnd = Buffer.concat([p0, Buffer.from([0, 0, 1, 0xb9])]);
    const s = createPsPackSplitter();
    expect(s.push(withEnd).map((p) => p.bytes)).toEqual([withEnd]);
  });

  it("detects H.264 keyframes by SPS or first IDR slice, not by later slices", () => {
    const random = seededRandom(9);
    const idrOnly = Buffer.concat([Buffer.from([0, 0, 1, 0x65, 0x88]), Buffer.alloc(10, 7)]);
    const secondSlice = Buffer.concat([Buffer.from([0, 0, 1, 0x65, 0x40]), Buffer.alloc(10, 7)]);
    const spsOnly = Buffer.from([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 5, 5]);
    const inter = accessUnit(random, "h264", false, 30);
    const packs = [idrOnly, secondSlice, spsOnly, inter].map((au, k) =>
      Buffer.concat([packHeader(k), pesPacket(0xe0, au, k * 3600)]),
    );
    const out = feed(createPsPackSplitter(), Buffer.concat(packs), []);
    expect(out.map((p) => p.keyframe)).toEqual([true, false, true, false]);
  });

  it("detects H.265 keyframes (VPS, first IRAP slice) when the PSM declares stream_type 0x24", () => {
    const h265 = hikPs({ frames: 5, keyEvery: 2, codec: "h265", frameBytes: 100 });
    const packs = feed(createPsPackSplitter(), h265.ps, [7, 300]);
    expect(packs.map((p) => p.keyframe)).toEqual(h265.keyframes);
    expect(packs.every((p) => p.codec === "h265")).toBe(true);
    // A CRA slice (21) alone, and a RASL (8) that is not random access.
    const map = psm([{ type: 0x24, id: 0xe0 }]);
    const cra = Buffer.concat([
      packHeader(0),
      map,
      pesPacket(0xe0, Buffer.from([0, 0, 1, 0x2a, 1, 0x80, 9])),
    ]);
    const rasl = Buffer.concat([
      packHeader(1),
      pesPacket(0xe0, Buffer.from([0, 0, 1, 0x10, 1, 0x80, 9])),
    ]);
    expect(
      feed(createPsPackSplitter(), Buffer.concat([cra, rasl]), []).map((p) => p.keyframe),
    ).toEqual([true, false]);
  });

  it("takes a pack with a PSM as a keyframe when the video stream_type has no NAL units to read", () => {
    const map = psm([{ type: 0x10, id: 0xe0 }]); // MPEG-4 part 2
    const ps = Buffer.concat([
      packHeader(0),
      map,
      pesPacket(0xe0, Buffer.from([0, 0, 1, 0xb6, 0x10, 1, 2]), 0),
      packHeader(3600),
      pesPacket(0xe0, Buffer.from([0, 0, 1, 0xb6, 0x50, 1, 2]), 3600),
    ]);
    const packs = feed(createPsPackSplitter(), ps, []);
    expect(packs.map((p) => [p.keyframe, p.psm])).toEqual([
      [true, true],
      [false, false],
    ]);
    // With H.264 declared, a PSM alone is not a keyframe.
    const h264 = Buffer.concat([
      packHeader(0),
      psm([{ type: 0x1b, id: 0xe0 }]),
      pesPacket(0xe0, Buffer.from([0, 0, 1, 0x41, 0x9a, 1]), 0),
    ]);
    expect(feed(createPsPackSplitter(), h264, [])[0]).toMatchObject({ keyframe: false, psm: true });
  });

  it("guesses H.264 without a PSM", () => {
    const au = accessUnit(seededRandom(2), "h264", true, 20);
    const packs = feed(
      createPsPackSplitter(),
      Buffer.concat([packHeader(0), pesPacket(0xe0, au, 0)]),
      [],
    );
    expect(packs[0]).toMatchObject({ keyframe: true, codec: "h264", map: undefined });
  });

  it("finds a keyframe NAL whose start code is split across PES packets and reads", () => {
    const au = accessUnit(seededRandom(3), "h264", true, 50);
    // SPS start code 00 00 00 01 67 begins at offset 6 (after the AUD): split the PES inside it.
    const pack = Buffer.concat([
      packHeader(0),
      pesPacket(0xe0, au.subarray(0, 8), 0),
      pesPacket(0xe0, au.subarray(8)),
    ]);
    for (let cut = 1; cut < pack.length; cut++) {
      const packs = feed(createPsPackSplitter(), pack, [cut]);
      expect(packs[0]!.keyframe).toBe(true);
    }
  });

  it("reads the PTS of MPEG-1 PES headers and MPEG-1 packs", () => {
    const mpeg1Pack = Buffer.from([0, 0, 1, 0xba, 0x21, 0, 1, 0, 1, 0x80, 0, 1]);
    const pes = Buffer.from([
      0, 0, 1, 0xe0, 0, 13, 0xff, 0xff, 0x21, 0, 1, 0x0e, 0x11, 0, 0, 1, 0x67, 0x42, 0xc0,
    ]);
    const packs = feed(createPsPackSplitter(), Buffer.concat([mpeg1Pack, pes]), []);
    expect(packs[0]).toMatchObject({ pts: 0x0708, keyframe: true, scr: 0 });
    expect(packs[0]!.pes[0]!.payloadOffset).toBe(12 + 6 + 2 + 5);
  });
});

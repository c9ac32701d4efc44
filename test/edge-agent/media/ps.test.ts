import { describe, expect, it } from "vitest";
import { packHeader, pesPacket, scanPs } from "../../../edge-agent/media/ps.ts";

function readPts(pes: Buffer): number {
  const hi = (pes[9]! >> 1) & 0x07;
  const mid = pes.readUInt16BE(10) >> 1;
  const lo = pes.readUInt16BE(12) >> 1;
  return hi * 2 ** 30 + mid * 2 ** 15 + lo;
}

function readScr(pack: Buffer): number {
  const b = pack;
  const hi = (b[4]! >> 3) & 0x07;
  const mid = ((b[4]! & 0x03) << 13) | (b[5]! << 5) | (b[6]! >> 3);
  const lo = ((b[6]! & 0x03) << 13) | (b[7]! << 5) | (b[8]! >> 3);
  return hi * 2 ** 30 + mid * 2 ** 15 + lo;
}

describe("PS toolkit (ISO/IEC 13818-1 program stream)", () => {
  it("writes the SCR and PTS as 33-bit values with their marker bits", () => {
    const t = 2 ** 32 + 123_456_789;
    const pack = packHeader(t);
    expect(readScr(pack)).toBe(t);
    expect(pack[4]! & 0xc4).toBe(0x44);
    const pes = pesPacket(0xe0, Buffer.from([9, 0x10]), t);
    expect(readPts(pes)).toBe(t);
    expect(pes.readUInt16BE(4)).toBe(pes.length - 6);
  });

  it("honours pack_stuffing_length without validating stuffing values (ehome-2.0 §4.1 item 4)", () => {
    const ps = Buffer.concat([
      packHeader(0, 50_000, Buffer.from([0xff, 0xff, 0x00, 0x7d, 0x49, 0x09])),
      pesPacket(0xe0, Buffer.from([0, 0, 1, 0xba, 0, 0, 1]), 0),
      pesPacket(0xc0, Buffer.alloc(10), 0),
      pesPacket(0xbd, Buffer.alloc(3)),
      Buffer.from([0, 0, 1, 0xb9]),
    ]);
    const scan = scanPs(ps);
    expect(scan).toMatchObject({ packs: 1, video: 1, audio: 1, other: 1, endCodes: 1 });
    expect(scan.error).toBeUndefined();
    expect(scan.bytes).toBe(ps.length);
  });

  it("walks MPEG-1 pack headers (12 bytes)", () => {
    const mpeg1 = Buffer.from([0, 0, 1, 0xba, 0x21, 0, 1, 0, 1, 0x80, 0, 1]);
    const scan = scanPs(Buffer.concat([mpeg1, mpeg1]));
    expect(scan.packs).toBe(2);
    expect(scan.packOffsets).toEqual([0, 12]);
    expect(scan.error).toBeUndefined();
  });

  it("reports where a stream stops being PS and never throws", () => {
    const good = Buffer.concat([packHeader(0), pesPacket(0xe0, Buffer.alloc(20))]);
    expect(scanPs(Buffer.concat([good, Buffer.from([0x1c, 0x80, 0, 0])])).error).toEqual({
      offset: good.length,
      reason: "no start code",
    });
    expect(scanPs(good.subarray(0, good.length - 1)).error?.reason).toBe("truncated packet");
    expect(scanPs(good.subarray(0, 10)).error?.reason).toBe("truncated pack header");
    expect(scanPs(Buffer.from([0, 0, 1, 0x65, 0])).error?.reason).toBe(
      "unexpected start code 0x65",
    );
    for (let n = 0; n < 2000; n++) {
      const junk = Buffer.from(Array.from({ length: 3 + (n % 40) }, (_, i) => (i * 37 + n) & 0xff));
      junk.set([0, 0, 1], 0);
      expect(() => scanPs(junk)).not.toThrow();
    }
  });
});

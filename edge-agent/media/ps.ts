/**
 * A small MPEG-PS (ISO/IEC 13818-1 program stream) toolkit: builders for pack headers and PES
 * packets, and a scanner that walks packs and PES packets. Enough to build test streams, check
 * de-framer output, and find pack boundaries; not a demuxer.
 *
 * ehome-2.0 §4.1 item 4: Hikvision pack headers carry stuffing bytes that are not 0xFF (probably a
 * counter), so the scanner honours pack_stuffing_length and never validates the stuffing values.
 */

export const PACK_START = 0xba;
export const SYSTEM_HEADER = 0xbb;
export const PROGRAM_STREAM_MAP = 0xbc;
export const END_CODE = 0xb9;

/** An MPEG-2 pack header (14 bytes + stuffing) for a 90 kHz system clock value. */
export function packHeader(
  scr90k: number,
  muxRate = 50_000,
  stuffing: Uint8Array = new Uint8Array(),
): Buffer {
  if (stuffing.length > 7) throw new RangeError("at most 7 stuffing bytes");
  const h = Buffer.alloc(14 + stuffing.length);
  h.set([0, 0, 1, PACK_START], 0);
  const scr = Math.floor(scr90k) % 2 ** 33;
  const hi = Math.floor(scr / 2 ** 30) & 0x07; // bits 32..30
  const mid = Math.floor(scr / 2 ** 15) & 0x7fff; // bits 29..15
  const lo = scr & 0x7fff; // bits 14..0
  h[4] = 0x44 | (hi << 3) | (mid >> 13);
  h[5] = (mid >> 5) & 0xff;
  h[6] = ((mid & 0x1f) << 3) | 0x04 | (lo >> 13);
  h[7] = (lo >> 5) & 0xff;
  h[8] = ((lo & 0x1f) << 3) | 0x04; // SCR extension 0
  h[9] = 0x01; // extension low bits + marker
  h[10] = (muxRate >> 14) & 0xff;
  h[11] = (muxRate >> 6) & 0xff;
  h[12] = ((muxRate & 0x3f) << 2) | 0x03;
  h[13] = 0xf8 | stuffing.length;
  h.set(stuffing, 14);
  return h;
}

/** A PES packet (with a PTS when given) of a stream id such as 0xE0 (video) or 0xC0 (audio). */
export function pesPacket(streamId: number, payload: Uint8Array, pts90k?: number): Buffer {
  const optional = pts90k === undefined ? 3 : 8;
  const length = optional + payload.length;
  if (length > 0xffff) throw new RangeError("PES payload too large for one packet");
  const p = Buffer.alloc(6 + length);
  p.set([0, 0, 1, streamId & 0xff], 0);
  p.writeUInt16BE(length, 4);
  p[6] = 0x80; // '10' marker, no scrambling
  p[7] = pts90k === undefined ? 0x00 : 0x80; // PTS only
  p[8] = optional - 3;
  if (pts90k !== undefined) {
    const pts = Math.floor(pts90k) % 2 ** 33;
    p[9] = 0x21 | ((Math.floor(pts / 2 ** 30) & 0x07) << 1);
    const mid = Math.floor(pts / 2 ** 15) & 0x7fff;
    const lo = pts & 0x7fff;
    p.writeUInt16BE((mid << 1) | 1, 10);
    p.writeUInt16BE((lo << 1) | 1, 12);
  }
  p.set(payload, 6 + optional);
  return p;
}

export interface PsScan {
  packs: number;
  /** Byte offsets of every pack header. */
  packOffsets: number[];
  systemHeaders: number;
  /** PES packets by kind: video 0xE0–0xEF, audio 0xC0–0xDF, other (PSM, private, padding…). */
  video: number;
  audio: number;
  other: number;
  endCodes: number;
  /** Bytes walked; equals the input length when `error` is undefined. */
  bytes: number;
  /** The first thing that is not PS (offset and reason); scanning stops there. */
  error: { offset: number; reason: string } | undefined;
}

/** Walks a complete program stream from its first byte. Never throws. */
export function scanPs(input: Uint8Array): PsScan {
  const b = input;
  const r: PsScan = {
    packs: 0,
    packOffsets: [],
    systemHeaders: 0,
    video: 0,
    audio: 0,
    other: 0,
    endCodes: 0,
    bytes: 0,
    error: undefined,
  };
  let i = 0;
  const fail = (reason: string) => {
    r.error = { offset: i, reason };
  };
  while (i < b.length) {
    if (b.length - i < 4) {
      fail("truncated start code");
      break;
    }
    if (b[i] !== 0 || b[i + 1] !== 0 || b[i + 2] !== 1) {
      fail("no start code");
      break;
    }
    const id = b[i + 3]!;
    if (id === PACK_START) {
      if (b.length - i < 5) {
        fail("truncated pack header");
        break;
      }
      let size: number;
      if ((b[i + 4]! & 0xc0) === 0x40) {
        if (b.length - i < 14) {
          fail("truncated pack header");
          break;
        }
        size = 14 + (b[i + 13]! & 0x07);
      } else if ((b[i + 4]! & 0xf0) === 0x20) {
        size = 12; // MPEG-1
      } else {
        fail("unknown pack header version");
        break;
      }
      if (b.length - i < size) {
        fail("truncated pack header");
        break;
      }
      r.packs++;
      r.packOffsets.push(i);
      i += size;
    } else if (id === END_CODE) {
      r.endCodes++;
      i += 4;
    } else if (id >= SYSTEM_HEADER) {
      if (b.length - i < 6) {
        fail("truncated packet header");
        break;
      }
      const len = (b[i + 4]! << 8) | b[i + 5]!;
      if (b.length - i < 6 + len) {
        fail("truncated packet");
        break;
      }
      if (id === SYSTEM_HEADER) r.systemHeaders++;
      else if (id >= 0xe0 && id <= 0xef) r.video++;
      else if (id >= 0xc0 && id <= 0xdf) r.audio++;
      else r.other++;
      i += 6 + len;
    } else {
      fail(`unexpected start code 0x${id.toString(16)}`);
      break;
    }
  }
  r.bytes = i;
  return r;
}

/**
 * What the media benchmarks push and measure: an H.264-shaped MPEG-PS live stream at a given
 * bitrate (one pack per frame, a system header and a PSM before each IDR, as a Hikvision device
 * packs it, ehome-2.0 §4.1), framed exactly as a device pushes it (edge-agent/media/framer.ts:
 * 256-byte private header, `$`-RTP records with 0x0d / 0x1c markers), with the wall-clock send time
 * written into every frame's slice data, so a viewer (PS or TS) can measure its delay.
 *
 * The stamp is `BNCHT` + 16 decimal digits (µs since the epoch): ASCII only, so it never forms a
 * start code and survives the TS remux (it sits right after the slice header, inside the first TS
 * packet of the PES).
 */
import { createFramer, type Framer, privateHeader } from "../../edge-agent/media/framer.ts";
import { packHeader, pesPacket } from "../../edge-agent/media/ps.ts";
import { seededRandom } from "../../edge-agent/simulator/random.ts";
import { accessUnit, psm, systemHeader } from "../../test/edge-agent/media/helpers/ps-fixtures.ts";

export const STAMP_MAGIC = Buffer.from("BNCHT", "ascii");
export const STAMP_DIGITS = 16;
export const STAMP_BYTES = STAMP_MAGIC.length + STAMP_DIGITS;

/** Wall-clock µs since the epoch, comparable between processes on one machine. */
export function wallMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

export interface LiveSourceOptions {
  /** Target bitrate of the PS, bit/s. */
  bitrateBps: number;
  fps?: number;
  /** Frames per GOP (25 at 25 fps = a 1 s GOP). */
  gopFrames?: number;
  /** Keyframe size as a multiple of a P-frame. Default 4. */
  keyframeFactor?: number;
  /** RTP SSRC: the INVITESTREAM Session (ehome-2.0 §4.1 item 5). */
  session: number;
  seed?: number;
}

export interface LiveSource {
  readonly fps: number;
  /** Bytes of PS per GOP (before framing). */
  readonly gopPsBytes: number;
  /** The 256-byte header a device sends first. */
  header(): Buffer;
  /** The next frame as device wire bytes ($-RTP records), stamped with `nowMicros`. */
  nextFrame(nowMicros: number): { wire: Buffer[]; psBytes: number; key: boolean };
}

interface Template {
  key: boolean;
  /** The access unit; its slice data starts at `stampAt`. */
  au: Buffer;
  stampAt: number;
}

type Shape = Required<Omit<LiveSourceOptions, "session">>;

function templates(o: Shape): Template[] {
  const random = seededRandom(o.seed);
  const gopBytes = o.bitrateBps / 8 / (o.fps / o.gopFrames);
  const pBytes = Math.max(64, Math.round(gopBytes / (o.keyframeFactor + o.gopFrames - 1)));
  const list: Template[] = [];
  for (let f = 0; f < o.gopFrames; f++) {
    const key = f === 0;
    const size = key ? pBytes * o.keyframeFactor : pBytes;
    const au = accessUnit(random, "h264", key, size);
    list.push({ key, au, stampAt: au.length - size });
  }
  return list;
}

/**
 * Sources of one shape (bitrate, GOP, seed) for many streams: the frame templates are built once
 * and shared (the stamp is written into a copy of each frame).
 */
export function createLiveSources(
  options: Omit<LiveSourceOptions, "session">,
): (session: number) => LiveSource {
  const o: Shape = {
    bitrateBps: options.bitrateBps,
    fps: options.fps ?? 25,
    gopFrames: options.gopFrames ?? 25,
    keyframeFactor: options.keyframeFactor ?? 4,
    seed: options.seed ?? 1,
  };
  const list = templates(o);
  return (session) => liveSource(o, list, session);
}

export function createLiveSource(options: LiveSourceOptions): LiveSource {
  return createLiveSources(options)(options.session);
}

function liveSource(o: Shape, list: Template[], session: number): LiveSource {
  const framer: Framer = createFramer({ ssrc: session });
  const streams = [{ type: 0x1b, id: 0xe0 }];
  const sys = systemHeader();
  const map = psm(streams);
  let frame = 0;
  const ptsStep = Math.round(90_000 / o.fps);
  const stamp = Buffer.alloc(STAMP_BYTES);
  STAMP_MAGIC.copy(stamp, 0);
  return {
    fps: o.fps,
    gopPsBytes: list.reduce((n, t) => n + t.au.length, 0),
    header: () => privateHeader({ session }),
    nextFrame(nowMicros) {
      const t = list[frame % list.length]!;
      const pts = 90_000 + ptsStep * frame;
      frame++;
      stamp.write(String(nowMicros).padStart(STAMP_DIGITS, "0"), STAMP_MAGIC.length, "ascii");
      const au = Buffer.from(t.au);
      stamp.copy(au, t.stampAt);
      const parts = [packHeader(pts - ptsStep, 50_000, Buffer.from([0xff, 0xff, 0, 0x7d]))];
      if (t.key) parts.push(sys, map);
      for (let at = 0; at < au.length; at += 65_000) {
        parts.push(pesPacket(0xe0, au.subarray(at, at + 65_000), at === 0 ? pts : undefined));
      }
      const pack = Buffer.concat(parts);
      return {
        wire: framer.frame(pack, { timestamp: pts }),
        psBytes: pack.length,
        key: t.key,
      };
    },
  };
}

/**
 * Reads the stamps out of a viewer's byte stream (PS or TS, any chunking): calls `onStamp` with
 * each stamp's send time. Keeps the last few bytes of a chunk, so a stamp cut by a chunk boundary
 * is still found.
 */
export function createStampReader(onStamp: (sentMicros: number) => void): (chunk: Buffer) => void {
  let tail: Buffer = Buffer.alloc(0);
  return (chunk) => {
    const buf = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
    let at = buf.indexOf(STAMP_MAGIC);
    let consumed = 0;
    while (at >= 0) {
      const end = at + STAMP_BYTES;
      if (end > buf.length) break;
      const text = buf.toString("ascii", at + STAMP_MAGIC.length, end);
      if (/^\d+$/.test(text)) onStamp(Number(text));
      consumed = end;
      at = buf.indexOf(STAMP_MAGIC, end);
    }
    const keepFrom = Math.max(consumed, buf.length - (STAMP_BYTES - 1));
    tail = Buffer.from(buf.subarray(keepFrom));
  };
}

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
import { createFramer, MARKER_CHUNK, privateHeader } from "../../edge-agent/media/framer.ts";
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
 * Sources of one shape (bitrate, GOP, seed) for many streams: the frames are built and framed
 * once and shared (each send copies one and patches its per-stream fields). `startFrame` offsets a
 * stream's GOP phase (cameras are not in step: their keyframes, and the relay's GOP caches, are
 * spread over the GOP).
 */
export function createLiveSources(
  options: Omit<LiveSourceOptions, "session">,
): (session: number, startFrame?: number) => LiveSource {
  const o: Shape = {
    bitrateBps: options.bitrateBps,
    fps: options.fps ?? 25,
    gopFrames: options.gopFrames ?? 25,
    keyframeFactor: options.keyframeFactor ?? 4,
    seed: options.seed ?? 1,
  };
  const frames = templates(o).map((t) => preframe(t, o.fps));
  return (session, startFrame = 0) => liveSource(o, frames, session, startFrame);
}

export function createLiveSource(options: LiveSourceOptions): LiveSource {
  return createLiveSources(options)(options.session);
}

/**
 * One frame pre-framed once for every stream: the pack (pack header, system header + PSM before an
 * IDR, PES packets) cut into `$`-RTP records by framer.ts with SSRC 0 and timestamp 0. A stream's
 * frame is a copy of it with the per-stream fields patched: each record's sequence number, RTP
 * timestamp and SSRC, the pack's SCR, the first PES's PTS and the send-time stamp. One
 * allocation and one copy per frame; no re-framing, no concatenation.
 */
interface Framed {
  key: boolean;
  wire: Buffer;
  psBytes: number;
  /** Wire offsets of the records (their `$`). */
  records: Int32Array;
  /** Wire offset of each PS byte that is patched: the SCR (6), the PTS (5), the stamp. */
  scrAt: Int32Array;
  ptsAt: Int32Array;
  stampAt: Int32Array;
}

const HIK_RECORD_OVERHEAD = 4 + 12;

function preframe(t: Template, fps: number): Framed {
  const ptsStep = Math.round(90_000 / fps);
  const streams = [{ type: 0x1b, id: 0xe0 }];
  const head = packHeader(0, 50_000, Buffer.from([0xff, 0xff, 0, 0x7d]));
  const parts = [head];
  if (t.key) parts.push(systemHeader(), psm(streams));
  const pesAt = parts.reduce((n, b) => n + b.length, 0);
  for (let at = 0; at < t.au.length; at += 65_000) {
    parts.push(pesPacket(0xe0, t.au.subarray(at, at + 65_000), at === 0 ? ptsStep : undefined));
  }
  const pack = Buffer.concat(parts);
  const records = createFramer({ ssrc: 0 }).frame(pack, { timestamp: 0 });
  // PS offset → wire offset: each record carries a run of the pack behind its header + marker.
  const wireOf = new Int32Array(pack.length);
  const starts: number[] = [];
  let wireAt = 0;
  let psAt = 0;
  for (const r of records) {
    starts.push(wireAt);
    const marker = r[HIK_RECORD_OVERHEAD] === MARKER_CHUNK ? 1 : 2;
    const body = r.length - HIK_RECORD_OVERHEAD - marker;
    for (let k = 0; k < body; k++) wireOf[psAt + k] = wireAt + HIK_RECORD_OVERHEAD + marker + k;
    psAt += body;
    wireAt += r.length;
  }
  const map = (from: number, n: number) => wireOf.slice(from, from + n);
  return {
    key: t.key,
    wire: Buffer.concat(records),
    psBytes: pack.length,
    records: Int32Array.from(starts),
    // Pack header: SCR in bytes 4–9; PES header with PTS: PTS in bytes 9–13; the stamp in the
    // first PES's payload (6 + 3 + 5 header bytes) at the template's offset.
    scrAt: map(4, 6),
    ptsAt: map(pesAt + 9, 5),
    stampAt: map(pesAt + 14 + t.stampAt, STAMP_BYTES),
  };
}

function liveSource(o: Shape, frames: Framed[], session: number, startFrame: number): LiveSource {
  let frame = startFrame;
  let seq = 0;
  const ptsStep = Math.round(90_000 / o.fps);
  const stamp = Buffer.alloc(STAMP_BYTES);
  STAMP_MAGIC.copy(stamp, 0);
  const scr = Buffer.alloc(14);
  const pts = Buffer.alloc(14);
  return {
    fps: o.fps,
    gopPsBytes: frames.reduce((n, f) => n + f.psBytes, 0),
    header: () => privateHeader({ session }),
    nextFrame(nowMicros) {
      const f = frames[frame % frames.length]!;
      const t = 90_000 + ptsStep * frame;
      frame++;
      const w = Buffer.allocUnsafe(f.wire.length);
      f.wire.copy(w);
      for (const r of f.records) {
        w.writeUInt16BE(seq, r + 6);
        seq = (seq + 1) & 0xffff;
        w.writeUInt32BE(t >>> 0, r + 8);
        w.writeUInt32BE(session >>> 0, r + 12);
      }
      writeScr(scr, t - ptsStep);
      for (let k = 0; k < 6; k++) w[f.scrAt[k]!] = scr[4 + k]!;
      writePts(pts, t);
      for (let k = 0; k < 5; k++) w[f.ptsAt[k]!] = pts[k]!;
      stamp.write(String(nowMicros).padStart(STAMP_DIGITS, "0"), STAMP_MAGIC.length, "ascii");
      for (let k = 0; k < STAMP_BYTES; k++) w[f.stampAt[k]!] = stamp[k]!;
      return { wire: [w], psBytes: f.psBytes, key: f.key };
    },
  };
}

/** The SCR bytes of an MPEG-2 pack header (as ps.ts `packHeader` writes them) into `h[4..9]`. */
function writeScr(h: Buffer, scr90k: number): void {
  packHeader(scr90k).copy(h, 0, 0, 14);
}

/** A PTS-only PES timestamp (prefix 0010) into `b[0..4]`. */
function writePts(b: Buffer, pts90k: number): void {
  pesPacket(0xe0, EMPTY, pts90k).copy(b, 0, 9, 14);
}

const EMPTY = Buffer.alloc(0);

/**
 * Reads the stamps out of a viewer's byte stream (PS or TS, any chunking): calls `onStamp` with
 * each stamp's send time. Searches each chunk in place (no copy of the chunk); only a stamp cut
 * by a chunk boundary is pieced together from the last few bytes of the previous chunk.
 */
export function createStampReader(onStamp: (sentMicros: number) => void): (chunk: Buffer) => void {
  const tail = Buffer.alloc(2 * STAMP_BYTES);
  let tailLen = 0;
  const readAt = (b: Buffer, at: number): void => {
    let v = 0;
    for (let k = at + STAMP_MAGIC.length; k < at + STAMP_BYTES; k++) {
      const d = b[k]! - 0x30;
      if (d < 0 || d > 9) return;
      v = v * 10 + d;
    }
    onStamp(v);
  };
  return (chunk) => {
    // A stamp across the boundary: the previous chunk's last bytes + this chunk's first ones.
    if (tailLen > 0) {
      const head = Math.min(chunk.length, STAMP_BYTES - 1);
      chunk.copy(tail, tailLen, 0, head);
      const joint = tail.subarray(0, tailLen + head);
      const at = joint.indexOf(STAMP_MAGIC);
      if (at >= 0 && at + STAMP_BYTES <= joint.length && at + STAMP_BYTES > tailLen) {
        readAt(joint, at);
      }
    }
    let at = chunk.indexOf(STAMP_MAGIC);
    let consumed = 0;
    while (at >= 0 && at + STAMP_BYTES <= chunk.length) {
      readAt(chunk, at);
      consumed = at + STAMP_BYTES;
      at = chunk.indexOf(STAMP_MAGIC, consumed);
    }
    // Keep the bytes a stamp cut by the boundary may start in (never the stamps read above).
    const keepFrom = Math.max(consumed, chunk.length - (STAMP_BYTES - 1));
    if (chunk.length >= STAMP_BYTES - 1 || tailLen === 0) {
      tailLen = chunk.copy(tail, 0, keepFrom);
    } else {
      // A chunk shorter than a stamp: append it to what is kept, keep the last STAMP_BYTES − 1.
      const all = Buffer.concat([tail.subarray(0, tailLen), chunk.subarray(keepFrom)]);
      const from = Math.max(0, all.length - (STAMP_BYTES - 1));
      tailLen = all.copy(tail, 0, from);
    }
  };
}

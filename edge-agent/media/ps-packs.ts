/**
 * Splits an MPEG-PS byte stream (ISO/IEC 13818-1 §2.5), in chunks of any size as the de-framer
 * outputs them, into whole packs: from one `00 00 01 BA` to the next (or to an end code). Each
 * pack says whether a viewer can start decoding there (`keyframe`) and carries the PTS of its first
 * video PES, its SCR, the PES packets it holds and the last program stream map seen, so the
 * relay can cache a GOP and the TS remuxer need not walk the pack again.
 *
 * - ehome-2.0 §4.1 item 4: pack_stuffing_length is honoured and the stuffing values are never
 *   checked (Hikvision writes a counter there).
 * - Packs are walked element by element (system header, PSM, PES, padding…) by their lengths; a
 *   start code that does not fit ends the pack at its last whole element and the splitter scans
 *   for the next pack header (resync, counted).
 * - A pack is known to be complete only when the next pack header (or an end code) arrives, so a
 *   pack leaves the splitter one pack late (one frame on a Hikvision live stream).
 * - Bounded: a pack larger than `maxPackBytes` (or holding more than 4096 PES packets) is walked
 *   but not kept, then dropped and counted; besides the pack being built, at most one element
 *   header (≤ 1 KiB) and 3 sync bytes are held.
 *
 * Pure and incremental: no sockets, timers or logs; never throws on input. Output packs share
 * memory with the input chunks where a pack lies inside one chunk; do not modify pushed chunks.
 */
import { codecOfStreamType, isRandomAccessNal, type VideoCodec } from "./h26x.ts";
import { END_CODE, PACK_START, PROGRAM_STREAM_MAP, SYSTEM_HEADER } from "./ps.ts";

export type { VideoCodec } from "./h26x.ts";

export interface PsElementaryStream {
  /** PES stream_id (0xE0–0xEF video, 0xC0–0xDF audio, 0xBD private). */
  streamId: number;
  /** stream_type (0x1B H.264, 0x24 H.265, 0x0F AAC, 0x90 G.711 on Hikvision…). */
  streamType: number;
}

export interface ProgramStreamMap {
  version: number;
  streams: readonly PsElementaryStream[];
}

/** A PES packet inside a pack; offsets are into `PsPack.bytes`. */
export interface PsPes {
  streamId: number;
  /** First byte of the packet (`00 00 01 <id>`). */
  offset: number;
  /** First payload byte, after the PES header. */
  payloadOffset: number;
  /** One past the packet's last byte. */
  end: number;
  /** 90 kHz, 33 bits. */
  pts: number | undefined;
  dts: number | undefined;
}

export interface PsPack {
  /** The whole pack: header, system header, PSM, PES packets… */
  bytes: Buffer;
  /**
   * A decoder can start here: the pack holds an H.264 SPS or first IDR slice, or an H.265 VPS or
   * first IRAP slice, of the video stream. When the PSM declares a video stream_type other than
   * H.264/H.265 (no NAL units to read), a pack carrying a PSM counts: Hikvision writes the system
   * header and PSM before each I-frame.
   */
  keyframe: boolean;
  /** This pack carries a program stream map. */
  psm: boolean;
  /** PTS of the first video PES carrying one (90 kHz). */
  pts: number | undefined;
  /** System clock reference of the pack header (90 kHz base). */
  scr: number | undefined;
  /** Video codec: from the PSM's stream_type when a PSM was seen, else H.264. */
  codec: VideoCodec;
  /** The last program stream map seen at or before this pack (same object while unchanged). */
  map: ProgramStreamMap | undefined;
  pes: readonly PsPes[];
}

export interface PsPackSplitterOptions {
  /** Largest pack kept; a larger one is dropped and counted. Default 4 MiB. */
  maxPackBytes?: number;
}

export interface PsPackStats {
  bytesIn: number;
  /** Packs emitted and their bytes. */
  packs: number;
  bytesOut: number;
  keyframes: number;
  /** Times the splitter lost the pack structure and scanned for the next pack header. */
  resyncs: number;
  /** Bytes skipped outside any pack. */
  garbageBytes: number;
  oversizePacks: number;
  oversizeBytes: number;
  /** Bytes of an incomplete element cut when the stream ended. */
  truncatedBytes: number;
}

export interface PsPackSplitter {
  /** Feeds bytes; returns the packs they completed, in order (possibly none). */
  push(chunk: Uint8Array): PsPack[];
  /** The stream ended: returns the last pack (without any incomplete element). Idempotent. */
  end(): PsPack[];
  stats(): PsPackStats;
  /** Bytes held: the pack being built, a partial element header, sync bytes. */
  bufferedBytes(): number;
}

export const DEFAULT_MAX_PACK_BYTES = 4 << 20;
const MAX_PES_PER_PACK = 4096;
/** ISO/IEC 13818-1 §2.5.4.2: a PSM is at most 1018 bytes after its length field. */
const PSM_MAX = 1018;
const HDR_MAX = 6 + PSM_MAX;
const MPEG1_PES_HEADER_MAX = 6 + 16 + 2 + 10;
const PACK_CODE = Buffer.from([0, 0, 1, PACK_START]);
const START3 = Buffer.from([0, 0, 1]);

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** A 33-bit timestamp in the PTS/DTS/MPEG-1 SCR layout (5 bytes with marker bits). */
export function readTimestamp(b: Uint8Array, o: number): number {
  const hi = (b[o]! >> 1) & 0x07;
  const mid = (b[o + 1]! << 7) | (b[o + 2]! >> 1);
  const lo = (b[o + 3]! << 7) | (b[o + 4]! >> 1);
  return hi * 2 ** 30 + mid * 2 ** 15 + lo;
}

/** The SCR base of an MPEG-2 pack header starting at o. */
function readScr2(b: Uint8Array, o: number): number {
  const hi = (b[o + 4]! >> 3) & 0x07;
  const mid = ((b[o + 4]! & 0x03) << 13) | (b[o + 5]! << 5) | (b[o + 6]! >> 3);
  const lo = ((b[o + 6]! & 0x03) << 13) | (b[o + 7]! << 5) | (b[o + 8]! >> 3);
  return hi * 2 ** 30 + mid * 2 ** 15 + lo;
}

function isVideo(id: number): boolean {
  return id >= 0xe0 && id <= 0xef;
}

/** Stream ids whose PES packets have the optional PES header (not padding, PSM, private 2…). */
function hasPesHeader(id: number): boolean {
  return id === 0xbd || (id >= 0xc0 && id <= 0xef);
}

/** Parses a whole PSM (`00 00 01 BC` + length + body); undefined when malformed. */
export function parseProgramStreamMap(b: Uint8Array): ProgramStreamMap | undefined {
  if (b.length < 16) return undefined;
  const total = Math.min(b.length, 6 + ((b[4]! << 8) | b[5]!));
  let j = 10 + ((b[8]! << 8) | b[9]!);
  if (j + 2 > total) return undefined;
  const mapEnd = Math.min(j + 2 + ((b[j]! << 8) | b[j + 1]!), total - 4);
  j += 2;
  const streams: PsElementaryStream[] = [];
  while (j + 4 <= mapEnd) {
    streams.push({ streamType: b[j]!, streamId: b[j + 1]! });
    j += 4 + ((b[j + 2]! << 8) | b[j + 3]!);
  }
  return { version: b[6]! & 0x1f, streams };
}

function sameMap(a: ProgramStreamMap | undefined, b: ProgramStreamMap): boolean {
  if (a === undefined || a.version !== b.version || a.streams.length !== b.streams.length) {
    return false;
  }
  return a.streams.every(
    (s, k) => s.streamId === b.streams[k]!.streamId && s.streamType === b.streams[k]!.streamType,
  );
}

/** The codec of a video stream id under a PSM; H.264 when the PSM does not say. */
export function videoCodecOf(map: ProgramStreamMap | undefined, streamId?: number): VideoCodec {
  if (map !== undefined) {
    for (const s of map.streams) {
      if (!isVideo(s.streamId) || (streamId !== undefined && s.streamId !== streamId)) continue;
      const c = codecOfStreamType(s.streamType);
      if (c !== undefined) return c;
    }
  }
  return "h264";
}

/** Whether keyframes can be told from NAL units: H.264/H.265 declared, or no PSM (H.264 guessed). */
function nalCodecKnown(map: ProgramStreamMap | undefined): boolean {
  const video = map?.streams.find((s) => isVideo(s.streamId));
  return video === undefined || codecOfStreamType(video.streamType) !== undefined;
}

export function createPsPackSplitter(options: PsPackSplitterOptions = {}): PsPackSplitter {
  const maxPack = options.maxPackBytes ?? DEFAULT_MAX_PACK_BYTES;
  const st: PsPackStats = {
    bytesIn: 0,
    packs: 0,
    bytesOut: 0,
    keyframes: 0,
    resyncs: 0,
    garbageBytes: 0,
    oversizePacks: 0,
    oversizeBytes: 0,
    truncatedBytes: 0,
  };
  let ended = false;
  let out: PsPack[] = [];
  let inputs: Buffer[] = [];

  let mode: "sync" | "head" | "body" = "sync";
  let inGarbage = false;
  // Sync: the last (≤ 3) bytes of the previous input that may begin a pack start code.
  const carry = Buffer.alloc(3);
  let carryLen = 0;
  // Element header being collected (copied), and how many bytes it needs.
  const hdr = Buffer.alloc(HDR_MAX);
  let hdrLen = 0;
  let need = 4;
  let bodyLeft = 0;
  let bodyScan = false;
  let scanCodec: VideoCodec = "h264";

  // The pack being built.
  let inPack = false;
  let parts: Buffer[] = [];
  let packLen = 0;
  let elemStart = 0;
  let oversize = false;
  let keyframe = false;
  let hasPsm = false;
  let pts: number | undefined;
  let scr: number | undefined;
  let pes: PsPes[] = [];
  let map: ProgramStreamMap | undefined;

  // NAL start-code scan across segments: the last ≤ 5 payload bytes of the video stream.
  const tail = Buffer.alloc(5);
  let tailLen = 0;
  const joint = Buffer.alloc(10);

  const garbage = (n: number): void => {
    if (n <= 0) return;
    if (!inGarbage) {
      inGarbage = true;
      st.resyncs++;
    }
    st.garbageBytes += n;
  };

  const append = (b: Buffer): void => {
    packLen += b.length;
    if (oversize) return;
    if (packLen > maxPack) {
      oversize = true;
      parts = [];
      return;
    }
    parts.push(b);
  };

  const cutTo = (len: number): void => {
    pes = pes.filter((p) => p.end <= len);
    if (!oversize) {
      let total = packLen;
      while (parts.length > 0 && total - parts[parts.length - 1]!.length >= len) {
        total -= parts.pop()!.length;
      }
      const last = parts[parts.length - 1];
      if (last !== undefined && total > len) {
        parts[parts.length - 1] = last.subarray(0, last.length - (total - len));
      }
    }
    packLen = len;
  };

  const finishPack = (): void => {
    if (!inPack) return;
    if (oversize) {
      st.oversizePacks++;
      st.oversizeBytes += packLen;
    } else if (packLen > 0) {
      const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, packLen);
      const key = keyframe || (hasPsm && !nalCodecKnown(map));
      out.push({ bytes, keyframe: key, psm: hasPsm, pts, scr, codec: videoCodecOf(map), map, pes });
      st.packs++;
      st.bytesOut += packLen;
      if (key) st.keyframes++;
    }
    inPack = false;
    parts = [];
    packLen = 0;
    elemStart = 0;
    oversize = false;
    keyframe = false;
    hasPsm = false;
    pts = undefined;
    scr = undefined;
    pes = [];
  };

  const checkNal = (b: Buffer, at: number): void => {
    if (!keyframe && isRandomAccessNal(scanCodec, b[at]!, b[at + 1]!, b[at + 2]!)) keyframe = true;
  };

  const scanNals = (seg: Buffer): void => {
    if (seg.length === 0) return;
    if (tailLen > 0) {
      tail.copy(joint, 0, 0, tailLen);
      const m = Math.min(5, seg.length);
      seg.copy(joint, tailLen, 0, m);
      const jl = tailLen + m;
      for (let p = 0; p < tailLen && p + 6 <= jl; p++) {
        if (joint[p] === 0 && joint[p + 1] === 0 && joint[p + 2] === 1) checkNal(joint, p + 3);
      }
      if (seg.length < 5) {
        const keep = Math.min(5, jl);
        joint.copy(tail, 0, jl - keep, jl);
        tailLen = keep;
      }
    }
    let q = seg.indexOf(START3);
    while (q >= 0 && q + 6 <= seg.length) {
      checkNal(seg, q + 3);
      q = seg.indexOf(START3, q + 3);
    }
    if (seg.length >= 5) {
      seg.copy(tail, 0, seg.length - 5);
      tailLen = 5;
    } else if (tailLen === 0) {
      seg.copy(tail, 0);
      tailLen = seg.length;
    }
  };

  const startElement = (): void => {
    elemStart = packLen;
    mode = "head";
    hdrLen = 0;
    need = 4;
    bodyLeft = 0;
    bodyScan = false;
  };

  /** Appends the collected header and continues with `body` bytes of the element. */
  const completeHeader = (body: number): void => {
    append(Buffer.from(hdr.subarray(0, hdrLen)));
    if (body > 0) {
      mode = "body";
      bodyLeft = body;
    } else {
      startElement();
    }
  };

  const toSync = (): void => {
    mode = "sync";
    hdrLen = 0;
    need = 4;
    bodyScan = false;
  };

  /** Interprets `hdr[0..hdrLen)`: "more" (need raised), "done", or "garbage". */
  const header = (): "more" | "done" | "garbage" => {
    const more = (n: number): "more" => {
      need = n;
      return "more";
    };
    if (hdr[0] !== 0 || hdr[1] !== 0 || hdr[2] !== 1) return "garbage";
    const id = hdr[3]!;
    if (id === PACK_START) {
      if (hdrLen < 5) return more(5);
      let packScr: number;
      if ((hdr[4]! & 0xc0) === 0x40) {
        if (hdrLen < 14) return more(14);
        // ehome-2.0 §4.1 item 4: skip pack_stuffing_length bytes whatever their values.
        const size = 14 + (hdr[13]! & 0x07);
        if (hdrLen < size) return more(size);
        packScr = readScr2(hdr, 0);
      } else if ((hdr[4]! & 0xf0) === 0x20) {
        if (hdrLen < 12) return more(12);
        packScr = readTimestamp(hdr, 4); // MPEG-1 pack header
      } else {
        return "garbage";
      }
      finishPack();
      inPack = true;
      inGarbage = false;
      scr = packScr;
      completeHeader(0);
      return "done";
    }
    if (!inPack) return "garbage";
    if (id === END_CODE) {
      append(Buffer.from(hdr.subarray(0, 4)));
      finishPack();
      toSync();
      return "done";
    }
    if (id < SYSTEM_HEADER) return "garbage";
    if (hdrLen < 6) return more(6);
    const len = (hdr[4]! << 8) | hdr[5]!;
    const total = 6 + len;
    if (id === PROGRAM_STREAM_MAP && len <= PSM_MAX) {
      if (hdrLen < total) return more(total);
      const m = parseProgramStreamMap(hdr.subarray(0, total));
      if (m !== undefined && !sameMap(map, m)) map = m;
      hasPsm = true;
      completeHeader(0);
      return "done";
    }
    if (!hasPesHeader(id) || len < 3) {
      completeHeader(len);
      return "done";
    }
    let headerEnd: number;
    let p: number | undefined;
    let d: number | undefined;
    if (hdrLen < 7) return more(7);
    if ((hdr[6]! & 0xc0) === 0x80) {
      if (hdrLen < 9) return more(9);
      headerEnd = Math.min(9 + hdr[8]!, total);
      if (hdrLen < headerEnd) return more(headerEnd);
      const flags = hdr[7]! >> 6;
      if (flags >= 2 && headerEnd >= 14) p = readTimestamp(hdr, 9);
      if (flags === 3 && headerEnd >= 19) d = readTimestamp(hdr, 14);
    } else {
      // MPEG-1 PES header: stuffing 0xFF, optional STD buffer, then PTS / PTS+DTS / 0x0F.
      const lim = Math.min(total, MPEG1_PES_HEADER_MAX);
      if (hdrLen < lim) return more(lim);
      let j = 6;
      while (j < lim && hdr[j] === 0xff) j++;
      if (j < lim && (hdr[j]! & 0xc0) === 0x40) j += 2;
      if (j < lim) {
        const f = hdr[j]! & 0xf0;
        if (f === 0x20 && j + 5 <= lim) {
          p = readTimestamp(hdr, j);
          j += 5;
        } else if (f === 0x30 && j + 10 <= lim) {
          p = readTimestamp(hdr, j);
          d = readTimestamp(hdr, j + 5);
          j += 10;
        } else if (hdr[j] === 0x0f) {
          j++;
        }
      }
      headerEnd = Math.min(j, lim);
    }
    if (pes.length >= MAX_PES_PER_PACK) oversize = true;
    else {
      pes.push({
        streamId: id,
        offset: elemStart,
        payloadOffset: elemStart + headerEnd,
        end: elemStart + total,
        pts: p,
        dts: d,
      });
    }
    const video = isVideo(id);
    if (video && pts === undefined && p !== undefined) pts = p;
    const collected = hdrLen;
    completeHeader(total - collected);
    if (video) {
      scanCodec = videoCodecOf(map, id);
      scanNals(hdr.subarray(headerEnd, collected));
      bodyScan = mode === "body";
    }
    return "done";
  };

  /** Sync mode: skips to the next `00 00 01 BA`; returns the new read position. */
  const sync = (data: Buffer, i: number): number => {
    if (carryLen > 0) {
      const m = Math.min(3, data.length - i);
      carry.copy(joint, 0, 0, carryLen);
      data.copy(joint, carryLen, i, i + m);
      const jl = carryLen + m;
      for (let p = 0; p < carryLen; p++) {
        if (p + 4 > jl) break;
        if (joint[p] === 0 && joint[p + 1] === 0 && joint[p + 2] === 1 && joint[p + 3] === 0xba) {
          garbage(p);
          joint.copy(hdr, 0, p, p + 4);
          hdrLen = 4;
          need = 4;
          mode = "head";
          const used = 4 - (carryLen - p);
          carryLen = 0;
          return i + used;
        }
      }
    }
    const q = data.indexOf(PACK_CODE, i);
    if (q >= 0) {
      garbage(carryLen + q - i);
      carryLen = 0;
      mode = "head";
      hdrLen = 0;
      need = 4;
      return q;
    }
    // Keep the last ≤ 3 bytes of carry + data[i..) as the new carry.
    const total = carryLen + data.length - i;
    const keep = Math.min(3, total);
    garbage(total - keep);
    const fromData = Math.min(keep, data.length - i);
    const fromCarry = keep - fromData;
    carry.copy(carry, 0, carryLen - fromCarry, carryLen);
    data.copy(carry, fromCarry, data.length - fromData);
    carryLen = keep;
    return data.length;
  };

  const process = (data: Buffer): void => {
    let i = 0;
    while (i < data.length || (mode === "head" && hdrLen >= need && hdrLen > 0)) {
      if (mode === "sync") {
        i = sync(data, i);
        continue;
      }
      if (mode === "body") {
        const n = Math.min(bodyLeft, data.length - i);
        const seg = data.subarray(i, i + n);
        if (bodyScan) scanNals(seg);
        append(seg);
        bodyLeft -= n;
        i += n;
        if (bodyLeft === 0) startElement();
        continue;
      }
      const n = Math.min(need - hdrLen, data.length - i);
      if (n > 0) {
        data.copy(hdr, hdrLen, i, i + n);
        hdrLen += n;
        i += n;
      }
      if (hdrLen < need) break;
      if (header() === "garbage") {
        // The pack ends at its last whole element; rescan the header bytes after the first.
        const rest = Buffer.from(hdr.subarray(1, hdrLen));
        finishPack();
        toSync();
        tailLen = 0;
        garbage(1);
        inputs.unshift(rest, data.subarray(i));
        return;
      }
    }
  };

  return {
    push(chunk) {
      if (ended) return [];
      const b = toBuffer(chunk);
      st.bytesIn += b.length;
      out = [];
      inputs = [b];
      while (inputs.length > 0) process(inputs.shift()!);
      return out;
    },
    end() {
      if (ended) return [];
      ended = true;
      out = [];
      if (mode === "sync") {
        garbage(carryLen);
        carryLen = 0;
      } else if (inPack) {
        if (mode === "body") st.truncatedBytes += packLen - elemStart;
        else st.truncatedBytes += hdrLen;
        cutTo(elemStart);
        finishPack();
      } else {
        garbage(hdrLen);
      }
      toSync();
      return out;
    },
    stats: () => ({ ...st }),
    bufferedBytes: () => (oversize ? 0 : packLen) + hdrLen + carryLen,
  };
}

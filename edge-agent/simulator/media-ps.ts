import { PROGRAM_STREAM_MAP, packHeader, pesPacket, SYSTEM_HEADER } from "../media/ps.ts";
import type { AccessUnit, MediaFixture } from "./media-source.ts";

/**
 * Packs H.264 access units into MPEG-PS the way a Hikvision device does (ehome-2.0 §4.1 item 4):
 * one pack per frame whose header carries 6 stuffing bytes that are not all 0xFF (`ff ff` + a
 * 32-bit pack counter counting on from the captured `ff ff 00 7d 49 09`), a system header and a program stream
 * map (stream_type 0x1B H.264, and 0x90 G.711 when audio is on) before every IDR, then the frame in
 * PES 0xE0 packets with a 90 kHz PTS (a frame larger than `maxPesPayload` spans several PES, only
 * the first with a PTS), then optionally 40 ms of G.711 A-law silence in PES 0xC0.
 *
 * Pure and deterministic: the same calls give the same bytes, so a test can rebuild exactly what the
 * simulator pushed (`buildPs`, `recordPs`).
 */

export const VIDEO_STREAM_ID = 0xe0;
export const AUDIO_STREAM_ID = 0xc0;
export const STREAM_TYPE_H264 = 0x1b;
/** Hikvision's stream_type for G.711 in PS. */
export const STREAM_TYPE_G711 = 0x90;
/** PTS of a stream's first frame: 1 s, so no decoder sees a negative DTS. */
export const BASE_PTS = 90_000;
/** Largest PES payload (a PES length field is 16 bits). */
export const MAX_PES_PAYLOAD = 65_000;
/** The counter in the captured pack stuffing (`ff ff 00 7d 49 09`); ours counts on from it. */
export const STUFFING_COUNTER_BASE = 0x007d4909;
const MUX_RATE = 6106; // × 50 bytes/s ≈ 2.4 Mbit/s, the order a 1080p camera declares
const A_LAW_SILENCE = 0xd5;
const AUDIO_RATE = 8000;

export interface PsOptions {
  /** Frames per second (PTS step = 90000 / fps). */
  fps: number;
  /** Add G.711 A-law silence (PES 0xC0, stream_type 0x90) to every pack. Default false. */
  audio?: boolean;
  /** Split frames into PES packets of at most this many payload bytes. Default 65000. */
  maxPesPayload?: number;
  /** PTS of timeline position 0. Default 90000. */
  basePts?: number;
}

export interface PsWriter {
  /**
   * One pack for `au` shown at timeline position `position` (PTS = basePts + position × 90000/fps).
   */
  frame(au: AccessUnit, position: number): Buffer;
  /** Packs written so far (the stuffing counter of the next pack). */
  readonly packs: number;
}

/** CRC-32/MPEG-2 (poly 0x04C11DB7, no reflection), as the PSM's CRC_32 field needs. */
export function crc32Mpeg2(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b << 24;
    for (let k = 0; k < 8; k++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}

/** ISO/IEC 13818-1 §2.5.3.5 system header: rate bound, one video (and one audio) stream. */
function systemHeader(audio: boolean): Buffer {
  const streams = audio ? 2 : 1;
  const h = Buffer.alloc(12 + 3 * streams);
  h.set([0, 0, 1, SYSTEM_HEADER], 0);
  h.writeUInt16BE(6 + 3 * streams, 4);
  h[6] = 0x80 | ((MUX_RATE >> 15) & 0x7f);
  h[7] = (MUX_RATE >> 7) & 0xff;
  h[8] = ((MUX_RATE & 0x7f) << 1) | 0x01;
  h[9] = ((audio ? 1 : 0) << 2) | 0x00; // audio_bound, fixed_flag 0, CSPS 0
  h[10] = 0xe1; // audio lock, video lock, marker, video_bound 1
  h[11] = 0x7f; // packet_rate_restriction 0, reserved
  // P-STD buffers: video 232 × 1024 bytes, audio 32 × 128 bytes (a camera's values).
  h.set([VIDEO_STREAM_ID, 0xe0, 0xe8], 12);
  if (audio) h.set([AUDIO_STREAM_ID, 0xc0, 0x20], 15);
  return h;
}

/** ISO/IEC 13818-1 §2.5.4 program stream map with its CRC. */
function programStreamMap(audio: boolean): Buffer {
  const entries = audio
    ? [
        [STREAM_TYPE_H264, VIDEO_STREAM_ID],
        [STREAM_TYPE_G711, AUDIO_STREAM_ID],
      ]
    : [[STREAM_TYPE_H264, VIDEO_STREAM_ID]];
  const esMap = 4 * entries.length;
  const m = Buffer.alloc(16 + esMap);
  m.set([0, 0, 1, PROGRAM_STREAM_MAP], 0);
  m.writeUInt16BE(10 + esMap, 4);
  m[6] = 0xe0; // current_next_indicator 1, reserved, version 0
  m[7] = 0xff; // reserved, marker
  m.writeUInt16BE(0, 8); // program_stream_info_length
  m.writeUInt16BE(esMap, 10);
  let o = 12;
  for (const [type, id] of entries) {
    m[o] = type!;
    m[o + 1] = id!;
    m.writeUInt16BE(0, o + 2);
    o += 4;
  }
  m.writeUInt32BE(crc32Mpeg2(m.subarray(0, o)), o);
  return m;
}

/**
 * `ff ff` + the 32-bit counter of pack `n`. A demuxer that scans for start codes must not find one in
 * the stuffing (ffmpeg's does), so a counter whose bytes would read `00 00 01` is bent.
 */
export function packStuffing(n: number): Buffer {
  const s = Buffer.from([0xff, 0xff, 0, 0, 0, 0]);
  s.writeUInt32BE((STUFFING_COUNTER_BASE + n) >>> 0, 2);
  for (let k = 2; k + 2 < 6; k++) {
    if (s[k] === 0 && s[k + 1] === 0 && s[k + 2] === 1) s[k + 2] = 0x81;
  }
  return s;
}

export function createPsWriter(options: PsOptions): PsWriter {
  const audio = options.audio ?? false;
  const maxPes = options.maxPesPayload ?? MAX_PES_PAYLOAD;
  if (!Number.isInteger(maxPes) || maxPes < 1 || maxPes > MAX_PES_PAYLOAD) {
    throw new RangeError(`maxPesPayload must be 1..${MAX_PES_PAYLOAD}`);
  }
  const step = 90_000 / options.fps;
  const base = options.basePts ?? BASE_PTS;
  const idrHeaders = Buffer.concat([systemHeader(audio), programStreamMap(audio)]);
  const silence = Buffer.alloc(Math.round(AUDIO_RATE / options.fps), A_LAW_SILENCE);
  let packs = 0;
  return {
    get packs() {
      return packs;
    },
    frame(au, position) {
      const pts = Math.round(base + position * step);
      const stuffing = packStuffing(packs);
      packs++;
      const parts: Buffer[] = [packHeader(pts, MUX_RATE, stuffing)];
      if (au.idr) parts.push(idrHeaders);
      for (let i = 0; i < au.data.length; i += maxPes) {
        const payload = au.data.subarray(i, Math.min(i + maxPes, au.data.length));
        parts.push(pesPacket(VIDEO_STREAM_ID, payload, i === 0 ? pts : undefined));
      }
      if (audio) parts.push(pesPacket(AUDIO_STREAM_ID, silence, pts));
      return Buffer.concat(parts);
    },
  };
}

export interface BuildPsOptions extends Omit<PsOptions, "fps"> {
  /** Frames to pack. */
  frames: number;
  /** Fixture frame of timeline position 0. Default 0 (the first IDR). */
  startFrame?: number;
}

/**
 * The PS of `frames` frames of the fixture looped from `startFrame`, at timeline positions 0, 1, …:
 * exactly what a live push sends (before any FORCEIFRAME) and what a record file holds.
 */
export function buildPs(fixture: MediaFixture, options: BuildPsOptions): Buffer {
  const w = createPsWriter({ ...options, fps: fixture.fps });
  const n = fixture.frames.length;
  const start = options.startFrame ?? 0;
  const parts: Buffer[] = [];
  for (let i = 0; i < options.frames; i++) parts.push(w.frame(fixture.frames[(start + i) % n]!, i));
  return Buffer.concat(parts);
}

/**
 * Size of the pack of each fixture frame (every pack of the same access unit has the same size), so
 * `buildPs(fixture, {frames})` is Σ sizes[i % frames.length] without building it.
 */
export function packSizes(fixture: MediaFixture, options: Omit<PsOptions, "fps"> = {}): number[] {
  const w = createPsWriter({ ...options, fps: fixture.fps });
  return fixture.frames.map((au) => w.frame(au, 0).length);
}

/**
 * Remuxes MPEG-PS packs (from ps-packs.ts) into MPEG-TS (ISO/IEC 13818-1 §2.4) for viewers that
 * want TS: ffplay, VLC, mpegts.js. One program (number 1): PMT on PID 0x1000, video on 0x100
 * (stream_type 0x1B H.264 or 0x24 H.265, also the PCR PID), audio on 0x101 only when the PSM
 * declares a type TS players read (MPEG audio 0x03/0x04, AAC ADTS 0x0F, AAC LATM 0x11). Other
 * audio (Hikvision G.711 0x90/0x91, private streams) is dropped rather than announced as a stream
 * ffprobe cannot decode.
 *
 * - PAT + PMT go out before every keyframe pack (so a viewer can start at any keyframe), when the
 *   program changes (new PMT version), and at least every 100 ms of PTS/SCR.
 * - Each video PES with a PTS starts a TS PES (payload_unit_start, PES_packet_length 0 as allowed
 *   for video in TS, PCR in its first packet from the pack's SCR when it is plausible, else from
 *   the DTS/PTS; random_access_indicator on keyframes). Video PES without a PTS (Hikvision splits
 *   large frames into several) continue it, so a player sees one PES per frame. PES headers are
 *   rewritten (MPEG-2 syntax, PTS/DTS only), which also converts MPEG-1 PES headers.
 * - Continuity counters per PID; the last packet of each PES is padded with adaptation-field
 *   stuffing.
 *
 * Pure: no sockets, timers or logs. One remuxer per relay, shared by all its TS viewers.
 */
import type { PsPack, PsPes } from "./ps-packs.ts";

export const TS_PACKET = 188;
export const PMT_PID = 0x1000;
export const VIDEO_PID = 0x100;
export const AUDIO_PID = 0x101;
const PAT_PID = 0;
const PROGRAM_NUMBER = 1;
/** PAT/PMT at least this often, in 90 kHz ticks (100 ms). */
const PSI_INTERVAL = 9000;
const TS_AUDIO_TYPES = new Set([0x03, 0x04, 0x0f, 0x11]);
const TS_VIDEO_TYPES = new Set([0x01, 0x02, 0x10, 0x1b, 0x24]);
const WRAP = 2 ** 33;
/** Clock steps back up to this (10 s, 90 kHz) are jitter between streams, not a new timeline. */
const BACKWARDS_TOLERANCE = 10 * 90_000;

export interface PsToTsStats {
  packs: number;
  tsPackets: number;
  bytesOut: number;
  videoPes: number;
  audioPes: number;
  /** PES packets of streams TS players cannot read (G.711, private, a second video…). */
  pesDropped: number;
  /** PAT + PMT pairs written. */
  psi: number;
  pmtVersion: number;
}

export interface PsToTs {
  /** Remuxes one pack; returns whole TS packets (possibly none). */
  push(pack: PsPack): Buffer;
  /** The continuity_counter of the last packet written on `pid` (15 before the first). */
  continuity(pid: number): number;
  stats(): PsToTsStats;
}

export interface PsToTsOptions {
  /** First PMT version_number (a join remux uses the live remuxer's). Default 0. */
  pmtVersion?: number;
}

interface Program {
  videoId: number;
  videoType: number;
  audioId: number | undefined;
  audioType: number | undefined;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32/MPEG-2 (ISO/IEC 13818-1 annex A). */
export function crc32Mpeg(b: Uint8Array, start = 0, end = b.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++)
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ b[i]!) & 0xff]!) >>> 0;
  return crc >>> 0;
}

function isVideoId(id: number): boolean {
  return id >= 0xe0 && id <= 0xef;
}

function isAudioId(id: number): boolean {
  return id >= 0xc0 && id <= 0xdf;
}

function writeTimestamp(b: Buffer, o: number, prefix: number, ts: number): void {
  const t = ((ts % WRAP) + WRAP) % WRAP;
  b[o] = (prefix << 4) | ((Math.floor(t / 2 ** 30) & 0x07) << 1) | 1;
  const mid = Math.floor(t / 2 ** 15) & 0x7fff;
  const lo = t & 0x7fff;
  b.writeUInt16BE((mid << 1) | 1, o + 1);
  b.writeUInt16BE((lo << 1) | 1, o + 3);
}

/** An MPEG-2 PES header (PTS, or PTS + DTS) for `payloadBytes` of payload; length 0 = unbounded. */
function pesHeader(streamId: number, pes: PsPes, payloadBytes: number, unbounded: boolean): Buffer {
  const hasPts = pes.pts !== undefined;
  const hasDts = hasPts && pes.dts !== undefined && pes.dts !== pes.pts;
  const optional = hasDts ? 10 : hasPts ? 5 : 0;
  const h = Buffer.alloc(9 + optional);
  h.set([0, 0, 1, streamId], 0);
  const len = 3 + optional + payloadBytes;
  h.writeUInt16BE(unbounded || len > 0xffff ? 0 : len, 4);
  h[6] = 0x80;
  h[7] = hasDts ? 0xc0 : hasPts ? 0x80 : 0;
  h[8] = optional;
  if (hasPts) writeTimestamp(h, 9, hasDts ? 3 : 2, pes.pts!);
  if (hasDts) writeTimestamp(h, 14, 1, pes.dts!);
  return h;
}

const EMPTY = Buffer.alloc(0);
/** Largest PES header pesHeader() writes: 9 + PTS + DTS. */
const PES_HEADER_MAX = 19;

/** At most this many TS bytes for one pack: PAT + PMT, then each PES as writePayload packs it. */
function tsBound(pack: PsPack): number {
  let packets = 2;
  for (const pes of pack.pes) {
    packets += Math.ceil((pes.end - pes.payloadOffset + PES_HEADER_MAX + 8) / 176) + 1;
  }
  return packets * TS_PACKET;
}

export function createPsToTs(options: PsToTsOptions = {}): PsToTs {
  const st: PsToTsStats = {
    packs: 0,
    tsPackets: 0,
    bytesOut: 0,
    videoPes: 0,
    audioPes: 0,
    pesDropped: 0,
    psi: 0,
    pmtVersion: (options.pmtVersion ?? 0) & 0x1f,
  };
  const cc = new Map<number, number>();
  let program: Program | undefined;
  let lastVideoId: number | undefined;
  let lastPsiClock: number | undefined;
  /** A video TS PES is open: video PES without a PTS continue it. */
  let videoOpen = false;

  /**
   * The TS of the pack being remuxed: allocated per pack at its upper bound and handed out as is,
   * so no work buffer sized for the largest keyframe stays with the remuxer, and no second copy.
   */
  let out = EMPTY;
  let pos = 0;

  const nextCc = (pid: number): number => {
    const c = cc.get(pid) ?? 15;
    const n = (c + 1) & 0x0f;
    cc.set(pid, n);
    return n;
  };

  const reserve = (bytes: number): void => {
    if (out.length - pos >= bytes) return;
    const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, pos + bytes, 16 * TS_PACKET));
    out.copy(bigger, 0, 0, pos);
    out = bigger;
  };

  const writeSection = (pid: number, section: Buffer): void => {
    reserve(TS_PACKET);
    const p = out.subarray(pos, pos + TS_PACKET);
    p[0] = 0x47;
    p[1] = 0x40 | ((pid >> 8) & 0x1f);
    p[2] = pid & 0xff;
    p[3] = 0x10 | nextCc(pid);
    p[4] = 0; // pointer_field
    section.copy(p, 5);
    p.fill(0xff, 5 + section.length);
    pos += TS_PACKET;
    st.tsPackets++;
  };

  const writePsi = (prog: Program): void => {
    const pat = Buffer.alloc(12 + 4);
    pat[0] = 0x00;
    pat.writeUInt16BE(0xb000 | 13, 1);
    pat.writeUInt16BE(1, 3); // transport_stream_id
    pat[5] = 0xc1;
    pat[6] = 0;
    pat[7] = 0;
    pat.writeUInt16BE(PROGRAM_NUMBER, 8);
    pat.writeUInt16BE(0xe000 | PMT_PID, 10);
    pat.writeUInt32BE(crc32Mpeg(pat, 0, 12), 12);
    const streams: [number, number][] = [[prog.videoType, VIDEO_PID]];
    if (prog.audioType !== undefined) streams.push([prog.audioType, AUDIO_PID]);
    const pmt = Buffer.alloc(12 + 5 * streams.length + 4);
    pmt[0] = 0x02;
    pmt.writeUInt16BE(0xb000 | (9 + 5 * streams.length + 4), 1);
    pmt.writeUInt16BE(PROGRAM_NUMBER, 3);
    pmt[5] = 0xc1 | (st.pmtVersion << 1);
    pmt[6] = 0;
    pmt[7] = 0;
    pmt.writeUInt16BE(0xe000 | VIDEO_PID, 8); // PCR_PID
    pmt.writeUInt16BE(0xf000, 10); // program_info_length 0
    streams.forEach(([type, pid], k) => {
      const o = 12 + 5 * k;
      pmt[o] = type;
      pmt.writeUInt16BE(0xe000 | pid, o + 1);
      pmt.writeUInt16BE(0xf000, o + 3);
    });
    pmt.writeUInt32BE(crc32Mpeg(pmt, 0, pmt.length - 4), pmt.length - 4);
    writeSection(PAT_PID, pat);
    writeSection(PMT_PID, pmt);
    st.psi++;
  };

  /**
   * Writes `parts` as the payload of TS packets on `pid`: the first packet carries
   * payload_unit_start when `start`, and a PCR / random_access_indicator when given.
   */
  const writePayload = (
    pid: number,
    parts: Buffer[],
    start: boolean,
    pcr: number | undefined,
    randomAccess: boolean,
  ): void => {
    let remaining = 0;
    for (const b of parts) remaining += b.length;
    reserve((Math.ceil((remaining + 8) / 176) + 1) * TS_PACKET);
    let part = 0;
    let partPos = 0;
    let first = true;
    while (remaining > 0 || first) {
      const flags = first ? (pcr !== undefined ? 0x10 : 0) | (randomAccess ? 0x40 : 0) : 0;
      const minAf = flags === 0 ? 0 : pcr !== undefined ? 8 : 2;
      const payload = Math.min(remaining, 184 - minAf);
      const af = 184 - payload; // adaptation field bytes, its length byte included
      const p = out.subarray(pos, pos + TS_PACKET);
      p[0] = 0x47;
      p[1] = (first && start ? 0x40 : 0) | ((pid >> 8) & 0x1f);
      p[2] = pid & 0xff;
      p[3] = (af > 0 ? 0x30 : 0x10) | nextCc(pid);
      if (af > 0) {
        p[4] = af - 1;
        if (af > 1) {
          p[5] = flags;
          let o = 6;
          if (first && pcr !== undefined) {
            const base = ((Math.floor(pcr) % WRAP) + WRAP) % WRAP;
            p[6] = Math.floor(base / 2 ** 25) & 0xff;
            p[7] = Math.floor(base / 2 ** 17) & 0xff;
            p[8] = Math.floor(base / 2 ** 9) & 0xff;
            p[9] = Math.floor(base / 2 ** 1) & 0xff;
            p[10] = ((base & 1) << 7) | 0x7e; // 6 reserved bits, extension 0
            p[11] = 0;
            o = 12;
          }
          p.fill(0xff, o, 4 + af);
        }
      }
      let w = 4 + af;
      while (w < TS_PACKET) {
        const b = parts[part]!;
        const n = Math.min(b.length - partPos, TS_PACKET - w);
        b.copy(p, w, partPos, partPos + n);
        w += n;
        partPos += n;
        if (partPos === b.length) {
          part++;
          partPos = 0;
        }
      }
      remaining -= payload;
      pos += TS_PACKET;
      st.tsPackets++;
      first = false;
    }
  };

  const programOf = (pack: PsPack): Program => {
    let videoId: number | undefined;
    let videoType: number | undefined;
    let audioId: number | undefined;
    let audioType: number | undefined;
    for (const s of pack.map?.streams ?? []) {
      if (videoId === undefined && isVideoId(s.streamId)) {
        videoId = s.streamId;
        if (TS_VIDEO_TYPES.has(s.streamType)) videoType = s.streamType;
      } else if (
        audioId === undefined &&
        isAudioId(s.streamId) &&
        TS_AUDIO_TYPES.has(s.streamType)
      ) {
        audioId = s.streamId;
        audioType = s.streamType;
      }
    }
    if (videoId === undefined) {
      videoId = lastVideoId ?? pack.pes.find((p) => isVideoId(p.streamId))?.streamId ?? 0xe0;
    }
    lastVideoId = videoId;
    return {
      videoId,
      videoType: videoType ?? (pack.codec === "h265" ? 0x24 : 0x1b),
      audioId,
      audioType,
    };
  };

  const pcrFor = (pack: PsPack, pes: PsPes): number | undefined => {
    const t = pes.dts ?? pes.pts;
    if (t === undefined) return undefined;
    // The SCR is the PCR's PS counterpart; use it when it sits up to 2 s before the frame.
    if (pack.scr !== undefined) {
      const lead = (((t - pack.scr) % WRAP) + WRAP) % WRAP;
      if (lead <= 2 * 90_000) return pack.scr;
    }
    return t;
  };

  return {
    push(pack) {
      st.packs++;
      out = Buffer.allocUnsafe(tsBound(pack));
      pos = 0;
      const prog = programOf(pack);
      const changed =
        program === undefined ||
        program.videoId !== prog.videoId ||
        program.videoType !== prog.videoType ||
        program.audioId !== prog.audioId ||
        program.audioType !== prog.audioType;
      if (changed && program !== undefined) st.pmtVersion = (st.pmtVersion + 1) & 0x1f;
      program = prog;
      const clock = pack.pts ?? pack.scr;
      let due = false;
      if (clock !== undefined && lastPsiClock !== undefined) {
        const d = (((clock - lastPsiClock) % WRAP) + WRAP) % WRAP;
        // A clock a little behind (an audio pack's SCR after a video PTS) is not time passing; a
        // big jump either way (seek, wrap, new recording) is.
        due = d >= PSI_INTERVAL && d < WRAP - BACKWARDS_TOLERANCE;
      }
      if (changed || pack.keyframe || due || lastPsiClock === undefined) {
        writePsi(prog);
        if (clock !== undefined) lastPsiClock = clock;
      }
      let firstVideo = true;
      for (const pes of pack.pes) {
        const payload = pack.bytes.subarray(pes.payloadOffset, pes.end);
        if (pes.streamId === prog.videoId) {
          if (pes.pts !== undefined || !videoOpen) {
            const h = pesHeader(pes.streamId, pes, payload.length, true);
            writePayload(
              VIDEO_PID,
              [h, payload],
              true,
              pcrFor(pack, pes),
              firstVideo && pack.keyframe,
            );
            videoOpen = true;
            st.videoPes++;
          } else if (payload.length > 0) {
            writePayload(VIDEO_PID, [payload], false, undefined, false);
          }
          firstVideo = false;
        } else if (prog.audioId !== undefined && pes.streamId === prog.audioId) {
          const h = pesHeader(pes.streamId, pes, payload.length, false);
          writePayload(AUDIO_PID, [h, payload], true, undefined, false);
          st.audioPes++;
        } else {
          st.pesDropped++;
        }
      }
      st.bytesOut += pos;
      const ts = out.subarray(0, pos);
      out = EMPTY;
      return ts;
    },
    continuity: (pid) => cc.get(pid) ?? 15,
    stats: () => ({ ...st }),
  };
}

/**
 * The TS of `packs` (a cached GOP, from its keyframe) for a viewer joining a stream whose live TS
 * comes from `live`, which has already remuxed those packs: remuxed by a fresh remuxer (same PMT
 * version), then each PID's continuity counters renumbered so that the last packet carries the
 * live remuxer's current counter, so the live packets that follow continue without a
 * discontinuity (ISO/IEC 13818-1 §2.4.3.3). Nothing is kept: one TS copy exists only while it is
 * written to the viewer.
 */
export function remuxForJoin(packs: readonly PsPack[], live: PsToTs): Buffer {
  const join = createPsToTs({ pmtVersion: live.stats().pmtVersion });
  const ts = Buffer.concat(packs.map((p) => join.push(p)));
  const counts = new Map<number, number>();
  for (let o = 0; o + TS_PACKET <= ts.length; o += TS_PACKET) {
    const pid = ((ts[o + 1]! & 0x1f) << 8) | ts[o + 2]!;
    counts.set(pid, (counts.get(pid) ?? 0) + 1);
  }
  const next = new Map<number, number>();
  for (const [pid, n] of counts) next.set(pid, (live.continuity(pid) - n + 1 + 16 * n) & 0x0f);
  for (let o = 0; o + TS_PACKET <= ts.length; o += TS_PACKET) {
    const pid = ((ts[o + 1]! & 0x1f) << 8) | ts[o + 2]!;
    const c = next.get(pid)!;
    ts[o + 3] = (ts[o + 3]! & 0xf0) | c;
    next.set(pid, (c + 1) & 0x0f);
  }
  return ts;
}

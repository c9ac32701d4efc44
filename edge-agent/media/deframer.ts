/**
 * De-framer for the device → agent media TCP stream (ehome-2.0 §4.1, §8 "Media for PLAYBACK and
 * DOWNLOAD"): bytes in, in chunks of any size, clean MPEG-PS out.
 *
 * Handles the optional 256-byte private header (detected only on the first bytes of the
 * connection), `$`-framed RTP v2 (CSRCs, extension and padding honoured), the Hikvision marker
 * bytes 0x0d (whole chunk) and 0x1c + 0x80/0x00/0x40 (fragments, reassembled), SSRC checked against
 * the session, resynchronisation after garbage, and raw MPEG-PS (passthrough) for playback and
 * download. Both marker bytes are always removed: ZLMediaKit leaves the 0x1c pair inside the PS,
 * which is why main streams break there (ehome-2.0 §4.3).
 *
 * Pure and incremental: no sockets, timers or logs; never throws on input. Memory is bounded by
 * construction: at most one incomplete record (≤ 4 + 65535 bytes) is held, plus one fragmented
 * chunk being reassembled (≤ `maxChunkBytes`).
 *
 * Output buffers share memory with the input chunks where a record lies inside one chunk (zero
 * copy); a record spanning reads is copied once. Do not modify a chunk after pushing it.
 */
import {
  FRAGMENT_FIRST,
  FRAGMENT_LAST,
  FRAGMENT_MIDDLE,
  MARKER_CHUNK,
  MARKER_FRAGMENT,
  PRIVATE_HEADER_BYTES,
} from "./framer.ts";

export interface DeframerOptions {
  /**
   * The SSRC the session expects (the INVITESTREAM Session read as a number, ehome-2.0 §4.1 item
   * 5). When given, records with another SSRC are counted (`ssrcMismatches`) and dropped.
   * Without it the first record's SSRC is used the same way, and relearned after 64 KiB with no
   * record carrying it.
   */
  expectedSsrc?: number;
  /** Cap on a chunk reassembled from 0x1c fragments; a larger one is dropped. Default 1 MiB. */
  maxChunkBytes?: number;
  /** Receives a copy of the 256-byte private header (for trace mode; never interpreted). */
  onHeader?: (header: Buffer) => void;
}

export type DeframerMode = "start" | "detect" | "rtp" | "ps";

export interface DeframerStats {
  mode: DeframerMode;
  /** `hik` once a record carried a 0x0d/0x1c marker, `none` for plain RTP-PS, undefined before. */
  markers: "hik" | "none" | undefined;
  /** SSRC of the last accepted record. */
  ssrc: number | undefined;
  bytesIn: number;
  bytesOut: number;
  headerBytes: number;
  /** `$` records parsed (accepted or dropped). */
  records: number;
  rtcpRecords: number;
  /** Records carrying a whole chunk (0x0d). */
  chunks: number;
  /** Records carrying a fragment (0x1c). */
  fragments: number;
  /** Fragmented chunks completed and emitted. */
  reassembled: number;
  /** Middle or last fragments with no first before them (each orphan run counted once). */
  fragmentsMissingFirst: number;
  /** Partial chunks dropped because a new chunk, garbage or the end came before their last fragment. */
  fragmentsMissingLast: number;
  /** Partial chunks dropped for growing past `maxChunkBytes`. */
  fragmentOverflows: number;
  /** Times the parser lost the framing and scanned for the next record. */
  resyncs: number;
  /** Bytes skipped while resynchronising. */
  garbageBytes: number;
  /**
   * In-sync records carrying another SSRC than the session's (or, without one, than the first
   * record's). They are skipped as garbage, so they also count in `resyncs` and `garbageBytes`.
   */
  ssrcMismatches: number;
  /**
   * SSRC of the last mismatched record: with a real device, tells whether SSRC == Session holds
   * (ehome-2.0 §9 item 5).
   */
  foreignSsrc: number | undefined;
  /** Records whose RTP header does not fit (CSRCs, extension or padding beyond the record). */
  malformedRecords: number;
  /** Records of a Hikvision stream without a valid marker. */
  badMarkers: number;
  /** Records or fragments dropped, for any reason above. */
  recordsDropped: number;
  /** Bytes of an incomplete unit left when the stream ended. */
  truncatedBytes: number;
}

export interface Deframer {
  /** Feeds bytes; returns the clean PS they completed, in order (possibly none). */
  push(chunk: Uint8Array): Buffer[];
  /** The stream ended: drops and counts what is incomplete. Further pushes are ignored. */
  end(): void;
  stats(): DeframerStats;
  /** Bytes held internally (incomplete record plus partial chunk), for memory bounds. */
  bufferedBytes(): number;
}

const DOLLAR = 0x24;
const DEFAULT_MAX_CHUNK = 1 << 20;
const RELEARN_BYTES = 1 << 16;
const EMPTY = Buffer.alloc(0);

/** ehome-2.0 §4.1 item 2: byte 0 = 0x01, byte 1 = 0x00, byte 2 ≥ 0x01, only at connection start. */
function isPrivateHeader(b: Buffer, i: number): boolean {
  return b[i] === 0x01 && b[i + 1] === 0x00 && b[i + 2]! >= 0x01;
}

function isPackStart(b: Buffer, i: number): boolean {
  return b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1 && b[i + 3] === 0xba;
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export function createDeframer(options: DeframerOptions = {}): Deframer {
  const expected = options.expectedSsrc === undefined ? undefined : options.expectedSsrc >>> 0;
  const maxChunk = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK;
  const s: DeframerStats = {
    mode: "start",
    markers: undefined,
    ssrc: undefined,
    bytesIn: 0,
    bytesOut: 0,
    headerBytes: 0,
    records: 0,
    rtcpRecords: 0,
    chunks: 0,
    fragments: 0,
    reassembled: 0,
    fragmentsMissingFirst: 0,
    fragmentsMissingLast: 0,
    fragmentOverflows: 0,
    resyncs: 0,
    garbageBytes: 0,
    ssrcMismatches: 0,
    foreignSsrc: undefined,
    malformedRecords: 0,
    badMarkers: 0,
    recordsDropped: 0,
    truncatedBytes: 0,
  };
  let ended = false;
  // One incomplete unit (record, header or detection window), copied out of the chunks.
  let pending = EMPTY;
  let pendingLen = 0;
  /** Total bytes the unit at the head of `pending` needs before it can be processed. */
  let need = 0;
  let inGarbage = false;
  /** Garbage bytes since the last accepted record. */
  let garbageRun = 0;
  // Reassembly of 0x1c fragments.
  let parts: Buffer[] | null = null;
  let partBytes = 0;
  /** Dropping fragments until the next first fragment or whole chunk. */
  let skipping = false;

  const emit = (out: Buffer[], b: Buffer, a: number, e: number): void => {
    if (e <= a) return;
    out.push(b.subarray(a, e));
    s.bytesOut += e - a;
  };

  const dropPartial = (): void => {
    if (parts !== null) s.fragmentsMissingLast++;
    parts = null;
    partBytes = 0;
  };

  const garbage = (n: number): void => {
    if (n <= 0) return;
    if (!inGarbage) {
      inGarbage = true;
      s.resyncs++;
      dropPartial();
    }
    s.garbageBytes += n;
    garbageRun += n;
  };

  /**
   * Whether a unit starts at i: a `$` record whose length holds an RTP header, whose first RTP
   * byte is version 2 and whose SSRC is the session's (or the one learned from the first record),
   * or in detect mode a pack header. RTCP is accepted only while in sync. Checking the SSRC even
   * in sync stops garbage that happens to start with `$` from swallowing the records after it.
   * 1 yes, 0 no, -1 more bytes needed (`need` set).
   */
  const evaluate = (b: Buffer, i: number, end: number): number => {
    const avail = end - i;
    const v = b[i]!;
    if (v === 0 && s.mode === "detect") {
      if (avail < 4) {
        need = 4;
        return -1;
      }
      return isPackStart(b, i) ? 1 : 0;
    }
    if (v !== DOLLAR) return 0;
    if (avail < 6) {
      need = 6;
      return -1;
    }
    const n = (b[i + 2]! << 8) | b[i + 3]!;
    if (n < 12 || (b[i + 4]! & 0xc0) !== 0x80) return 0;
    const pt = b[i + 5]! & 0x7f;
    if (pt >= 72 && pt <= 76) return inGarbage ? 0 : 1;
    // A learned SSRC is forgotten after RELEARN_BYTES of garbage (the device restarted its stream).
    const known = expected ?? (garbageRun > RELEARN_BYTES ? undefined : s.ssrc);
    if (known === undefined) return 1;
    if (avail < 16) {
      need = 16;
      return -1;
    }
    const ssrc = b.readUInt32BE(i + 12);
    if (ssrc === known) return 1;
    if (!inGarbage) {
      s.ssrcMismatches++;
      s.foreignSsrc = ssrc;
    }
    return 0;
  };

  /** Skips to the next byte that may start a unit; the bytes skipped are garbage. */
  const skip = (b: Buffer, i: number, end: number): number => {
    let k = i;
    if (s.mode === "detect") {
      while (k < end && b[k] !== DOLLAR && b[k] !== 0) k++;
    } else {
      k = b.indexOf(DOLLAR, i);
      if (k === -1 || k > end) k = end;
    }
    garbage(k - i);
    return k;
  };

  const fragment = (b: Buffer, a: number, e: number, flag: number, out: Buffer[]) => {
    s.fragments++;
    if (flag === FRAGMENT_FIRST) {
      dropPartial();
      skipping = false;
      parts = [];
      partBytes = 0;
    } else if (parts === null) {
      if (!skipping) s.fragmentsMissingFirst++;
      skipping = true;
      s.recordsDropped++;
      return;
    }
    if (partBytes + (e - a) > maxChunk) {
      s.fragmentOverflows++;
      parts = null;
      partBytes = 0;
      skipping = true;
      s.recordsDropped++;
      return;
    }
    if (e > a) parts.push(b.subarray(a, e));
    partBytes += e - a;
    if (flag === FRAGMENT_LAST) {
      for (const p of parts) out.push(p);
      s.bytesOut += partBytes;
      s.reassembled++;
      parts = null;
      partBytes = 0;
    }
  };

  /** One complete `$` record whose RTP packet is b[a, e). */
  const record = (b: Buffer, a: number, e: number, out: Buffer[]): void => {
    s.records++;
    const len = e - a;
    const b0 = b[a]!;
    let hl = 12 + 4 * (b0 & 0x0f);
    if (b0 & 0x10) hl = hl + 4 > len ? len + 1 : hl + 4 + 4 * b.readUInt16BE(a + hl + 2);
    let pe = e;
    if (hl <= len && b0 & 0x20) {
      const pad = b[e - 1]!;
      pe = pad === 0 || pad > len - hl ? -1 : e - pad;
    }
    if (hl > len || pe < 0) {
      s.malformedRecords++;
      s.recordsDropped++;
      return;
    }
    const pt = b[a + 1]! & 0x7f;
    if (pt >= 72 && pt <= 76) {
      // RTCP (PT 200-204) on an interleaved channel: nothing for the PS.
      s.rtcpRecords++;
      return;
    }
    s.ssrc = b.readUInt32BE(a + 8);
    const p = a + hl;
    if (p >= pe) return;
    if (s.markers === undefined) {
      s.markers = b[p] === MARKER_CHUNK || b[p] === MARKER_FRAGMENT ? "hik" : "none";
    }
    if (s.markers === "none") {
      emit(out, b, p, pe);
      return;
    }
    const m = b[p]!;
    if (m === MARKER_CHUNK) {
      s.chunks++;
      dropPartial();
      skipping = false;
      emit(out, b, p + 1, pe);
      return;
    }
    const flag = b[p + 1];
    if (
      m === MARKER_FRAGMENT &&
      p + 1 < pe &&
      (flag === FRAGMENT_FIRST || flag === FRAGMENT_MIDDLE || flag === FRAGMENT_LAST)
    ) {
      fragment(b, p + 2, pe, flag, out);
      return;
    }
    s.badMarkers++;
    s.recordsDropped++;
  };

  /**
   * Processes complete units of b[i, end); returns where the first incomplete one starts (with
   * `need` set to the bytes it needs) or `end`. In PS mode everything left is passthrough.
   */
  const consume = (b: Buffer, i: number, end: number, out: Buffer[]): number => {
    while (i < end) {
      const avail = end - i;
      switch (s.mode) {
        case "start": {
          if (b[i] === 0x01) {
            if (avail < 3) {
              need = 3;
              return i;
            }
            if (isPrivateHeader(b, i)) {
              if (avail < PRIVATE_HEADER_BYTES) {
                need = PRIVATE_HEADER_BYTES;
                return i;
              }
              options.onHeader?.(Buffer.from(b.subarray(i, i + PRIVATE_HEADER_BYTES)));
              s.headerBytes = PRIVATE_HEADER_BYTES;
              i += PRIVATE_HEADER_BYTES;
            }
          }
          s.mode = "detect";
          break;
        }
        case "detect":
        case "rtp": {
          const r = evaluate(b, i, end);
          if (r === -1) return i;
          if (r === 0) {
            garbage(1);
            i = skip(b, i + 1, end);
            break;
          }
          if (b[i] === 0) {
            // ehome-2.0 §2.7 / §8: raw MPEG-PS (playback, download) is passed through as is.
            s.mode = "ps";
            inGarbage = false;
            emit(out, b, i, end);
            return end;
          }
          s.mode = "rtp";
          const n = (b[i + 2]! << 8) | b[i + 3]!;
          if (avail < 4 + n) {
            need = 4 + n;
            return i;
          }
          inGarbage = false;
          garbageRun = 0;
          record(b, i + 4, i + 4 + n, out);
          i += 4 + n;
          break;
        }
        case "ps":
          emit(out, b, i, end);
          return end;
      }
    }
    return end;
  };

  /**
   * Copies an incomplete unit out of a chunk into a fresh buffer sized for the whole unit. Output
   * is emitted straight from that buffer, so it is never reused: the one copy a unit that spans
   * reads costs is this one.
   */
  const keep = (b: Buffer, from: number, end: number): void => {
    const n = end - from;
    pending = Buffer.allocUnsafe(Math.max(n, need));
    b.copy(pending, 0, from, end);
    pendingLen = n;
  };

  return {
    push(input) {
      const out: Buffer[] = [];
      if (ended || input.length === 0) return out;
      const chunk = toBuffer(input);
      s.bytesIn += chunk.length;
      if (s.mode === "ps" && pendingLen === 0) {
        emit(out, chunk, 0, chunk.length);
        return out;
      }
      let pos = 0;
      while (pendingLen > 0) {
        if (need > pending.length) {
          // Nothing was emitted from `pending` yet: growing it is safe.
          const grown = Buffer.allocUnsafe(need);
          pending.copy(grown, 0, 0, pendingLen);
          pending = grown;
        }
        const take = Math.min(need - pendingLen, chunk.length - pos);
        chunk.copy(pending, pendingLen, pos, pos + take);
        pendingLen += take;
        pos += take;
        if (pendingLen < need) return out;
        need = 0;
        const unit = pending;
        const len = pendingLen;
        pending = EMPTY;
        pendingLen = 0;
        const used = consume(unit, 0, len, out);
        if (used < len) {
          keep(unit, used, len);
          // consume() stops only at a unit that needs more than it has; guard against a loop.
          if (need <= pendingLen) need = pendingLen + 1;
        }
        if (pos >= chunk.length) return out;
      }
      const at = consume(chunk, pos, chunk.length, out);
      if (at < chunk.length) keep(chunk, at, chunk.length);
      return out;
    },
    end() {
      if (ended) return;
      ended = true;
      s.truncatedBytes += pendingLen;
      pendingLen = 0;
      pending = EMPTY;
      dropPartial();
    },
    stats: () => ({ ...s }),
    bufferedBytes: () => pendingLen + partBytes,
  };
}

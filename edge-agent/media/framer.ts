/**
 * Frames MPEG-PS the way an EHome 2.0 device pushes it on the media TCP link (ehome-2.0 §4.1): an
 * optional 256-byte private header, then `$` records (channel, 16-bit big-endian length) each
 * holding an RTP v2 packet whose payload starts with a Hikvision marker: `0x0d` for a whole chunk,
 * `0x1c` + `0x80`/`0x00`/`0x40` for the first/middle/last fragment of a larger one.
 *
 * The simulator uses it to push streams exactly as a device does; the tests use it to build
 * de-framer fixtures. Pure: no sockets, no timers.
 */

/** Size of the private header some devices send at connection start (ehome-2.0 §4.1 item 2). */
export const PRIVATE_HEADER_BYTES = 256;
/** Largest payload of one `$` record (16-bit length). */
export const MAX_RECORD_BYTES = 0xffff;
export const MARKER_CHUNK = 0x0d;
export const MARKER_FRAGMENT = 0x1c;
export const FRAGMENT_FIRST = 0x80;
export const FRAGMENT_MIDDLE = 0x00;
export const FRAGMENT_LAST = 0x40;

export interface FramerOptions {
  /** RTP SSRC; a device uses the INVITESTREAM Session (ehome-2.0 §4.1 item 5). */
  ssrc: number;
  /** RTP payload type (96 in the capture). */
  payloadType?: number;
  /** Interleaved channel byte of the `$` record (0x00 seen). */
  channel?: number;
  /**
   * Largest RTP payload (marker bytes included) per record. A chunk that does not fit in one 0x0d
   * record is sent as 0x1c fragments. Default 1400, like a device filling an Ethernet frame.
   */
  maxPayloadBytes?: number;
  /** `hik` (default): 0x0d / 0x1c markers; `none`: plain RTP carrying PS (no marker bytes). */
  markers?: "hik" | "none";
  initialSequence?: number;
  /** CSRC list and header extension: not used by devices, here so tests cover the RTP parser. */
  csrcs?: readonly number[];
  extension?: { profile: number; data: Uint8Array };
  /** RTP padding bytes appended to every record (0 = none). */
  padding?: number;
}

export interface FrameOptions {
  /** RTP timestamp (90 kHz) of every record of this chunk. */
  timestamp?: number;
  /** RTP marker bit on the last record of this chunk (end of a frame). Default true. */
  marker?: boolean;
}

export interface Framer {
  /** The records of one PS chunk (e.g. a pack with its PES packets), in order. */
  frame(chunk: Uint8Array, options?: FrameOptions): Buffer[];
  /** The sequence number the next record will carry. */
  readonly nextSequence: number;
}

export interface PrivateHeaderFields {
  session?: number;
  channel?: number;
  /** 0 main, 1 sub, 2 third. */
  streamType?: number;
  deviceId?: string;
}

/**
 * A 256-byte private header. Its content is undocumented (ehome-2.0 §4.1 item 2: receivers skip it
 * and must not depend on it); this layout is ours: magic `01 00 01 00` (the old `kEHOME_MAGIC`),
 * session (u32 BE), channel (u8), stream type (u8), then the device ID in ASCII, zero-padded.
 */
export function privateHeader(fields: PrivateHeaderFields = {}): Buffer {
  const h = Buffer.alloc(PRIVATE_HEADER_BYTES);
  h.set([0x01, 0x00, 0x01, 0x00], 0);
  h.writeUInt32BE((fields.session ?? 0) >>> 0, 4);
  h[8] = (fields.channel ?? 1) & 0xff;
  h[9] = (fields.streamType ?? 0) & 0xff;
  if (fields.deviceId) h.write(fields.deviceId.slice(0, 64), 16, "ascii");
  return h;
}

export function createFramer(options: FramerOptions): Framer {
  const pt = (options.payloadType ?? 96) & 0x7f;
  const channel = (options.channel ?? 0) & 0xff;
  const hik = (options.markers ?? "hik") === "hik";
  const csrcs = options.csrcs ?? [];
  if (csrcs.length > 15) throw new RangeError("at most 15 CSRCs");
  const ext = options.extension;
  if (ext && ext.data.length % 4 !== 0) throw new RangeError("extension data must be 32-bit words");
  const padding = options.padding ?? 0;
  if (padding < 0 || padding > 255) throw new RangeError("padding must be 0..255");
  const headerBytes = 12 + 4 * csrcs.length + (ext ? 4 + ext.data.length : 0);
  const maxPayload = options.maxPayloadBytes ?? 1400;
  if (maxPayload < 3 || headerBytes + maxPayload + padding > MAX_RECORD_BYTES) {
    throw new RangeError(`maxPayloadBytes must be 3..${MAX_RECORD_BYTES - headerBytes - padding}`);
  }
  let seq = (options.initialSequence ?? 0) & 0xffff;

  const record = (
    marker: readonly number[],
    body: Uint8Array,
    timestamp: number,
    last: boolean,
  ): Buffer => {
    const rtpLen = headerBytes + marker.length + body.length + padding;
    const r = Buffer.allocUnsafe(4 + rtpLen);
    r[0] = 0x24;
    r[1] = channel;
    r.writeUInt16BE(rtpLen, 2);
    r[4] = 0x80 | (padding > 0 ? 0x20 : 0) | (ext ? 0x10 : 0) | csrcs.length;
    r[5] = (last ? 0x80 : 0) | pt;
    r.writeUInt16BE(seq, 6);
    seq = (seq + 1) & 0xffff;
    r.writeUInt32BE(timestamp >>> 0, 8);
    r.writeUInt32BE(options.ssrc >>> 0, 12);
    let o = 16;
    for (const c of csrcs) {
      r.writeUInt32BE(c >>> 0, o);
      o += 4;
    }
    if (ext) {
      r.writeUInt16BE(ext.profile & 0xffff, o);
      r.writeUInt16BE(ext.data.length / 4, o + 2);
      r.set(ext.data, o + 4);
      o += 4 + ext.data.length;
    }
    for (const m of marker) r[o++] = m;
    r.set(body, o);
    o += body.length;
    if (padding > 0) {
      r.fill(0, o, o + padding - 1);
      r[o + padding - 1] = padding;
    }
    return r;
  };

  return {
    get nextSequence() {
      return seq;
    },
    frame(chunk, frameOptions = {}) {
      const ts = frameOptions.timestamp ?? 0;
      const endMarker = frameOptions.marker ?? true;
      const out: Buffer[] = [];
      if (!hik) {
        for (let i = 0; i < chunk.length || i === 0; i += maxPayload) {
          const end = Math.min(i + maxPayload, chunk.length);
          out.push(record([], chunk.subarray(i, end), ts, endMarker && end === chunk.length));
          if (end === chunk.length) break;
        }
        return out;
      }
      // ehome-2.0 §4.1 item 4: a chunk that fits goes whole behind 0x0d.
      if (chunk.length + 1 <= maxPayload) {
        out.push(record([MARKER_CHUNK], chunk, ts, endMarker));
        return out;
      }
      const step = maxPayload - 2;
      for (let i = 0; i < chunk.length; i += step) {
        const end = Math.min(i + step, chunk.length);
        const flag =
          i === 0 ? FRAGMENT_FIRST : end === chunk.length ? FRAGMENT_LAST : FRAGMENT_MIDDLE;
        out.push(
          record(
            [MARKER_FRAGMENT, flag],
            chunk.subarray(i, end),
            ts,
            endMarker && flag === FRAGMENT_LAST,
          ),
        );
      }
      return out;
    },
  };
}

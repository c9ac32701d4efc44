/**
 * Hand-built program streams shaped like a Hikvision push (ehome-2.0 §4.1): one pack per frame,
 * a system header and a PSM before each I-frame, non-0xFF pack stuffing, video PES split at
 * 65 000 bytes, audio in packs of its own. Used by the ps-packs, ps-to-ts and relay tests.
 */
import { packHeader, pesPacket } from "../../../../edge-agent/media/ps.ts";
import { type Random, seededRandom } from "../../../../edge-agent/simulator/random.ts";

export type Codec = "h264" | "h265";

/** Payload bytes that never form a start code (no two zero bytes in a row). */
function body(random: Random, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = 1 + ((random() * 255) | 0);
  return b;
}

const SC4 = Buffer.from([0, 0, 0, 1]);
const SC3 = Buffer.from([0, 0, 1]);

/** One access unit: AUD, then SPS + PPS + IDR slice for a keyframe, else a non-IDR slice. */
export function accessUnit(random: Random, codec: Codec, key: boolean, size = 2000): Buffer {
  if (codec === "h264") {
    const nals: Buffer[] = [SC4, Buffer.from([0x09, 0xf0])];
    if (key) nals.push(SC4, Buffer.from([0x67, 0x42, 0xc0, 0x1e]), SC4, Buffer.from([0x68, 0xce]));
    nals.push(SC3, Buffer.from([key ? 0x65 : 0x41, 0x88]), body(random, size));
    return Buffer.concat(nals);
  }
  const nals: Buffer[] = [SC4, Buffer.from([0x46, 0x01, 0x50])];
  if (key) {
    nals.push(SC4, Buffer.from([0x40, 0x01, 0x0c]), SC4, Buffer.from([0x42, 0x01, 0x01]));
    nals.push(SC4, Buffer.from([0x44, 0x01, 0xc1]));
  }
  // IDR_W_RADL (19) or TRAIL_R (1), first_slice_segment_in_pic_flag = 1.
  nals.push(SC3, Buffer.from([key ? 0x26 : 0x02, 0x01, 0xaf]), body(random, size));
  return Buffer.concat(nals);
}

export function systemHeader(): Buffer {
  return Buffer.from([
    0, 0, 1, 0xbb, 0, 12, 0x80, 0x01, 0x01, 0x04, 0xe1, 0xff, 0xe0, 0xe0, 0x80, 0xc0, 0xc0, 0x08,
  ]);
}

/** A program stream map listing `streams` (CRC left zero: nothing we feed checks it). */
export function psm(streams: { type: number; id: number }[], version = 0): Buffer {
  const map = Buffer.concat(streams.map((s) => Buffer.from([s.type, s.id, 0, 0])));
  const bodyLen = 2 + 2 + 2 + map.length + 4;
  const b = Buffer.alloc(6 + bodyLen);
  b.set([0, 0, 1, 0xbc], 0);
  b.writeUInt16BE(bodyLen, 4);
  b[6] = 0x80 | (version & 0x1f);
  b[7] = 0x01;
  b.writeUInt16BE(0, 8);
  b.writeUInt16BE(map.length, 10);
  map.copy(b, 12);
  return b;
}

export interface HikPsOptions {
  frames: number;
  codec?: Codec;
  keyEvery?: number;
  /** Bytes of slice data per frame (keyframes get 4×). */
  frameBytes?: number;
  /** Audio PES (stream 0xC0) after every other frame, declared with this stream_type. */
  audioType?: number;
  audioPayload?: (n: number) => Buffer;
  seed?: number;
  /** First PTS (90 kHz); frames are 3600 apart (25 fps). */
  pts0?: number;
}

export interface HikPs {
  ps: Buffer;
  /** Each pack's bytes, in order. */
  packs: Buffer[];
  keyframes: boolean[];
  /** PTS of each pack's first video PES (undefined for audio packs). */
  pts: (number | undefined)[];
  /** The access units as encoded (video elementary stream). */
  units: Buffer[];
}

export function hikPs(o: HikPsOptions): HikPs {
  const random = seededRandom(o.seed ?? 1);
  const codec = o.codec ?? "h264";
  const keyEvery = o.keyEvery ?? 25;
  const frameBytes = o.frameBytes ?? 2000;
  const units = Array.from({ length: o.frames }, (_, f) =>
    accessUnit(random, codec, f % keyEvery === 0, f % keyEvery === 0 ? frameBytes * 4 : frameBytes),
  );
  const audio =
    o.audioType === undefined
      ? undefined
      : {
          type: o.audioType,
          frames: units.map((_, f) => (o.audioPayload ? o.audioPayload(f) : body(random, 160))),
        };
  return psFromUnits(units, {
    codec,
    keyframes: units.map((_, f) => f % keyEvery === 0),
    audio,
    pts0: o.pts0,
  });
}

export interface PsFromUnitsOptions {
  codec?: Codec;
  /** Which units are keyframes (system header + PSM before them). */
  keyframes: boolean[];
  /** An audio PES after every other frame (odd frames), in a pack of its own. */
  audio?: { type: number; frames: Buffer[] } | undefined;
  pts0?: number | undefined;
}

/** Wraps access units in packs the way a Hikvision device does (ehome-2.0 §4.1). */
export function psFromUnits(units: Buffer[], o: PsFromUnitsOptions): HikPs {
  const codec = o.codec ?? "h264";
  const pts0 = o.pts0 ?? 90_000;
  const streams = [{ type: codec === "h264" ? 0x1b : 0x24, id: 0xe0 }];
  if (o.audio) streams.push({ type: o.audio.type, id: 0xc0 });
  const r: HikPs = { ps: Buffer.alloc(0), packs: [], keyframes: [], pts: [], units };
  units.forEach((au, f) => {
    const key = o.keyframes[f] === true;
    const pts = pts0 + 3600 * f;
    const stuffing = Buffer.from([0xff, 0xff, 0x00, 0x7d, 0x49, f & 0xff]);
    const parts = [packHeader(pts - 3600, 50_000, stuffing)];
    if (key) parts.push(systemHeader(), psm(streams));
    for (let at = 0; at < au.length; at += 65_000) {
      parts.push(pesPacket(0xe0, au.subarray(at, at + 65_000), at === 0 ? pts : undefined));
    }
    r.packs.push(Buffer.concat(parts));
    r.keyframes.push(key);
    r.pts.push(pts);
    const a = o.audio?.frames[f];
    if (a !== undefined && f % 2 === 1) {
      r.packs.push(
        Buffer.concat([packHeader(pts - 3600, 50_000, stuffing), pesPacket(0xc0, a, pts)]),
      );
      r.keyframes.push(false);
      r.pts.push(undefined);
    }
  });
  r.ps = Buffer.concat(r.packs);
  return r;
}

/** Splits an H.264 Annex B elementary stream into access units (AUD/SPS/PPS/SEI or first slice). */
export function h264AccessUnits(es: Buffer): { units: Buffer[]; keyframes: boolean[] } {
  const starts: number[] = [];
  for (let q = es.indexOf(SC3); q >= 0; q = es.indexOf(SC3, q + 3)) starts.push(q);
  const units: Buffer[] = [];
  const keyframes: boolean[] = [];
  let auStart = 0;
  let sawSlice = false;
  let key = false;
  for (const q of starts) {
    const type = es[q + 3]! & 0x1f;
    const firstSlice = (type === 1 || type === 5) && (es[q + 4]! & 0x80) !== 0;
    const begins = type === 9 || type === 7 || type === 8 || type === 6 || firstSlice;
    if (begins && sawSlice) {
      const at = q > 0 && es[q - 1] === 0 ? q - 1 : q;
      units.push(es.subarray(auStart, at));
      keyframes.push(key);
      auStart = at;
      sawSlice = false;
      key = false;
    }
    if (type === 1 || type === 5) sawSlice = true;
    if (type === 5) key = true;
  }
  units.push(es.subarray(auStart));
  keyframes.push(key);
  return { units, keyframes };
}

/** Splits an H.265 Annex B elementary stream into access units (AUD/VPS/SPS/PPS/SEI or first slice). */
export function h265AccessUnits(es: Buffer): { units: Buffer[]; keyframes: boolean[] } {
  const units: Buffer[] = [];
  const keyframes: boolean[] = [];
  let auStart = 0;
  let sawSlice = false;
  let key = false;
  for (let q = es.indexOf(SC3); q >= 0; q = es.indexOf(SC3, q + 3)) {
    const type = (es[q + 3]! >> 1) & 0x3f;
    const vcl = type < 32;
    const firstSlice = vcl && (es[q + 5]! & 0x80) !== 0;
    const begins = (type >= 32 && type <= 35) || type === 39 || firstSlice;
    if (begins && sawSlice) {
      const at = q > 0 && es[q - 1] === 0 ? q - 1 : q;
      units.push(es.subarray(auStart, at));
      keyframes.push(key);
      auStart = at;
      sawSlice = false;
      key = false;
    }
    if (vcl) sawSlice = true;
    if (type >= 16 && type <= 21) key = true;
  }
  units.push(es.subarray(auStart));
  keyframes.push(key);
  return { units, keyframes };
}

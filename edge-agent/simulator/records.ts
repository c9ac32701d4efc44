import { formatDeviceTime } from "./handlers/clock.ts";
import { buildPs, packSizes } from "./media-ps.ts";
import type { MediaFixture } from "./media-source.ts";

/**
 * A simulated device's recordings (ehome-2.0 §2.5): on every channel, one record file per hour of
 * device-local time, starting on the hour and lasting `recordSeconds`. Its content is the `main`
 * fixture looped from its first IDR, packed as MPEG-PS (media-ps.ts), so a file's size is exactly
 * the bytes DOWNLOAD pushes and `recordPs` rebuilds them. Everything is a function of the channel,
 * the hour and the options: no storage, and the same list on every run.
 */

export const RECORD_PERIOD_MS = 3_600_000;
/** Most files a search walks (StartIdx beyond this lists nothing). */
export const MAX_LISTED = 10_000;
/** Most record files one time-range playback spans. */
export const MAX_PLAYBACK_RECORDS = 48;

export interface RecordInfo {
  fileName: string;
  channel: number;
  /** Device-local epoch ms (local fields read as UTC, handlers/clock.ts). */
  startMs: number;
  endMs: number;
  frames: number;
  sizeBytes: number;
}

/**
 * What a playback or download sends, frame by frame: entry i shows record frame `recFrame[i]` of
 * the record starting at `recStart[i]`; the fixture frame is `recFrame[i] % fixture.frames.length`
 * and the PTS position is i.
 */
export interface MediaPlan {
  readonly length: number;
  readonly recFrame: Int32Array;
  readonly recStart: Float64Array;
  /** Plan indexes where a GOP starts (an IDR), ascending; the first is 0. */
  readonly gopStarts: readonly number[];
}

export interface RecordStore {
  readonly recordSeconds: number;
  readonly fixture: MediaFixture;
  /** The record of this channel in the hour slot starting at `slotMs`. */
  record(channel: number, slotMs: number): RecordInfo;
  /** A file name as listed; undefined when it names no record of a channel in 1..channels. */
  byName(fileName: string, channels: number): RecordInfo | undefined;
  /** Records overlapping [fromMs, toMs], oldest first, from `startIdx`, at most `limit`. */
  list(
    channel: number,
    fromMs: number,
    toMs: number,
    startIdx: number,
    limit: number,
  ): RecordInfo[];
  /** The file's bytes: what DOWNLOAD pushes. */
  ps(record: RecordInfo): Buffer;
  /** Every frame of one file. */
  planForFile(record: RecordInfo): MediaPlan;
  /**
   * The recorded frames between two device-local times, over consecutive files, each cut starting
   * at the IDR at or before the range start; undefined when no record overlaps.
   */
  planForRange(channel: number, fromMs: number, toMs: number): MediaPlan | undefined;
}

export function recordName(channel: number, slotMs: number): string {
  // File names look like ch0002_00000000009000000 (ehome-2.0 §2.5): channel, then the hour index.
  return `ch${String(channel).padStart(4, "0")}_${String(Math.floor(slotMs / RECORD_PERIOD_MS)).padStart(17, "0")}`;
}

/** `<fileName> <startDate> <startTime> <endDate> <endTime> <sizeBytes> <flag>` (ehome-2.0 §2.5). */
export function recordLine(r: RecordInfo): string {
  return `${r.fileName} ${formatDeviceTime(r.startMs)} ${formatDeviceTime(r.endMs)} ${r.sizeBytes} 0`;
}

export interface RecordStoreOptions {
  recordSeconds: number;
  /** G.711 silence in the PS (media-ps.ts). */
  audio: boolean;
}

export function createRecordStore(fixture: MediaFixture, options: RecordStoreOptions): RecordStore {
  const psOptions = { audio: options.audio };
  const sizes = packSizes(fixture, psOptions);
  const n = fixture.frames.length;
  const frameMs = 1000 / fixture.fps;
  const durationMs = options.recordSeconds * 1000;
  const frames = Math.round(options.recordSeconds * fixture.fps);
  let sizeBytes = 0;
  for (let i = 0; i < frames; i++) sizeBytes += sizes[i % n]!;
  const isIdr = (recFrame: number) => fixture.frames[recFrame % n]!.idr;

  const record = (channel: number, slotMs: number): RecordInfo => ({
    fileName: recordName(channel, slotMs),
    channel,
    startMs: slotMs,
    endMs: slotMs + durationMs,
    frames,
    sizeBytes,
  });

  const firstSlot = (fromMs: number) => {
    const slot = Math.floor(fromMs / RECORD_PERIOD_MS) * RECORD_PERIOD_MS;
    return slot + durationMs <= fromMs ? slot + RECORD_PERIOD_MS : slot;
  };

  const plan = (segments: Array<{ start: number; from: number; to: number }>): MediaPlan => {
    const length = segments.reduce((s, g) => s + (g.to - g.from), 0);
    const recFrame = new Int32Array(length);
    const recStart = new Float64Array(length);
    const gopStarts: number[] = [];
    let i = 0;
    for (const g of segments) {
      for (let f = g.from; f < g.to; f++, i++) {
        recFrame[i] = f;
        recStart[i] = g.start;
        if (isIdr(f)) gopStarts.push(i);
      }
    }
    return { length, recFrame, recStart, gopStarts };
  };

  return {
    recordSeconds: options.recordSeconds,
    fixture,
    record,
    byName(fileName, channels) {
      const m = /^ch(\d{4})_(\d{17})$/.exec(fileName);
      if (!m) return undefined;
      const channel = Number(m[1]);
      const slotMs = Number(m[2]) * RECORD_PERIOD_MS;
      if (channel < 1 || channel > channels || !Number.isSafeInteger(slotMs)) return undefined;
      if (slotMs > 8.64e15) return undefined;
      return record(channel, slotMs);
    },
    list(channel, fromMs, toMs, startIdx, limit) {
      const out: RecordInfo[] = [];
      const first = firstSlot(fromMs);
      for (let i = startIdx; out.length < limit && i < MAX_LISTED; i++) {
        const slot = first + i * RECORD_PERIOD_MS;
        if (slot > toMs) break;
        out.push(record(channel, slot));
      }
      return out;
    },
    ps: () => buildPs(fixture, { frames, ...psOptions }),
    planForFile: (r) => plan([{ start: r.startMs, from: 0, to: frames }]),
    planForRange(_channel, fromMs, toMs) {
      const segments: Array<{ start: number; from: number; to: number }> = [];
      for (
        let slot = firstSlot(fromMs);
        slot <= toMs && segments.length < MAX_PLAYBACK_RECORDS;
        slot += RECORD_PERIOD_MS
      ) {
        let from = Math.max(0, Math.floor((fromMs - slot) / frameMs));
        while (from > 0 && !isIdr(from)) from--;
        const to = Math.min(frames, Math.ceil((toMs - slot) / frameMs));
        if (to > from) segments.push({ start: slot, from, to });
      }
      return segments.length > 0 ? plan(segments) : undefined;
    },
  };
}

import { formatDeviceTime } from "./handlers/clock.ts";

/**
 * The pictures a simulated device keeps on its disk (ehome-2.0 §8 rows QUERYPICTURES and
 * UPLOADPIC): one picture every 4 hours on every channel, from the epoch up to the device's own
 * clock. Nothing is stored: a picture's name, time, size and bytes all follow from its channel and
 * slot, so a search lists exactly the files an upload can send, byte for byte, and a test can
 * compute the bytes it expects (`storedPictureBytes`).
 */

export const STORED_PICTURE_PERIOD_MS = 4 * 3_600_000;

export interface StoredPictureFile {
  channel: number;
  slot: number;
  fileName: string;
  /** Device local time, `YYYY-MM-DD HH:MM:SS`. */
  time: string;
  size: number;
}

/** `ch0001_00000000000012345`: the §2.5 record-name shape, with the picture's slot number. */
export function storedPictureName(channel: number, slot: number): string {
  return `ch${String(channel).padStart(4, "0")}_${String(slot).padStart(17, "0")}`;
}

export function storedPicture(channel: number, slot: number): StoredPictureFile {
  return {
    channel,
    slot,
    fileName: storedPictureName(channel, slot),
    time: formatDeviceTime(slot * STORED_PICTURE_PERIOD_MS),
    // 20-60 KB, varying by channel and slot.
    size: 20_000 + ((slot * 7_919 + channel * 104_729) % 40_000),
  };
}

/** The picture a file name names, when it is one of this device's (channel in range). */
export function parseStoredPictureName(
  fileName: string,
  channels: number,
): StoredPictureFile | undefined {
  const m = /^ch(\d{4})_(\d{17})$/.exec(fileName);
  if (!m) return undefined;
  const channel = Number(m[1]);
  const slot = Number(m[2]);
  if (channel < 1 || channel > channels || !Number.isSafeInteger(slot)) return undefined;
  return storedPicture(channel, slot);
}

/** The pictures taken in [fromMs, toMs] (device local epoch), capped at the device's `nowMs`. */
export function storedPicturesBetween(
  channel: number,
  fromMs: number,
  toMs: number,
  nowMs: number,
  startIdx: number,
  count: number,
): StoredPictureFile[] {
  const last = Math.min(toMs, nowMs);
  const first = Math.ceil(Math.max(0, fromMs) / STORED_PICTURE_PERIOD_MS);
  const out: StoredPictureFile[] = [];
  for (let slot = first + startIdx; out.length < count; slot++) {
    if (slot * STORED_PICTURE_PERIOD_MS > last) break;
    out.push(storedPicture(channel, slot));
  }
  return out;
}

/**
 * The file's bytes: a JPEG start (SOI + JFIF APP0), a deterministic filler from the channel and
 * slot, and an EOI, `size` bytes in all.
 */
export function storedPictureBytes(file: Pick<StoredPictureFile, "channel" | "slot" | "size">) {
  const head = Buffer.from("ffd8ffe000104a46494600010100000100010000", "hex");
  const bytes = Buffer.alloc(file.size);
  head.copy(bytes, 0);
  let x = (file.slot * 2_654_435_761 + file.channel * 40_503 + 1) >>> 0 || 1;
  for (let i = head.length; i < file.size - 2; i++) {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  bytes[file.size - 2] = 0xff;
  bytes[file.size - 1] = 0xd9;
  return bytes;
}

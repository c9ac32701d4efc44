import { z } from "zod";

/**
 * GPS positions (the MESSAGE module, ehome-2.0 §2.9): what the agent makes of a device's `GPS`
 * report, how it batches them to the device-data queue (`QUEUES.deviceData`), and the item the
 * consumer stores in the positions table (`TABLES.positions`).
 */

/** ehome-2.0 §2.9 (A): coordinates are integers in 1/100 arc-second (degrees × 360000). */
export const ARC_CENTISECONDS_PER_DEGREE = 360_000;
/** Decimal places kept: 1e-6° ≈ 0.1 m, finer than the 1/100″ (≈ 0.3 m) of the wire value. */
const DEGREE_DECIMALS = 6;
/** ehome-2.0 §2.9: `Speed` is in cm/h; 100 000 cm/h = 1 km/h. */
export const CM_PER_HOUR_PER_KMH = 100_000;
/** Most positions in one device-data message (≈ 300 bytes each, far below SQS's 256 KiB). */
export const MAX_POSITIONS_PER_MESSAGE = 100;

function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

/**
 * 1/100 arc-second + hemisphere → signed decimal degrees, E and N positive, W and S negative
 * (ehome-2.0 §2.9). `undefined` for a value that is not an integer or is out of range for `axis`.
 * Fixture (FE doc): 43713595 E → 121.426653°.
 */
export function arcCentisecondsToDegrees(
  value: number | string,
  hemisphere: string,
  axis: "longitude" | "latitude",
): number | undefined {
  const text = String(value).trim();
  if (!/^-?\d{1,10}$/.test(text)) return undefined;
  const raw = Number(text);
  const h = hemisphere.trim().toUpperCase();
  const negative = axis === "longitude" ? h === "W" : h === "S";
  const positive = axis === "longitude" ? h === "E" : h === "N";
  if (!negative && !positive) return undefined;
  const degrees = Math.abs(raw) / ARC_CENTISECONDS_PER_DEGREE;
  if (degrees > (axis === "longitude" ? 180 : 90)) return undefined;
  const signed = round(degrees, DEGREE_DECIMALS);
  return negative && signed !== 0 ? -signed : signed;
}

/** `+08:00`, `+0800`, `-05:30`, `GMT+08:00`, `UTC-3`, `8` → minutes east of UTC. */
export function parseZoneOffset(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(?:GMT|UTC)?\s*([+-]?)(\d{1,2})(?::?(\d{2}))?$/i.exec(text.trim());
  if (!m) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3] ?? 0);
  if (minutes > 14 * 60) return undefined;
  return m[1] === "-" ? -minutes : minutes;
}

/**
 * Device-local `YYYY-MM-DD HH:MM:SS` (also with `T`) in a zone → epoch ms, or `undefined` when the
 * text is not a real date. Without a usable zone the time is read as UTC (`zoneKnown` false).
 */
export function deviceTimeToEpoch(
  time: string | undefined,
  timeZone: string | undefined,
): { epochMs: number; zoneKnown: boolean } | undefined {
  if (time === undefined) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/.exec(time.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const local = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(local);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    return undefined;
  }
  const offset = parseZoneOffset(timeZone);
  return { epochMs: local - (offset ?? 0) * 60_000, zoneKnown: offset !== undefined };
}

/** One GPS fix as the platform keeps it. */
export const Position = z.object({
  /** UTC instant of the fix (ISO 8601), from the device's `Time` and `TimeZone`. */
  time: z.iso.datetime(),
  /** `Time` as the device wrote it (its local time). */
  localTime: z.string().max(32).optional(),
  /** `TimeZone` as the device wrote it; absent or unparseable → `time` read `Time` as UTC. */
  timeZone: z.string().max(16).optional(),
  /** The report's `Sequence`: with `time`, the idempotency key of the stored item. */
  sequence: z.number().int().min(0),
  /** Signed decimal degrees, E positive. */
  longitude: z.number().min(-180).max(180),
  /** Signed decimal degrees, N positive. */
  latitude: z.number().min(-90).max(90),
  /** Degrees clockwise from north (`Direction`, 0 = north). */
  direction: z.number().optional(),
  /** km/h (`Speed` is cm/h on the wire). */
  speedKmh: z.number().min(0).optional(),
  satellites: z.number().int().min(0).optional(),
  precision: z.number().optional(),
  /** `Height` as sent (metres in every capture seen). */
  height: z.number().optional(),
  /** The report came with `RetransFlag` 1 (a resent copy). */
  retransmitted: z.boolean().optional(),
  /** When the agent received it (ISO 8601). */
  receivedAt: z.iso.datetime(),
});
export type Position = z.infer<typeof Position>;

/** Agent → device-data function: one device's positions, oldest first. */
export const PositionsMessage = z.object({
  type: z.literal("positions"),
  eventId: z.string().min(1).max(64),
  agentId: z.string().min(1).max(128),
  deviceId: z.string().min(1).max(256),
  positions: z.array(Position).min(1).max(MAX_POSITIONS_PER_MESSAGE),
});
export type PositionsMessage = z.infer<typeof PositionsMessage>;

const pad = (n: number) => String(n).padStart(10, "0");

/**
 * Sort key of a stored position: `<time>#<sequence>` (zero-padded), so a track reads in time order
 * and a resent or redelivered report (same DeviceID, Time and Sequence) maps to the same item.
 */
export function positionSortKey(time: string, sequence: number): string {
  return `${time}#${pad(sequence)}`;
}

import { randomUUID } from "node:crypto";
import type { DeviceDataMessage, PassthroughMessage } from "../../lib/contracts/passthrough.ts";
import {
  arcCentisecondsToDegrees,
  CM_PER_HOUR_PER_KMH,
  deviceTimeToEpoch,
  MAX_POSITIONS_PER_MESSAGE,
  type Position,
} from "../../lib/contracts/positions.ts";
import { createRateLimiter, type Logger, silentLogger } from "../log.ts";
import type { DeviceReport, EventSink, ReportSink } from "../ports.ts";
import { type CatalogueView, DEFAULT_VIEW } from "../signalling/catalogue.ts";
import { readFields } from "../signalling/codec/index.ts";

/**
 * GPS and passthrough reports → the device-data queue (issue 8; `QUEUES.deviceData`).
 *
 * - `gps` (ehome-2.0 §2.9): converted to a contracts `Position` (signed decimal degrees, km/h, UTC
 *   time from `Time` + `TimeZone`) and batched per device: one `PositionsMessage` per device every
 *   `lingerMs`, or as soon as `maxPositions` are held. The agent core has already answered the
 *   device and dropped copies with the same (DeviceID, Sequence); copies inside one batch with the
 *   same Time and Sequence are dropped here too, and the consumer's key makes the rest idempotent.
 * - `transparent` (ehome-2.0 §8 TRANSPARENT from the device, already answered 200): one
 *   `PassthroughMessage` each.
 *
 * Other report kinds go to `next` unchanged.
 */

export interface DeviceDataReporterConfig {
  agentId: string;
  /** How long positions wait for company before they are sent. Default 1000 ms. */
  lingerMs?: number;
  /** Positions per message, 1–100. Default 100. */
  maxPositions?: number;
  /** Positions held across all devices; beyond it new ones are dropped (counted). Default 100 000. */
  maxHeld?: number;
}

export interface DeviceDataReporterDeps {
  sink: EventSink<DeviceDataMessage>;
  viewOf?(deviceId: string): CatalogueView | undefined;
  next?: ReportSink;
  uuid?: () => string;
  log?: Logger;
  setTimer?: (fn: () => void, ms: number) => { unref?(): void };
  clearTimer?: (timer: unknown) => void;
}

export interface DeviceDataReporterCounters {
  positions: number;
  positionMessages: number;
  passthrough: number;
  /** GPS reports without usable coordinates. */
  invalid: number;
  /** Copies (same Time and Sequence) dropped inside a batch. */
  duplicates: number;
  /** Dropped because `maxHeld` positions were waiting. */
  overflow: number;
  sinkErrors: number;
}

export interface DeviceDataReporter extends ReportSink {
  counters(): DeviceDataReporterCounters;
  /** Sends what is held now (tests, shutdown). */
  flush(): void;
  /** Flushes, stops the timer. Idempotent. */
  close(): void;
}

const num = (s: string | undefined): number | undefined => {
  if (s === undefined) return undefined;
  const t = s.trim();
  if (!/^-?\d{1,12}(\.\d{1,6})?$/.test(t)) return undefined;
  return Number(t);
};

/** A GPS report's Params (ehome-2.0 §2.9) → a Position, or undefined without coordinates. */
export function positionOf(report: DeviceReport, view: CatalogueView): Position | undefined {
  const f = readFields(report.params, view.commands.gps.params);
  const longitude =
    f.longitude === undefined
      ? undefined
      : arcCentisecondsToDegrees(f.longitude, f.divisionEw ?? "", "longitude");
  const latitude =
    f.latitude === undefined
      ? undefined
      : arcCentisecondsToDegrees(f.latitude, f.divisionNs ?? "", "latitude");
  if (longitude === undefined || latitude === undefined) return undefined;
  const receivedAt = new Date(report.receivedAt).toISOString();
  const time = deviceTimeToEpoch(f.time, f.timeZone);
  const position: Position = {
    time: time ? new Date(time.epochMs).toISOString() : receivedAt,
    sequence: report.sequence,
    longitude,
    latitude,
    receivedAt,
  };
  if (f.time !== undefined) position.localTime = f.time.trim().slice(0, 32);
  if (f.timeZone !== undefined && time?.zoneKnown) position.timeZone = f.timeZone.trim();
  const direction = num(f.direction);
  if (direction !== undefined) position.direction = direction;
  const speed = num(f.speed);
  if (speed !== undefined && speed >= 0) {
    position.speedKmh = Math.round((speed / CM_PER_HOUR_PER_KMH) * 1000) / 1000;
  }
  const satellites = num(f.satellites);
  if (satellites !== undefined && Number.isInteger(satellites) && satellites >= 0) {
    position.satellites = satellites;
  }
  const precision = num(f.precision);
  if (precision !== undefined) position.precision = precision;
  const height = num(f.height);
  if (height !== undefined) position.height = height;
  if (f.retransFlag?.trim() === "1") position.retransmitted = true;
  return position;
}

export function createDeviceDataReporter(
  config: DeviceDataReporterConfig,
  deps: DeviceDataReporterDeps,
): DeviceDataReporter {
  const lingerMs = config.lingerMs ?? 1000;
  const maxPositions = Math.min(
    Math.max(config.maxPositions ?? MAX_POSITIONS_PER_MESSAGE, 1),
    MAX_POSITIONS_PER_MESSAGE,
  );
  const maxHeld = config.maxHeld ?? 100_000;
  const uuid = deps.uuid ?? randomUUID;
  const log = deps.log ?? silentLogger;
  const limiter = createRateLimiter({ intervalMs: 60_000 });
  const setTimer = deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = deps.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
  const c: DeviceDataReporterCounters = {
    positions: 0,
    positionMessages: 0,
    passthrough: 0,
    invalid: 0,
    duplicates: 0,
    overflow: 0,
    sinkErrors: 0,
  };
  /** Per device: positions waiting, and the keys among them. */
  const held = new Map<string, { positions: Position[]; keys: Set<string> }>();
  let heldCount = 0;
  let timer: unknown;
  let closed = false;

  const failed = (err: unknown) => {
    c.sinkErrors++;
    if (limiter.allow("sink").allowed) log.error("device-data sink failed", { err });
  };
  const emit = (message: DeviceDataMessage) => {
    try {
      const r = deps.sink.emit(message);
      if (r instanceof Promise) r.catch(failed);
    } catch (err) {
      failed(err);
    }
  };
  const send = (deviceId: string) => {
    const entry = held.get(deviceId);
    if (!entry) return;
    held.delete(deviceId);
    heldCount -= entry.positions.length;
    c.positionMessages++;
    emit({
      type: "positions",
      eventId: uuid(),
      agentId: config.agentId,
      deviceId,
      positions: entry.positions,
    });
  };
  const flush = () => {
    if (timer !== undefined) clearTimer(timer);
    timer = undefined;
    for (const deviceId of [...held.keys()]) send(deviceId);
  };
  const arm = () => {
    if (timer !== undefined || closed) return;
    const t = setTimer(() => {
      timer = undefined;
      flush();
    }, lingerMs);
    t.unref?.();
    timer = t;
  };

  const gps = (report: DeviceReport) => {
    const view = deps.viewOf?.(report.deviceId) ?? DEFAULT_VIEW;
    const position = positionOf(report, view);
    if (!position) {
      c.invalid++;
      if (limiter.allow("invalid").allowed) {
        log.warn("GPS report without usable coordinates", { deviceId: report.deviceId });
      }
      return;
    }
    let entry = held.get(report.deviceId);
    const key = `${position.time}#${position.sequence}`;
    if (entry?.keys.has(key)) {
      c.duplicates++;
      return;
    }
    if (heldCount >= maxHeld) {
      c.overflow++;
      if (limiter.allow("overflow").allowed) log.warn("GPS positions dropped: too many held");
      return;
    }
    if (!entry) {
      entry = { positions: [], keys: new Set() };
      held.set(report.deviceId, entry);
    }
    entry.positions.push(position);
    entry.keys.add(key);
    heldCount++;
    c.positions++;
    if (entry.positions.length >= maxPositions || closed) send(report.deviceId);
    else arm();
  };

  const transparent = (report: DeviceReport) => {
    const view = deps.viewOf?.(report.deviceId) ?? DEFAULT_VIEW;
    const f = readFields(report.params, view.commands.transparent.params);
    const channel = num(f.channel);
    const message: PassthroughMessage = {
      type: "passthrough",
      eventId: uuid(),
      agentId: config.agentId,
      deviceId: report.deviceId,
      sequence: report.sequence,
      data: (f.data ?? "").trim().slice(0, 4096),
      receivedAt: new Date(report.receivedAt).toISOString(),
    };
    if (channel !== undefined && Number.isInteger(channel) && channel >= 0) {
      message.channel = channel;
    }
    c.passthrough++;
    emit(message);
  };

  return {
    report(report) {
      if (report.kind === "gps") return gps(report);
      if (report.kind === "transparent") return transparent(report);
      return deps.next?.report(report);
    },
    counters: () => ({ ...c }),
    flush,
    close() {
      if (closed) return;
      closed = true;
      flush();
    },
  };
}

import { randomUUID } from "node:crypto";
import { type AlarmEvent, type AlarmQueueMessage, MediaId } from "../../lib/contracts/alarms.ts";
import { createRateLimiter, type Logger, silentLogger } from "../log.ts";
import type { DeviceReport, EventSink, ReportSink } from "../ports.ts";
import { type CatalogueView, COMMANDS, DEFAULT_VIEW } from "../signalling/catalogue.ts";
import { childTexts, readFields, type XmlElement } from "../signalling/codec/index.ts";

/**
 * Device reports of kind `alarm` → one contracts `AlarmEvent` each, on the alarm-events queue
 * (ehome-2.0 §5.1 fields, §8 ALARM row). The agent core already answered the device and dropped
 * copies with the same (DeviceID, Sequence). This adds the other half of the §8 rule: a copy the
 * device re-sent under a new Sequence with `RetransFlag` 1 is recorded once, by its content
 * (type, action, channels, time, media ids), remembered per device for `retransWindowMs`.
 * Other report kinds go to `next` unchanged.
 */

export interface AlarmReporterConfig {
  agentId: string;
  /** How long an alarm's content is remembered for RetransFlag de-duplication. Default 10 min. */
  retransWindowMs?: number;
  /** Fingerprints remembered in all (oldest forgotten first). Default 100 000. */
  maxRemembered?: number;
}

export interface AlarmReporterDeps {
  sink: EventSink<AlarmQueueMessage>;
  /** The catalogue view of a device (its dialect); default view when unknown. */
  viewOf?(deviceId: string): CatalogueView | undefined;
  /** Where non-alarm reports go (GPS, STATUS, …). */
  next?: ReportSink;
  uuid?: () => string;
  log?: Logger;
}

export interface AlarmReporterCounters {
  alarms: number;
  retransmittedDuplicates: number;
  invalid: number;
  sinkErrors: number;
}

export interface AlarmReporter extends ReportSink {
  counters(): AlarmReporterCounters;
}

const int = (s: string | undefined): number | undefined => {
  if (s === undefined || !/^-?\d{1,9}$/.test(s.trim())) return undefined;
  return Number(s.trim());
};

/** Media ids in order, without repeats or invalid ones. */
function mediaIds(params: XmlElement, element: string): string[] {
  const out: string[] = [];
  for (const raw of childTexts(params, element)) {
    const id = raw.trim();
    if (MediaId.safeParse(id).success && !out.includes(id)) out.push(id);
    if (out.length === 64) break;
  }
  return out;
}

/** Reads the ALARM Params (ehome-2.0 §8) into an AlarmEvent, or undefined when unusable. */
export function alarmEventOf(
  report: DeviceReport,
  view: CatalogueView,
  ids: { eventId: string; agentId: string },
): AlarmEvent | undefined {
  const fields = view.commands.alarm.params;
  const f = readFields(report.params, fields);
  const alarmType = int(f.alarmType);
  if (alarmType === undefined || alarmType < 0) return undefined;
  const nonNegative = (v: number | undefined) => (v !== undefined && v >= 0 ? v : undefined);
  const within = (v: number | undefined, max: number) =>
    v !== undefined && Math.abs(v) <= max ? v : undefined;
  const event: AlarmEvent = {
    type: "alarm",
    eventId: ids.eventId,
    agentId: ids.agentId,
    deviceId: report.deviceId,
    sequence: report.sequence,
    receivedAt: new Date(report.receivedAt).toISOString(),
    alarmType,
    alarmAction: int(f.alarmAction) === 1 ? "stop" : "start",
    picIds: mediaIds(report.params, fields.picId ?? COMMANDS.alarm.params.picId),
    videoIds: mediaIds(report.params, fields.videoId ?? COMMANDS.alarm.params.videoId),
    retransmitted: int(f.retransFlag) === 1,
  };
  const optional = {
    videoChannel: nonNegative(int(f.videoChannel)),
    alarmInChannel: nonNegative(int(f.alarmInChannel)),
    diskNumber: nonNegative(int(f.diskNumber)),
    alarmTime: f.alarmTime?.trim().slice(0, 32) || undefined,
    timeDiffH: within(int(f.timeDiffH), 14),
    timeDiffM: within(int(f.timeDiffM), 59),
    remark: f.remark?.slice(0, 1024) || undefined,
  };
  for (const [k, v] of Object.entries(optional)) {
    if (v !== undefined) (event as Record<string, unknown>)[k] = v;
  }
  return event;
}

/** What makes two copies of one alarm the same alarm (everything but Sequence and RetransFlag). */
function fingerprint(e: AlarmEvent): string {
  return JSON.stringify([
    e.deviceId,
    e.alarmType,
    e.alarmAction,
    e.videoChannel,
    e.alarmInChannel,
    e.diskNumber,
    e.alarmTime,
    e.picIds,
    e.videoIds,
  ]);
}

export function createAlarmReporter(
  config: AlarmReporterConfig,
  deps: AlarmReporterDeps,
): AlarmReporter {
  const windowMs = config.retransWindowMs ?? 10 * 60_000;
  const maxRemembered = config.maxRemembered ?? 100_000;
  const uuid = deps.uuid ?? randomUUID;
  const log = deps.log ?? silentLogger;
  const limiter = createRateLimiter({ intervalMs: 60_000 });
  // Insertion-ordered: the oldest fingerprint is first, so expiry and the cap trim from the front.
  const seen = new Map<string, number>();
  const c: AlarmReporterCounters = {
    alarms: 0,
    retransmittedDuplicates: 0,
    invalid: 0,
    sinkErrors: 0,
  };

  const remember = (key: string, now: number): boolean => {
    for (const [k, at] of seen) {
      if (now - at <= windowMs && seen.size < maxRemembered) break;
      seen.delete(k);
    }
    if (seen.has(key)) return false;
    seen.set(key, now);
    return true;
  };

  const failed = (err: unknown) => {
    c.sinkErrors++;
    const { allowed } = limiter.allow("sink");
    if (allowed) log.error("alarm event sink failed", { err });
  };

  return {
    report(report) {
      if (report.kind !== "alarm") return deps.next?.report(report);
      const view = deps.viewOf?.(report.deviceId) ?? DEFAULT_VIEW;
      const event = alarmEventOf(report, view, { eventId: uuid(), agentId: config.agentId });
      if (!event) {
        c.invalid++;
        const { allowed } = limiter.allow("invalid");
        if (allowed) log.warn("alarm without a usable AlarmType", { deviceId: report.deviceId });
        return;
      }
      // ehome-2.0 §8 ALARM row: RetransFlag 1 copies are recorded once.
      const fresh = remember(fingerprint(event), report.receivedAt);
      if (!fresh && event.retransmitted) {
        c.retransmittedDuplicates++;
        return;
      }
      c.alarms++;
      try {
        const r = deps.sink.emit(event);
        if (r instanceof Promise) r.catch(failed);
      } catch (err) {
        failed(err);
      }
    },
    counters: () => ({ ...c }),
  };
}

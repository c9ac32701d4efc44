import {
  DeviceUpgradeStatus,
  type FirmwareTokenClaims,
  peekFirmwareTokenClaims,
  type UpgradeProgressEvent,
} from "../../lib/contracts/upgrades.ts";
import { createRateLimiter, type Logger, silentLogger } from "../log.ts";
import type { DeviceReport, ReportSink } from "../ports.ts";
import { DEFAULT_VIEW } from "../signalling/catalogue.ts";
import { childText, readFields } from "../signalling/codec/index.ts";

/**
 * Upgrade progress seen by the agent (issue 6 item 5), as `UpgradeProgressEvent`s for the upgrades
 * function:
 *
 * - `bytes-served`: distinct bytes of the image the `/fw/` route sent per (device, campaign,
 *   attempt), the union of the ranges of all its requests (a resume re-sending an overlap counts
 *   once) — download progress even for devices that report nothing. At most one
 *   event per `bytesIntervalMs` per download while bytes flow, and one when each response ends.
 * - `device-status`: the device's optional `UPGRADESTATUS` reports (ehome-2.0 §8). The campaign is
 *   the one of the last `firmware-update` sent to the device, or of its last download.
 */

export interface UpgradeEventSink {
  emit(event: UpgradeProgressEvent): void;
}

export interface UpgradeProgressConfig {
  agentId: string;
  /** Minimum time between two bytes-served events of one download while it runs. Default 2 s. */
  bytesIntervalMs?: number;
  /** Downloads and devices remembered; the oldest are forgotten beyond it. Default 100 000. */
  maxTracked?: number;
}

export interface UpgradeProgressDeps {
  sink: UpgradeEventSink;
  log?: Logger;
  now?: () => number;
}

/** One `/fw/` response being streamed. */
export interface DownloadCounter {
  add(bytes: number): void;
  /** The response ended (complete or not). Idempotent. */
  end(reachedEnd: boolean): void;
}

export interface UpgradeProgressCounters {
  bytesEvents: number;
  statusEvents: number;
  /** UPGRADESTATUS reports of a device with no known campaign, or with an unknown Status. */
  statusDropped: number;
}

export interface UpgradeProgress extends ReportSink {
  /** A firmware-update is about to be sent with `token` (trusted: from the command queue). */
  sending(deviceId: string, token: string): void;
  /** A verified download of the object from byte `start` begins: counts what it sends. */
  download(claims: FirmwareTokenClaims, totalBytes: number, start?: number): DownloadCounter;
  /**
   * Handles `upgradeStatus` reports and upgrade-failed alarms (AlarmType 18); others are ignored.
   * Never throws.
   */
  report(report: DeviceReport): void;
  counters(): UpgradeProgressCounters;
  /** Flushes pending throttled events and stops timers. Idempotent. */
  close(): void;
}

interface Download {
  deviceId: string;
  campaignId: string;
  attempt: number | undefined;
  /** Byte ranges of the object served, [from, to); merged when emitted. */
  ranges: { from: number; to: number }[];
  totalBytes: number;
  reachedEnd: boolean;
  lastEmitAt: number;
  dirty: boolean;
  timer: NodeJS.Timeout | undefined;
  active: number;
}

const fields = DEFAULT_VIEW.commands.upgradeStatus.params;
/** `AlarmType` of the device's upgrade-failed alarm (issue 6). */
export const UPGRADE_FAILED_ALARM_TYPE = "18";

/** Sorted, disjoint ranges covering the same bytes. */
function merge(ranges: readonly { from: number; to: number }[]): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  for (const r of [...ranges].sort((a, b) => a.from - b.from)) {
    const last = out.at(-1);
    if (last && r.from <= last.to) last.to = Math.max(last.to, r.to);
    else out.push({ ...r });
  }
  return out;
}

function coverage(d: { ranges: readonly { from: number; to: number }[] }): number {
  return merge(d.ranges).reduce((n, r) => n + (r.to - r.from), 0);
}

export function createUpgradeProgress(
  config: UpgradeProgressConfig,
  deps: UpgradeProgressDeps,
): UpgradeProgress {
  const interval = config.bytesIntervalMs ?? 2000;
  const maxTracked = config.maxTracked ?? 100_000;
  const now = deps.now ?? Date.now;
  const log = deps.log ?? silentLogger;
  const limiter = createRateLimiter({ intervalMs: 60_000 });
  const logLimited = (key: string) => limiter.allow(key, now()).allowed;
  const downloads = new Map<string, Download>();
  const campaignOf = new Map<string, { campaignId: string; attempt: number | undefined }>();
  const c: UpgradeProgressCounters = { bytesEvents: 0, statusEvents: 0, statusDropped: 0 };
  let closed = false;

  const remember = <V>(map: Map<string, V>, key: string, value: V): void => {
    map.delete(key);
    map.set(key, value);
    if (map.size > maxTracked) {
      const oldest = map.keys().next().value as string;
      const d = map.get(oldest) as Download | undefined;
      if (d && typeof d === "object" && "timer" in d) clearTimeout(d.timer);
      map.delete(oldest);
    }
  };

  const emit = (event: UpgradeProgressEvent): void => {
    try {
      deps.sink.emit(event);
    } catch (err) {
      if (logLimited("upgrade-sink")) log.error("upgrade event sink failed", { err });
    }
  };

  const emitBytes = (d: Download): void => {
    clearTimeout(d.timer);
    d.timer = undefined;
    d.dirty = false;
    d.lastEmitAt = now();
    c.bytesEvents++;
    emit({
      kind: "bytes-served",
      deviceId: d.deviceId,
      campaignId: d.campaignId,
      ...(d.attempt === undefined ? {} : { attempt: d.attempt }),
      agentId: config.agentId,
      at: new Date(d.lastEmitAt).toISOString(),
      bytes: coverage(d),
      totalBytes: d.totalBytes,
      reachedEnd: d.reachedEnd,
    });
  };

  return {
    sending(deviceId, token) {
      const claims = peekFirmwareTokenClaims(token);
      if (claims && claims.deviceId === deviceId) {
        remember(campaignOf, deviceId, { campaignId: claims.campaignId, attempt: claims.attempt });
      }
    },

    download(claims, totalBytes, start = 0) {
      const key = `${claims.deviceId}\n${claims.campaignId}\n${claims.attempt ?? ""}`;
      remember(campaignOf, claims.deviceId, {
        campaignId: claims.campaignId,
        attempt: claims.attempt,
      });
      let d = downloads.get(key);
      if (!d) {
        d = {
          deviceId: claims.deviceId,
          campaignId: claims.campaignId,
          attempt: claims.attempt,
          ranges: [],
          totalBytes,
          reachedEnd: false,
          lastEmitAt: 0,
          dirty: false,
          timer: undefined,
          active: 0,
        };
      }
      remember(downloads, key, d);
      d.totalBytes = totalBytes;
      d.active++;
      const dl = d;
      // Bounded: a device resuming many times keeps its ranges merged (done ones only matter).
      if (dl.ranges.length >= 64 && dl.active === 1) dl.ranges = merge(dl.ranges);
      const range = { from: start, to: start };
      dl.ranges.push(range);
      let ended = false;
      return {
        add(bytes) {
          if (ended || bytes <= 0) return;
          range.to += bytes;
          dl.dirty = true;
          if (closed) return;
          const due = dl.lastEmitAt + interval - now();
          if (due <= 0) emitBytes(dl);
          else dl.timer ??= setTimeout(() => emitBytes(dl), due);
        },
        end(reachedEnd) {
          if (ended) return;
          ended = true;
          dl.active--;
          if (reachedEnd) dl.reachedEnd = true;
          emitBytes(dl);
        },
      };
    },

    report(r) {
      if (r.kind === "alarm") {
        // Issue 6: the upgrade-failed alarm (AlarmType 18) fails the device's upgrade like an
        // UPGRADESTATUS FAILED would; other alarms are not ours.
        const alarmType = childText(r.params, DEFAULT_VIEW.commands.alarm.params.alarmType!);
        const campaign = campaignOf.get(r.deviceId);
        if (alarmType?.trim() !== UPGRADE_FAILED_ALARM_TYPE || !campaign) return;
        c.statusEvents++;
        emit({
          kind: "device-status",
          deviceId: r.deviceId,
          campaignId: campaign.campaignId,
          ...(campaign.attempt === undefined ? {} : { attempt: campaign.attempt }),
          agentId: config.agentId,
          at: new Date(r.receivedAt).toISOString(),
          status: "FAILED",
          description: `upgrade-failed alarm (AlarmType ${UPGRADE_FAILED_ALARM_TYPE})`,
        });
        return;
      }
      if (r.kind !== "upgradeStatus") return;
      const f = readFields(r.params, fields);
      const status = DeviceUpgradeStatus.safeParse(f.status?.trim().toUpperCase());
      const campaign = campaignOf.get(r.deviceId);
      if (!status.success || !campaign) {
        c.statusDropped++;
        if (logLimited("upgrade-status-dropped")) {
          log.warn("UPGRADESTATUS without a known campaign or with an unknown Status", {
            deviceId: r.deviceId,
            status: f.status,
          });
        }
        return;
      }
      const percent = Number(f.percent);
      c.statusEvents++;
      emit({
        kind: "device-status",
        deviceId: r.deviceId,
        campaignId: campaign.campaignId,
        ...(campaign.attempt === undefined ? {} : { attempt: campaign.attempt }),
        agentId: config.agentId,
        at: new Date(r.receivedAt).toISOString(),
        status: status.data,
        ...(f.percent !== undefined && Number.isFinite(percent) && percent >= 0 && percent <= 100
          ? { percent }
          : {}),
        ...(f.description ? { description: f.description.slice(0, 256) } : {}),
      });
    },

    counters: () => ({ ...c }),

    close() {
      if (closed) return;
      closed = true;
      for (const d of downloads.values()) if (d.dirty) emitBytes(d);
      for (const d of downloads.values()) clearTimeout(d.timer);
    },
  };
}

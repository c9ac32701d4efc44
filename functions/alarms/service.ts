import type { AlarmEvent, MediaUploadedEvent } from "../../lib/contracts/alarms.ts";
import { ALARMS_LIST_SHARD, ALARMS_OPEN_SHARD, expiresAt } from "../../lib/contracts/tables.ts";
import type { Clock } from "../shared/clock.ts";
import type { Logger } from "../shared/logger.ts";
import type { AlarmItem, StoredObject } from "./items.ts";
import { alarmIdFor, expectedMediaKeys, isCaptureId, mediaKeyOf } from "./model.ts";
import type { AlarmsRepository } from "./repository.ts";

/**
 * Alarm/media correlation (ehome-2.0 §5.2; §8 ALARM, POST /pictures, POST /videos).
 *
 * Each picture or video of a device has one rendezvous item (`alarmMedia` table). An alarm adds
 * its id to the items of the media it names; an upload stores the object's location on its item.
 * Both are single-item atomic updates that return the item afterwards, so whichever comes second
 * sees both halves and attaches the object to the alarm: media before its alarm, alarm before its
 * media, and both at once all end with the object attached. Attaching removes the key from the
 * alarm's `missing` set under the condition that it is still there (applied once); the write that
 * empties the set is followed by `open|partial → complete`. Every step is idempotent, so a record
 * that fails half-way is simply retried (SQS redelivery) and picks up where it stopped.
 *
 * States: `open` until every expected item is attached (`complete`), or until the deadline
 * (`ALARM_MEDIA_DEADLINE_SECONDS` after the agent received the alarm), when the sweep moves it to
 * `partial` (readers see `partial` as soon as the deadline passes). Media arriving after the
 * deadline is still attached, and an alarm whose last missing item arrives late becomes
 * `complete`: the final state depends only on which media arrived, never on timing.
 */

export interface AlarmsConfig {
  /** An alarm still missing media this long after it was received is `partial`. */
  readonly mediaDeadlineSeconds: number;
  readonly alarmTtlSeconds: number;
  /** How long an upload waits on its rendezvous item for the alarm that names it. */
  readonly mediaTtlSeconds: number;
  /** Alarms moved per sweep run, at most. */
  readonly sweepLimit: number;
}

export const DEFAULT_ALARMS_CONFIG: AlarmsConfig = {
  mediaDeadlineSeconds: 120,
  alarmTtlSeconds: 90 * 24 * 3600,
  mediaTtlSeconds: 7 * 24 * 3600,
  sweepLimit: 5000,
};

export interface AlarmsServiceDeps {
  repository: AlarmsRepository;
  clock: Clock;
  logger: Logger;
}

export function createAlarmsService(config: AlarmsConfig, deps: AlarmsServiceDeps) {
  const { repository, clock, logger } = deps;
  const iso = () => new Date(clock.now()).toISOString();

  async function attach(alarmId: string, mediaKey: string, object: StoredObject): Promise<void> {
    const { attached, complete } = await repository.attach(alarmId, mediaKey, object, iso());
    if (attached) logger.debug("media attached", { alarmId, mediaKey });
    if (complete && (await repository.complete(alarmId, iso()))) {
      logger.debug("alarm complete", { alarmId });
    }
  }

  return {
    async applyAlarm(event: AlarmEvent): Promise<{ alarmId: string; created: boolean }> {
      const alarmId = alarmIdFor(event.deviceId, event.sequence, event.alarmTime);
      const expected = expectedMediaKeys(event.picIds, event.videoIds);
      const nowMs = clock.now();
      const now = new Date(nowMs).toISOString();
      const receivedMs = Date.parse(event.receivedAt);
      const item: AlarmItem = {
        alarmId,
        deviceId: event.deviceId,
        agentId: event.agentId,
        eventId: event.eventId,
        sequence: event.sequence,
        alarmType: event.alarmType,
        alarmAction: event.alarmAction,
        ...(event.videoChannel === undefined ? {} : { videoChannel: event.videoChannel }),
        ...(event.alarmInChannel === undefined ? {} : { alarmInChannel: event.alarmInChannel }),
        ...(event.diskNumber === undefined ? {} : { diskNumber: event.diskNumber }),
        ...(event.alarmTime === undefined ? {} : { alarmTime: event.alarmTime }),
        ...(event.timeDiffH === undefined ? {} : { timeDiffH: event.timeDiffH }),
        ...(event.timeDiffM === undefined ? {} : { timeDiffM: event.timeDiffM }),
        ...(event.remark === undefined ? {} : { remark: event.remark }),
        retransmitted: event.retransmitted,
        receivedAt: new Date(receivedMs).toISOString(),
        createdAt: now,
        updatedAt: now,
        listShard: ALARMS_LIST_SHARD,
        picIds: [...new Set(event.picIds)],
        videoIds: [...new Set(event.videoIds)],
        media: {},
        deadline: receivedMs + config.mediaDeadlineSeconds * 1000,
        expiresAt: expiresAt(receivedMs, config.alarmTtlSeconds),
        ...(expected.length === 0
          ? { state: "complete", completedAt: now }
          : { state: "open", openShard: ALARMS_OPEN_SHARD, missing: new Set(expected) }),
      };
      // A duplicate finds the item and still runs the rest: the first delivery may have stopped
      // half-way.
      const created = await repository.createAlarm(item);
      const mediaExpiry = expiresAt(nowMs, config.mediaTtlSeconds);
      await Promise.all(
        expected.map(async (mediaKey) => {
          const object = await repository.expectMedia(
            event.deviceId,
            mediaKey,
            alarmId,
            mediaExpiry,
          );
          if (object) await attach(alarmId, mediaKey, object);
        }),
      );
      return { alarmId, created };
    },

    async applyMedia(event: MediaUploadedEvent): Promise<{ alarmIds: string[] }> {
      const mediaId = event.kind === "picture" ? event.picId : event.videoId;
      const mediaKey = mediaKeyOf(event.kind, mediaId);
      const uploaded: StoredObject = {
        bucket: event.bucket,
        key: event.key,
        size: event.size,
        contentType: event.contentType,
        uploadedAt: event.uploadedAt,
        ...(event.sha256 === undefined ? {} : { sha256: event.sha256 }),
        ...(event.channel === undefined ? {} : { channel: event.channel }),
        ...(event.time === undefined ? {} : { time: event.time }),
      };
      const { object, alarmIds } = await repository.recordMedia(
        event.deviceId,
        mediaKey,
        uploaded,
        event.eventId,
        expiresAt(clock.now(), config.mediaTtlSeconds),
      );
      await Promise.all(alarmIds.map((alarmId) => attach(alarmId, mediaKey, object)));
      if (event.kind === "picture" && isCaptureId(mediaId)) {
        const ready = await repository.captureUploaded(mediaId, event.deviceId, object, iso());
        logger.debug("capture picture", { captureId: mediaId, ready });
      }
      return { alarmIds };
    },

    /** Moves `open` alarms past their deadline to `partial`; returns how many moved. */
    async sweep(): Promise<{ moved: number; seen: number }> {
      const nowMs = clock.now();
      const ids = await repository.overdue(nowMs, config.sweepLimit);
      let moved = 0;
      for (let i = 0; i < ids.length; i += 25) {
        const results = await Promise.all(
          ids.slice(i, i + 25).map(
            async (id) =>
              (await repository.expire(id, nowMs, iso())) ||
              // Nothing missing but still open: a delivery stopped between the last attach and
              // `complete`; finish it here rather than list it on every run.
              ((await repository.complete(id, iso())) && false),
          ),
        );
        moved += results.filter(Boolean).length;
      }
      if (moved > 0) logger.info("alarms past their media deadline are partial", { moved });
      return { moved, seen: ids.length };
    },
  };
}

export type AlarmsService = ReturnType<typeof createAlarmsService>;

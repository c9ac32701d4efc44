import type { AlarmEvent, MediaUploadedEvent } from "../../../lib/contracts/alarms.ts";

/** Alarm and upload events as the agent sends them to the alarm-events queue. */

let counter = 0;
const next = () => ++counter;

export function alarmEvent(
  deviceId: string,
  sequence: number,
  media: { picIds?: string[]; videoIds?: string[] } = {},
  fields: Partial<AlarmEvent> = {},
): AlarmEvent {
  return {
    eventId: `alarm-${next()}`,
    agentId: "agent-a",
    deviceId,
    type: "alarm",
    sequence,
    receivedAt: new Date().toISOString(),
    alarmType: 1,
    alarmAction: "start",
    videoChannel: 1,
    alarmTime: "2026-11-24 06:00:00",
    picIds: media.picIds ?? [],
    videoIds: media.videoIds ?? [],
    retransmitted: false,
    ...fields,
  };
}

export function pictureEvent(
  deviceId: string,
  picId: string,
  key = `pictures/${deviceId}/${picId}-${next()}.jpg`,
): MediaUploadedEvent {
  return {
    eventId: `media-${next()}`,
    agentId: "agent-a",
    deviceId,
    type: "media-uploaded",
    kind: "picture",
    picId,
    bucket: "media-bucket",
    key,
    size: 1234,
    contentType: "image/jpeg",
    uploadedAt: new Date().toISOString(),
  };
}

export function videoEvent(
  deviceId: string,
  videoId: string,
  key = `videos/${deviceId}/${videoId}-${next()}.ps`,
): MediaUploadedEvent {
  return {
    eventId: `media-${next()}`,
    agentId: "agent-a",
    deviceId,
    type: "media-uploaded",
    kind: "video",
    videoId,
    bucket: "media-bucket",
    key,
    size: 99_999,
    contentType: "video/mp2p",
    uploadedAt: new Date().toISOString(),
  };
}

/** Every ordering of `items` (n! of them). */
export function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  const out: T[][] = [];
  items.forEach((item, i) => {
    const rest = [...items.slice(0, i), ...items.slice(i + 1)];
    for (const tail of permutations(rest)) out.push([item, ...tail]);
  });
  return out;
}

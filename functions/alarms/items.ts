/**
 * DynamoDB item shapes of the alarms, alarm-media and captures tables (keys and indexes:
 * `lib/contracts/tables.ts`). The alarms function writes them; the api function reads them (and
 * writes captures).
 */

export const ALARM_STATES = ["open", "complete", "partial"] as const;
export type AlarmState = (typeof ALARM_STATES)[number];

export type MediaKind = "picture" | "video";

/** Where an uploaded picture or video is, as the agent reported it (`MediaUploadedEvent`). */
export interface StoredObject {
  bucket: string;
  key: string;
  size: number;
  contentType: string;
  uploadedAt: string;
  sha256?: string;
  channel?: number;
  /** The upload's `Time`, device-local, as sent. */
  time?: string;
}

export interface AlarmItem {
  alarmId: string;
  deviceId: string;
  agentId: string;
  /** `eventId` of the alarm event that created the item. */
  eventId: string;
  sequence: number;
  alarmType: number;
  alarmAction: "start" | "stop";
  videoChannel?: number;
  alarmInChannel?: number;
  diskNumber?: number;
  alarmTime?: string;
  timeDiffH?: number;
  timeDiffM?: number;
  remark?: string;
  retransmitted: boolean;
  /** ISO 8601, when the agent received the alarm; sort key of the list indexes. */
  receivedAt: string;
  createdAt: string;
  updatedAt: string;
  /** Constant (`ALARMS_LIST_SHARD`): partition key of the `byReceived` index. */
  listShard: string;
  state: AlarmState;
  /** Epoch ms: still `open` after this, the alarm is `partial`. */
  deadline: number;
  /** `ALARMS_OPEN_SHARD` while `open`, absent otherwise (sparse `openByDeadline` index). */
  openShard?: string;
  /** Expected media as the alarm named them, in order. */
  picIds: string[];
  videoIds: string[];
  /** Media keys (`p#…`, `v#…`) not attached yet; absent when none (DynamoDB has no empty set). */
  missing?: Set<string>;
  /** Attached objects by media key. */
  media: Record<string, StoredObject>;
  completedAt?: string;
  partialAt?: string;
  /** TTL, epoch seconds. */
  expiresAt: number;
}

/** The rendezvous item of one picture or video of one device (`TABLES.alarmMedia`). */
export interface AlarmMediaItem extends Partial<StoredObject> {
  deviceId: string;
  /** `p#<PicID>` or `v#<VideoId>`. */
  mediaKey: string;
  /** Alarms that expect this item. */
  alarmIds?: Set<string>;
  /** `eventId` of the upload event that stored the object (the first one). */
  eventId?: string;
  expiresAt: number;
}

export const CAPTURE_STATES = [
  "pending",
  "ready",
  "device-offline",
  "device-error",
  "upload-timeout",
] as const;
export type CaptureState = (typeof CAPTURE_STATES)[number];
export const FINAL_CAPTURE_STATES: readonly CaptureState[] = [
  "ready",
  "device-offline",
  "device-error",
  "upload-timeout",
];

export interface CaptureItem {
  captureId: string;
  deviceId: string;
  /** The `PicID` sent in MANUALSNAP; equal to `captureId`. */
  picId: string;
  channel: number;
  resolution?: string;
  quality?: number;
  /** A stored file fetched from the device (UPLOADPIC, `POST /devices/{id}/pictures/fetch`). */
  fileName?: string;
  state: CaptureState;
  /** Why a failed capture failed. */
  reason?: string;
  /** The capture command (`commands` table). */
  commandId?: string;
  createdAt: string;
  updatedAt: string;
  /** Epoch ms: still `pending` after this, the capture is `upload-timeout`. */
  deadline: number;
  completedAt?: string;
  picture?: StoredObject;
  /** TTL, epoch seconds. */
  expiresAt: number;
}

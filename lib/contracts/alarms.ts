import { z } from "zod";

/**
 * Alarm and media events: agent → `alarm-events` queue → alarms function (architecture §2;
 * ehome-2.0 §5 and the §8 dialect rows ALARM, MANUALSNAP, POST /pictures, POST /videos).
 *
 * The agent sends one `alarm` event per alarm (retransmissions de-duplicated on DeviceID +
 * Sequence), and one `media-uploaded` event per upload that is durable in S3. The device's `PicID`
 * and `VideoId` tie them together; the alarms function correlates them under any interleaving.
 * Both carry a unique `eventId` so consumers can de-duplicate SQS redeliveries.
 */

/** A device-chosen (or, for captures, platform-chosen) picture or video id: `PicID` / `VideoId`. */
export const MediaId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces");
export type MediaId = z.infer<typeof MediaId>;

/** Device-local `YYYY-MM-DD HH:MM:SS` (ehome-2.0 §5.1 `AlarmTime`), kept as the device sent it. */
export const DeviceLocalTime = z.string().max(32);

/**
 * Alarm-type numbers of the ISUP alarm callback (ehome-2.0 §5.1); other numbers are passed
 * through unchanged (the field is a plain integer).
 */
export const ALARM_TYPES = {
  basic: 1,
  heatMap: 2,
  faceSnap: 3,
  gps: 4,
  cid: 5,
  pictureUrl: 6,
  asyncFailure: 7,
  selfDefined: 9,
  networkSwitch: 10,
  accessControl: 11,
  wirelessInfo: 12,
  isapi: 13,
  passengerCount: 15,
  qrCode: 20,
  faceTemperature: 21,
} as const;

/** `AlarmAction`: 0 start, 1 stop (ehome-2.0 §5.1). */
export const ALARM_ACTIONS = ["start", "stop"] as const;
export const AlarmAction = z.enum(ALARM_ACTIONS);
export type AlarmAction = z.infer<typeof AlarmAction>;

const common = {
  /** Unique per event; consumers de-duplicate redeliveries with it. */
  eventId: z.string().min(1).max(64),
  agentId: z.string().min(1).max(128),
  deviceId: z.string().min(1).max(256),
};

export const AlarmEvent = z.object({
  ...common,
  type: z.literal("alarm"),
  /** The device's `Sequence` of the ALARM request (with deviceId, the de-duplication key). */
  sequence: z.number().int().nonnegative(),
  /** When the agent received it (ISO 8601). */
  receivedAt: z.iso.datetime(),
  /** `AlarmType` number (ehome-2.0 §5.1, see `ALARM_TYPES`). */
  alarmType: z.number().int().nonnegative(),
  alarmAction: AlarmAction,
  videoChannel: z.number().int().nonnegative().optional(),
  alarmInChannel: z.number().int().nonnegative().optional(),
  diskNumber: z.number().int().nonnegative().optional(),
  /** `AlarmTime` as the device sent it (device-local). */
  alarmTime: DeviceLocalTime.optional(),
  /** `TimeDiffH` / `TimeDiffM`: the device's offset from UTC. */
  timeDiffH: z.number().int().min(-14).max(14).optional(),
  timeDiffM: z.number().int().min(-59).max(59).optional(),
  remark: z.string().max(1024).optional(),
  /** Pictures the device will upload (or has uploaded) for this alarm, de-duplicated, in order. */
  picIds: z.array(MediaId).max(64),
  /** Videos likewise (`VideoId`). */
  videoIds: z.array(MediaId).max(64),
  /** `RetransFlag` 1: the device re-sent an alarm it had buffered (not real-time). */
  retransmitted: z.boolean(),
});
export type AlarmEvent = z.infer<typeof AlarmEvent>;

export const MEDIA_KINDS = ["picture", "video"] as const;
export const MediaKind = z.enum(MEDIA_KINDS);
export type MediaKind = z.infer<typeof MediaKind>;

const mediaBase = {
  ...common,
  type: z.literal("media-uploaded"),
  /** `Channel` from the upload's query or headers (ehome-2.0 §8), when the device gave one. */
  channel: z.number().int().nonnegative().optional(),
  /** `Time` from the upload, as the device sent it (device-local). */
  time: DeviceLocalTime.optional(),
  /** Where the object is (see `mediaObjectKey`). */
  bucket: z.string().min(1).max(255),
  key: z.string().min(1).max(1024),
  size: z.number().int().nonnegative(),
  contentType: z.string().min(1).max(255),
  /** Hex SHA-256 of the stored bytes, computed while streaming. */
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  /** When the object became durable in S3 (ISO 8601). */
  uploadedAt: z.iso.datetime(),
};

export const MediaUploadedEvent = z.discriminatedUnion("kind", [
  z.object({ ...mediaBase, kind: z.literal("picture"), picId: MediaId }),
  z.object({ ...mediaBase, kind: z.literal("video"), videoId: MediaId }),
]);
export type MediaUploadedEvent = z.infer<typeof MediaUploadedEvent>;

/** Everything on the `alarm-events` queue (`QUEUES.alarmEvents`), discriminated by `type`. */
export const AlarmQueueMessage = z.discriminatedUnion("type", [AlarmEvent, MediaUploadedEvent]);
export type AlarmQueueMessage = z.infer<typeof AlarmQueueMessage>;

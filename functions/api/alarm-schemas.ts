import { z } from "@hono/zod-openapi";
import { ALARM_ACTIONS } from "../../lib/contracts/alarms.ts";
import { ALARM_STATES, CAPTURE_STATES } from "../alarms/items.ts";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_WAIT_SECONDS } from "./schemas.ts";

/** Request and response schemas of the alarm and capture routes (OpenAPI components). */

const limit = z.coerce
  .number()
  .int()
  .min(1)
  .max(MAX_PAGE_SIZE)
  .default(DEFAULT_PAGE_SIZE)
  .openapi({ description: `Page size, 1-${MAX_PAGE_SIZE}` });
const cursor = z
  .string()
  .max(2048)
  .optional()
  .openapi({ description: "`nextCursor` of the previous page (opaque)" });
const isoTime = z.iso
  .datetime({ offset: true })
  .transform((value) => new Date(value).toISOString());

const alarmFilters = {
  type: z.coerce
    .number()
    .int()
    .min(0)
    .max(65_535)
    .optional()
    .openapi({ description: "AlarmType number (ehome-2.0 §5.1), e.g. 1 basic, 3 face snap" }),
  state: z
    .enum(ALARM_STATES)
    .optional()
    .openapi({ description: "`open`, `complete` or `partial` (as of now)" }),
  from: isoTime
    .optional()
    .openapi({ description: "received at or after (ISO 8601)", example: "2026-11-24T00:00:00Z" }),
  to: isoTime.optional().openapi({ description: "received at or before (ISO 8601)" }),
  limit,
  cursor,
};

export const ListAlarmsQuery = z.object({
  deviceId: z.string().min(1).max(256).optional(),
  ...alarmFilters,
});
export const ListDeviceAlarmsQuery = z.object(alarmFilters);

export const AlarmIdParam = z.object({
  alarmId: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "alarmId", in: "path" }, example: "al-3f9a…" }),
});

export const CaptureIdParam = z.object({
  captureId: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "captureId", in: "path" }, example: "cap-8c1e0f5a9b2d4e6f7a81" }),
});

const MediaObject = {
  attached: z.boolean(),
  size: z.number().int().optional(),
  contentType: z.string().optional(),
  uploadedAt: z.string().optional(),
  bucket: z.string().optional(),
  key: z.string().optional(),
  sha256: z.string().optional(),
  url: z.string().optional().openapi({ description: "presigned GET URL (single alarm only)" }),
  urlExpiresAt: z.string().optional(),
};

export const AlarmPicture = z.object({ picId: z.string(), ...MediaObject }).openapi("AlarmPicture");
export const AlarmVideo = z.object({ videoId: z.string(), ...MediaObject }).openapi("AlarmVideo");

export const Alarm = z
  .object({
    alarmId: z.string(),
    deviceId: z.string(),
    agentId: z.string(),
    sequence: z.number().int(),
    alarmType: z.number().int(),
    alarmAction: z.enum(ALARM_ACTIONS),
    videoChannel: z.number().int().optional(),
    alarmInChannel: z.number().int().optional(),
    diskNumber: z.number().int().optional(),
    alarmTime: z.string().optional().openapi({ description: "device-local, as sent" }),
    timeDiffH: z.number().int().optional(),
    timeDiffM: z.number().int().optional(),
    remark: z.string().optional(),
    retransmitted: z.boolean(),
    receivedAt: z.string(),
    state: z.enum(ALARM_STATES),
    deadline: z.string().openapi({ description: "still open after this, the alarm is partial" }),
    completedAt: z.string().optional(),
    partialAt: z.string().optional(),
    pictures: z.array(AlarmPicture),
    videos: z.array(AlarmVideo),
    missing: z.object({ picIds: z.array(z.string()), videoIds: z.array(z.string()) }),
  })
  .openapi("Alarm");

export const AlarmPage = z
  .object({ items: z.array(Alarm), nextCursor: z.string().optional() })
  .openapi("AlarmPage");

export const CaptureRequest = z
  .object({
    channel: z.number().int().min(1).max(512),
    resolution: z
      .string()
      .regex(/^\d{1,5}\*\d{1,5}$/, "WIDTH*HEIGHT, e.g. 1920*1080")
      .optional(),
    quality: z.number().int().min(0).max(2).optional().openapi({ description: "0 best - 2" }),
  })
  .strict()
  .openapi("CaptureRequest");

export const CaptureQuery = z.object({
  wait: z.coerce
    .number()
    .int()
    .min(0)
    .max(MAX_WAIT_SECONDS)
    .default(0)
    .openapi({ description: `Seconds to wait for the picture, 0-${MAX_WAIT_SECONDS}` }),
});

export const Capture = z
  .object({
    captureId: z.string(),
    deviceId: z.string(),
    channel: z.number().int(),
    resolution: z.string().optional(),
    quality: z.number().int().optional(),
    fileName: z.string().optional().openapi({
      description: "the stored file fetched (POST /devices/{deviceId}/pictures/fetch)",
    }),
    picId: z
      .string()
      .openapi({ description: "PicID sent in MANUALSNAP or UPLOADPIC (= captureId)" }),
    state: z.enum(CAPTURE_STATES),
    reason: z.string().optional().openapi({ description: "why a failed capture failed" }),
    commandId: z.string().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
    deadline: z.string().openapi({ description: "no upload by then: upload-timeout" }),
    completedAt: z.string().optional(),
    picture: z
      .object({
        size: z.number().int(),
        contentType: z.string(),
        uploadedAt: z.string(),
        bucket: z.string(),
        key: z.string(),
        url: z.string().openapi({ description: "presigned GET URL, image/jpeg" }),
        urlExpiresAt: z.string(),
      })
      .optional(),
  })
  .openapi("Capture");

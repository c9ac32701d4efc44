import { z } from "@hono/zod-openapi";
import {
  MAX_RECORD_FILES,
  MediaTransport,
  PLAYBACK_ACTIONS,
  PlaybackDirection,
  STREAM_KINDS,
  STREAM_STATES,
  STREAM_TYPES,
  StreamControlRequest,
  StreamRequest,
} from "../../lib/contracts/media.ts";
import { TIME_ZONE_PATTERN } from "./schemas.ts";

/** Request and response schemas of the record, stream and download routes (OpenAPI components). */

export const TimeZone = z
  .string()
  .regex(TIME_ZONE_PATTERN, "a UTC offset such as +08:00")
  .openapi({ example: "+08:00" });

const LOCAL = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

/** Device-local time in a query: `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`, as the former. */
const queryLocalTime = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}$/,
    "device-local time YYYY-MM-DD HH:MM:SS (or with T)",
  )
  .transform((value) => value.replace("T", " "));

export const RecordsQuery = z
  .object({
    channel: z.coerce.number().int().min(1).max(512).openapi({ description: "Channel, 1-512" }),
    start: queryLocalTime.openapi({
      description: "From (device-local time, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS`)",
      example: "2026-11-24 00:00:00",
    }),
    end: queryLocalTime.openapi({ description: "To (device-local time)" }),
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(MAX_RECORD_FILES)
      .default(200)
      .openapi({ description: `Most files returned, 1-${MAX_RECORD_FILES}` }),
  })
  // Only between two well-formed times: a malformed one is reported on its own.
  .refine((q) => !(LOCAL.test(q.start) && LOCAL.test(q.end)) || q.start < q.end, {
    message: "start must be before end",
    path: ["end"],
  });

export const RecordFileView = z
  .object({
    fileName: z.string().openapi({ example: "ch0001_00000000009000000" }),
    start: z.string().openapi({ description: "device-local, as the device wrote it" }),
    end: z.string(),
    startAt: z.string().optional().openapi({
      description: "ISO 8601 with the device's offset; only when the device's timeZone is known",
      example: "2026-11-24T08:00:00+08:00",
    }),
    endAt: z.string().optional(),
    sizeBytes: z.number().int(),
  })
  .openapi("RecordFile");

export const RecordList = z
  .object({
    deviceId: z.string(),
    channel: z.number().int(),
    timeZone: TimeZone.optional().openapi({
      description: "The device's UTC offset, when known (PUT /devices/{id})",
    }),
    files: z.array(RecordFileView),
    truncated: z.boolean().openapi({ description: "`limit` reached before the last page" }),
  })
  .openapi("RecordList");

/**
 * The bodies are the contract's schemas (with their refinements). They are built with plain zod,
 * whose prototype may not carry `.openapi` yet when this module loads (import order), so they are
 * documented inline rather than as named components.
 */
export const StreamRequestBody = StreamRequest;
export const StreamControlBody = StreamControlRequest;

export const StreamIdParam = z.object({
  streamId: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_-]+$/)
    .openapi({ param: { name: "streamId", in: "path" }, example: "st-3f9a…" }),
});

export const StreamStarted = z
  .object({
    streamId: z.string(),
    kind: z.enum(STREAM_KINDS),
    state: z.enum(STREAM_STATES),
    urls: z
      .object({
        ps: z.string().openapi({ description: "raw MPEG-PS on the agent's viewer port" }),
        ts: z.string().openapi({ description: "MPEG-TS (ffplay, VLC, mpegts.js)" }),
      })
      .optional()
      .openapi({ description: "live and playback" }),
    expiresAt: z
      .string()
      .optional()
      .openapi({ description: "live and playback: when the URLs' token expires (ISO 8601)" }),
    downloadUrl: z
      .string()
      .optional()
      .openapi({ description: "download: `/downloads/{streamId}` of this API" }),
  })
  .openapi("StreamStarted");

const StreamSpecView = z.object({
  kind: z.enum(STREAM_KINDS),
  channel: z.number().int(),
  streamType: z.enum(STREAM_TYPES).optional(),
  file: z.string().optional(),
  start: z.string().optional(),
  end: z.string().optional(),
  direction: PlaybackDirection.optional(),
  transport: MediaTransport,
});

export const Stream = z
  .object({
    streamId: z.string(),
    deviceId: z.string(),
    agentId: z.string(),
    kind: z.enum(STREAM_KINDS),
    state: z.enum(STREAM_STATES),
    spec: StreamSpecView,
    viewers: z.number().int(),
    bytesIn: z.number().int(),
    bytesOut: z.number().int(),
    bitrateBps: z.number(),
    viewersDropped: z.number().int(),
    packetsLost: z.number().int().optional(),
    session: z.string().optional().openapi({ description: "the device's Session" }),
    sharedWith: z.string().optional().openapi({
      description: "live: the stream whose device stream this one shares",
    }),
    reason: z.object({ code: z.string(), message: z.string() }).optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
    tokenExpiresAt: z.string().openapi({ description: "the viewer URLs expire then" }),
  })
  .openapi("Stream");

export const StreamControlResult = z
  .object({
    streamId: z.string(),
    action: z.enum(PLAYBACK_ACTIONS),
    stream: Stream,
  })
  .openapi("StreamControlResult");

export const Download = z
  .object({
    streamId: z.string(),
    deviceId: z.string(),
    file: z.string().optional(),
    state: z.enum(STREAM_STATES),
    bytesReceived: z.number().int(),
    object: z.object({ key: z.string(), bytes: z.number().int() }).optional(),
    url: z.string().optional().openapi({ description: "presigned GET URL when `completed`" }),
    urlExpiresAt: z.string().optional(),
    reason: z.object({ code: z.string(), message: z.string() }).optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Download");

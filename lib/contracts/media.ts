import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";

/**
 * Media: live preview, record search, playback with controls, download to S3 (ehome-2.0 §2.5–2.7,
 * §4, §8). The flow:
 *
 * - `GET /devices/{id}/records` runs a `record-search` command (commands.ts) with `?wait` and
 *   returns its result: the agent loops `QUERYRECORDEDFILES` pages (§2.5).
 * - `POST /devices/{id}/streams` writes a stream record (`StreamRecord`, streams table), runs a
 *   `stream-start` command with the `StreamSpec` and waits for it, then answers with viewer URLs
 *   on the agent (`streamUrl`) carrying a signed, expiring token (`mintStreamToken`). The agent
 *   sends `INVITESTREAM` / `PLAYBACK` / `DOWNLOAD` with `SinkIP`/`SinkPort` = its public address
 *   and a pool port; the device connects and pushes; the agent de-frames to MPEG-PS, relays PS
 *   and TS to viewers, or streams a download into S3 (`downloadObjectKey`).
 * - The agent reports each stream's state and counters as `StreamEvent`s on the media-events
 *   queue; the media function applies them to the stream record (newer `seq` wins).
 * - `POST /streams/{id}/control` runs `stream-control` (`PLAYBACKCONTROL`, or `FORCEIFRAME` for
 *   live), `DELETE /streams/{id}` runs `stream-stop` (`BYESTREAM`).
 */

// Shared vocabulary ------------------------------------------------------------------------------

export const STREAM_KINDS = ["live", "playback", "download"] as const;
export const StreamKind = z.enum(STREAM_KINDS);
export type StreamKind = z.infer<typeof StreamKind>;

/** API spelling of `ChannelType` (`MAIN` / `SUB` / `THIRD`, §2.6). */
export const STREAM_TYPES = ["main", "sub", "third"] as const;
export const StreamType = z.enum(STREAM_TYPES);
export type StreamType = z.infer<typeof StreamType>;

/** `LinkMode` (§8): TCP (default) or UDP (issue 8). */
export const MediaTransport = z.enum(["tcp", "udp"]);
export type MediaTransport = z.infer<typeof MediaTransport>;

export const PlaybackDirection = z.enum(["forward", "reverse"]);
export type PlaybackDirection = z.infer<typeof PlaybackDirection>;

/** Device-local time as the device writes it (§2.5): `YYYY-MM-DD HH:MM:SS`, no zone. */
export const LocalDateTime = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/, "device-local time YYYY-MM-DD HH:MM:SS");
export type LocalDateTime = z.infer<typeof LocalDateTime>;

/** A record file name as QUERYRECORDEDFILES lists it (`ch0002_00000000009000000`); ≤ 100 bytes. */
export const RecordFileName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9_.-]+$/, "a record file name from GET /devices/{id}/records");

const channel = z.number().int().min(1).max(512);
const streamId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/);

// API bodies -------------------------------------------------------------------------------------

/**
 * Body of `POST /devices/{deviceId}/streams`. Playback takes a `file` or a `start`+`end` pair
 * (device-local time); download takes a `file`.
 */
export const StreamRequest = z.discriminatedUnion("kind", [
  z
    .object({
      kind: z.literal("live"),
      channel,
      streamType: StreamType.default("main"),
      transport: MediaTransport.default("tcp"),
    })
    .strict(),
  z
    .object({
      kind: z.literal("playback"),
      channel,
      file: RecordFileName.optional(),
      start: LocalDateTime.optional(),
      end: LocalDateTime.optional(),
      direction: PlaybackDirection.default("forward"),
      transport: MediaTransport.default("tcp"),
    })
    .strict()
    .refine((b) => (b.file !== undefined) !== (b.start !== undefined && b.end !== undefined), {
      message: "playback needs either file, or start and end",
      path: ["file"],
    })
    .refine((b) => b.start === undefined || b.end === undefined || b.start < b.end, {
      message: "start must be before end",
      path: ["end"],
    }),
  z
    .object({
      kind: z.literal("download"),
      channel,
      file: RecordFileName,
      transport: MediaTransport.default("tcp"),
    })
    .strict(),
]);
export type StreamRequest = z.infer<typeof StreamRequest>;

export const PLAYBACK_ACTIONS = [
  "pause",
  "resume",
  "fast",
  "slow",
  "normal",
  "seek",
  "reverse",
  "forward",
  /** Live only: `FORCEIFRAME` (§8). */
  "force-iframe",
] as const;
export const PlaybackAction = z.enum(PLAYBACK_ACTIONS);
export type PlaybackAction = z.infer<typeof PlaybackAction>;

/**
 * Body of `POST /streams/{streamId}/control`. `speed` is the factor for `fast` (2, 4, 8) and
 * `slow` (2, 4, 8 = 1/2, 1/4, 1/8); `seekTime` (device-local) is required for `seek`.
 */
export const StreamControlRequest = z
  .object({
    action: PlaybackAction,
    speed: z.union([z.literal(2), z.literal(4), z.literal(8)]).optional(),
    seekTime: LocalDateTime.optional(),
  })
  .strict()
  .refine((b) => b.action !== "seek" || b.seekTime !== undefined, {
    message: "seek needs seekTime",
    path: ["seekTime"],
  })
  .refine((b) => b.speed === undefined || b.action === "fast" || b.action === "slow", {
    message: "speed applies to fast and slow only",
    path: ["speed"],
  });
export type StreamControlRequest = z.infer<typeof StreamControlRequest>;

/**
 * `PLAYBACKCONTROL` `Speed` (§8): 1, 2, 4, 8 for normal/fast; slow as `-2`, `-4`, `-8`.
 */
export function playbackSpeedValue(action: PlaybackAction, speed: number | undefined): number {
  if (action === "fast") return speed ?? 2;
  if (action === "slow") return -(speed ?? 2);
  return 1;
}

// Agent command params (commands.ts wires them into CommandParams) ---------------------------------

/** Most record files one search returns (API `limit`, default 200). */
export const MAX_RECORD_FILES = 1000;

/** `record-search`: loops QUERYRECORDEDFILES pages (§2.5) until a short page or `maxFiles`. */
export const RecordSearchParams = z
  .object({
    channel,
    start: LocalDateTime,
    end: LocalDateTime,
    /** `FileType`; 255 = all (§2.5). */
    fileType: z.number().int().min(0).max(255).default(255),
    maxFiles: z.number().int().min(1).max(MAX_RECORD_FILES).default(200),
    /** `ChunkSize` per page; 8 keeps the UDP answer small (§2.5). */
    pageSize: z.number().int().min(1).max(64).default(8),
  })
  .strict();
export type RecordSearchParams = z.infer<typeof RecordSearchParams>;

/** One `RecordedFile` line: `<fileName> <startDate> <startTime> <endDate> <endTime> <size> <flag>`. */
export const RecordFile = z.object({
  fileName: z.string(),
  start: LocalDateTime,
  end: LocalDateTime,
  sizeBytes: z.number().int().nonnegative(),
  flag: z.string(),
});
export type RecordFile = z.infer<typeof RecordFile>;

/** `record-search` result. `truncated`: `maxFiles` reached before the device ran out of pages. */
export const RecordSearchResult = z.object({
  files: z.array(RecordFile),
  truncated: z.boolean(),
  pages: z.number().int().nonnegative(),
});
export type RecordSearchResult = z.infer<typeof RecordSearchResult>;

/** What the agent needs to open a stream: the `StreamRequest` plus its id. */
export const StreamSpec = z
  .object({
    streamId,
    kind: StreamKind,
    channel,
    /** Live only. */
    streamType: StreamType.optional(),
    /** Playback by name, and download. */
    file: RecordFileName.optional(),
    /** Playback by time. */
    start: LocalDateTime.optional(),
    end: LocalDateTime.optional(),
    direction: PlaybackDirection.optional(),
    transport: MediaTransport.default("tcp"),
  })
  .strict();
export type StreamSpec = z.infer<typeof StreamSpec>;

/** `stream-start` succeeds once the device accepted (200 + `Session`). */
export const StreamStartResult = z.object({
  streamId,
  /** The device's `Session` (§2.6). */
  session: z.string(),
  /** Pool port the device was told to push to. */
  port: z.number().int(),
  transport: MediaTransport,
  /**
   * Live only: the id of the device stream this request shares (the first `streamId` that
   * opened it); equal to `streamId` when this request opened it.
   */
  sharedWith: z.string().optional(),
});
export type StreamStartResult = z.infer<typeof StreamStartResult>;

export const StreamStopParams = z.object({ streamId }).strict();
export const StreamControlParams = z
  .object({
    streamId,
    action: PlaybackAction,
    speed: z.number().int().min(-8).max(8).optional(),
    seekTime: LocalDateTime.optional(),
  })
  .strict();
export type StreamControlParams = z.infer<typeof StreamControlParams>;

// Stream state (agent → media-events queue → streams table) --------------------------------------

export const STREAM_STATES = [
  /** `stream-start` sent; the device has not connected yet. */
  "starting",
  /** The device is pushing. */
  "active",
  /** Playback paused (`PLAYBACKCONTROL` PAUSE). */
  "paused",
  /** Final: stopped by `DELETE`, idle timeout (no viewer), end of playback, or agent shutdown. */
  "stopped",
  /** Final: a download whose object is durable in S3. */
  "completed",
  /** Final: the device refused, never connected, or the link/upload broke. */
  "failed",
] as const;
export const StreamState = z.enum(STREAM_STATES);
export type StreamState = z.infer<typeof StreamState>;
export const FINAL_STREAM_STATES: readonly StreamState[] = ["stopped", "completed", "failed"];

export const StreamCounters = z.object({
  /** Viewers connected now (PS + TS). */
  viewers: z.number().int().nonnegative(),
  /** De-framed MPEG-PS bytes received from the device. */
  bytesIn: z.number().int().nonnegative(),
  /** Bytes written to viewers (all formats). */
  bytesOut: z.number().int().nonnegative(),
  /** Average over the last report interval, bits per second of `bytesIn`. */
  bitrateBps: z.number().nonnegative(),
  /** Viewers dropped or disconnected for being slow, since the start. */
  viewersDropped: z.number().int().nonnegative(),
  /** UDP transport only: RTP packets lost (gaps the reorder window could not fill). */
  packetsLost: z.number().int().nonnegative().optional(),
});
export type StreamCounters = z.infer<typeof StreamCounters>;

export const StreamEvent = z.object({
  type: z.literal("stream-state"),
  streamId,
  deviceId: z.string().min(1).max(256),
  agentId: z.string().min(1).max(128),
  /** Per-stream, increasing; the media function keeps the newest. */
  seq: z.number().int().nonnegative(),
  state: StreamState,
  counters: StreamCounters,
  /** Downloads, state `completed`: the S3 key and size of the object. */
  object: z.object({ key: z.string(), bytes: z.number().int().nonnegative() }).optional(),
  /** `failed` and `stopped`: why (`MEDIA_ACCEPT_TIMEOUT`, `IDLE`, `DEVICE_CLOSED`, ...). */
  reason: z.object({ code: z.string(), message: z.string().max(1024) }).optional(),
  at: z.iso.datetime(),
});
export type StreamEvent = z.infer<typeof StreamEvent>;

/** Seconds between `StreamEvent`s of an active stream (state changes are sent at once). */
export const STREAM_REPORT_SECONDS = 5;

/** A stream as stored in the streams table and returned by `GET /streams/{id}`. */
export interface StreamRecord {
  streamId: string;
  deviceId: string;
  agentId: string;
  kind: StreamKind;
  spec: StreamSpec;
  state: StreamState;
  counters: StreamCounters;
  /** From `stream-start`. */
  session?: string;
  object?: { key: string; bytes: number };
  reason?: { code: string; message: string };
  /** `seq` of the last applied `StreamEvent` (-1 before any). */
  seq: number;
  createdAt: string;
  updatedAt: string;
  /** Epoch seconds: viewer tokens expire then; also the record's TTL + a day. */
  tokenExpiresAt: number;
}

// Viewer tokens and URLs -------------------------------------------------------------------------

export const STREAM_FORMATS = ["ps", "ts"] as const;
export type StreamFormat = (typeof STREAM_FORMATS)[number];

/** Default lifetime of a viewer token (the URL in `POST /streams`'s answer). */
export const STREAM_TOKEN_TTL_SECONDS = 60 * 60;
/** Lifetime of the download's presigned GET URL (issue: 15 min). */
export const DOWNLOAD_URL_TTL_SECONDS = 15 * 60;

/** Path on the agent's viewer port: `/streams/<streamId>.<ps|ts>?token=...`. */
export const STREAM_PATH_PREFIX = "/streams/";

export interface StreamTokenClaims {
  streamId: string;
  deviceId: string;
  /** Epoch seconds. */
  expiresAt: number;
}

export type StreamTokenResult =
  | { ok: true; claims: StreamTokenClaims }
  | { ok: false; error: "expired" | "bad-signature" | "malformed" };

const STREAM_MAC_CONTEXT = "ehome-stream-token-v1.";
const STREAM_MAC_BYTES = 16;
const STREAM_TOKEN_MAX_LENGTH = 600;

const StreamWire = z
  .object({ s: streamId, d: z.string().min(1).max(256), e: z.number().int().nonnegative() })
  .strict();

function streamMac(key: Uint8Array, payload: string): Buffer {
  return createHmac("sha256", key)
    .update(STREAM_MAC_CONTEXT)
    .update(payload)
    .digest()
    .subarray(0, STREAM_MAC_BYTES);
}

/**
 * A viewer token: base64url JSON claims + `.` + truncated HMAC-SHA256 with the stream token key
 * (`ENV.STREAM_TOKEN_KEY`, parsed like the firmware key with `parseFirmwareTokenKey`). The MAC
 * context differs from the firmware token's, so neither verifies as the other.
 */
export function mintStreamToken(key: Uint8Array, claims: StreamTokenClaims): string {
  const payload = Buffer.from(
    JSON.stringify({ s: claims.streamId, d: claims.deviceId, e: claims.expiresAt }),
  ).toString("base64url");
  return `${payload}.${streamMac(key, payload).toString("base64url")}`;
}

export function verifyStreamToken(
  key: Uint8Array,
  token: string,
  nowMs: number = Date.now(),
): StreamTokenResult {
  if (token.length > STREAM_TOKEN_MAX_LENGTH) return { ok: false, error: "malformed" };
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{22})$/.exec(token);
  if (!m) return { ok: false, error: "malformed" };
  const payload = m[1] as string;
  const given = Buffer.from(m[2] as string, "base64url");
  if (given.length !== STREAM_MAC_BYTES || !timingSafeEqual(given, streamMac(key, payload))) {
    return { ok: false, error: "bad-signature" };
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return { ok: false, error: "malformed" };
  }
  const w = StreamWire.safeParse(json);
  if (!w.success) return { ok: false, error: "malformed" };
  if (w.data.e * 1000 <= nowMs) return { ok: false, error: "expired" };
  return { ok: true, claims: { streamId: w.data.s, deviceId: w.data.d, expiresAt: w.data.e } };
}

/** `http://<agent public host>:<viewer port>/streams/<id>.<format>?token=<token>`. */
export function streamUrl(
  host: string,
  port: number,
  id: string,
  format: StreamFormat,
  token: string,
): string {
  return `http://${host}:${port}${STREAM_PATH_PREFIX}${encodeURIComponent(id)}.${format}?token=${token}`;
}

/** S3 key of a download: `downloads/<deviceId>/<streamId>.ps` (style of storage.ts keys). */
export function downloadObjectKey(deviceId: string, id: string): string {
  return `downloads/${encodeURIComponent(deviceId)}/${id}.ps`;
}

import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { PassThrough, pipeline, Transform, type TransformCallback } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import {
  type AlarmQueueMessage,
  MediaId,
  type MediaKind,
  type MediaUploadedEvent,
} from "../../lib/contracts/alarms.ts";
import { MEDIA_FILE_TYPES, mediaObjectKey } from "../../lib/contracts/storage.ts";
import { createRateLimiter, type Logger, silentLogger } from "../log.ts";
import type { EventSink } from "../ports.ts";
import { createAddressLimiter } from "../signalling/address-limiter.ts";
import { ENVELOPE, UPLOAD } from "../signalling/catalogue.ts";
import type { DeviceHttpRoute } from "./device-http.ts";
import { createFirstFilePartStream, MultipartError, multipartBoundary } from "./multipart.ts";

/**
 * The picture server (ehome-2.0 §8 upload row): `POST /pictures` and `POST /videos` on the
 * device HTTP port, raw body or `multipart/form-data` (first file part), streamed straight into
 * S3 with a multipart upload (never buffered whole). Accepted only from the source address of the
 * named device's current session. Answered `200` with `<Status>200</Status>` only after S3 has the
 * object, then a `MediaUploadedEvent` goes to the alarm-events queue. Refusals leave nothing in S3
 * (the multipart upload is aborted): 400 malformed, 403 unknown address, 413 too large, 415 not
 * the expected content, 503 when S3 fails (the device should retry).
 *
 * Abuse (issue 7 item 3): uploads per source address are limited by a token bucket
 * (`EHOME_UPLOAD_RATE_PER_ADDRESS` per second, a bucket of 5 s worth); beyond it `429` with
 * `Retry-After`, before anything is read or sent to S3. When S3 is unreachable or throttling the
 * answer is `503` with `Retry-After`: an upload is acknowledged only once S3 holds it.
 */

export interface UploadRoutesConfig {
  agentId: string;
  bucket: string;
  /** `EHOME_MAX_PICTURE_BYTES`. */
  maxPictureBytes: number;
  /** `EHOME_MAX_VIDEO_BYTES`. */
  maxVideoBytes: number;
  /** S3 part size (≥ 5 MiB). Default 5 MiB. */
  partSizeBytes?: number;
  /** Parts uploaded concurrently per upload. Default 2. */
  queueSize?: number;
  /**
   * Uploads streamed at once (each holds up to `queueSize` + 1 parts in memory); beyond it the
   * device gets 503 and retries. Default 32.
   */
  maxConcurrentUploads?: number;
  /** Uploads per second per source address (`EHOME_UPLOAD_RATE_PER_ADDRESS`); 0 or unset: none. */
  ratePerAddress?: number;
  /** Apply that limit to loopback too (tests). Default false. */
  limitLoopback?: boolean;
}

export interface UploadRoutesDeps {
  s3: () => S3Client;
  /** Whether `host` is the source address of `deviceId`'s current session. */
  isDeviceAddress(deviceId: string, host: string): boolean;
  events: EventSink<AlarmQueueMessage>;
  now?: () => number;
  uuid?: () => string;
  log?: Logger;
}

export interface UploadCounters {
  accepted: number;
  bytes: number;
  badRequest: number;
  unknownAddress: number;
  tooLarge: number;
  wrongContent: number;
  storageFailed: number;
  aborted: number;
  /** Refused with 503 because `maxConcurrentUploads` were streaming. */
  busy: number;
  /** Refused with 429 by the per-address rate limit. */
  rateLimited: number;
  /** Streaming now. */
  inFlight: number;
}

export interface UploadRoutes {
  readonly routes: readonly DeviceHttpRoute[];
  counters(): UploadCounters;
}

/** ehome-2.0 §8: pictures are JPEG (magic FF D8 FF). */
const JPEG_MAGIC = Buffer.from([0xff, 0xd8, 0xff]);

class UploadRefused extends Error {
  constructor(
    readonly status: 400 | 403 | 413 | 415,
    message: string,
  ) {
    super(message);
  }
}

/** `host` without the IPv4-mapped IPv6 prefix, so `::ffff:10.0.0.1` matches `10.0.0.1`. */
export function plainAddress(host: string | undefined): string {
  if (!host) return "";
  return host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host;
}

function xmlAnswer(
  res: ServerResponse,
  status: number,
  description: string,
  retryAfterSeconds = 5,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = description.replace(/[<>&]/g, " ");
  const body =
    `<?xml version="1.0" encoding="UTF-8"?><${ENVELOPE.root}>` +
    `<${ENVELOPE.status}>${status}</${ENVELOPE.status}>` +
    `<${ENVELOPE.description}>${text}</${ENVELOPE.description}></${ENVELOPE.root}>`;
  const headers: Record<string, string | number> = {
    "content-type": "application/xml; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  };
  if (status === 503 || status === 429) headers["retry-after"] = retryAfterSeconds;
  if (status !== 200) headers.connection = "close";
  res.writeHead(status, headers);
  res.end(body);
}

/** Query parameter or header, case-insensitively (ehome-2.0 §8 rule 3: lenient in). */
function field(url: URL, req: IncomingMessage, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of url.searchParams) if (k.toLowerCase() === lower && v) return v.trim();
  const h = req.headers[lower];
  const v = Array.isArray(h) ? h[0] : h;
  return v?.trim() || undefined;
}

/** Counts, caps, hashes and (for pictures) checks the magic of the bytes on their way to S3. */
function createGuard(kind: MediaKind, max: number) {
  const hash = createHash("sha256");
  let size = 0;
  let head = Buffer.alloc(0);
  const checkMagic = kind === "picture";
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      size += chunk.length;
      if (size > max) return cb(new UploadRefused(413, `larger than ${max} bytes`));
      if (checkMagic && head.length < JPEG_MAGIC.length) {
        head = Buffer.concat([head, chunk.subarray(0, JPEG_MAGIC.length - head.length)]);
        if (!JPEG_MAGIC.subarray(0, head.length).equals(head)) {
          return cb(new UploadRefused(415, "not a JPEG picture"));
        }
      }
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (size === 0) return cb(new UploadRefused(400, "empty body"));
      if (checkMagic && head.length < JPEG_MAGIC.length) {
        return cb(new UploadRefused(415, "not a JPEG picture"));
      }
      cb();
    },
  });
  return { stream, size: () => size, sha256: () => hash.digest("hex") };
}

export function createUploadRoutes(
  config: UploadRoutesConfig,
  deps: UploadRoutesDeps,
): UploadRoutes {
  const now = deps.now ?? Date.now;
  const uuid = deps.uuid ?? randomUUID;
  const log = deps.log ?? silentLogger;
  const limiter = createRateLimiter({ intervalMs: 60_000 });
  const partSize = Math.max(5 * 1024 * 1024, config.partSizeBytes ?? 5 * 1024 * 1024);
  const c: UploadCounters = {
    accepted: 0,
    bytes: 0,
    badRequest: 0,
    unknownAddress: 0,
    tooLarge: 0,
    wrongContent: 0,
    storageFailed: 0,
    aborted: 0,
    busy: 0,
    rateLimited: 0,
    inFlight: 0,
  };
  const rate = config.ratePerAddress ?? 0;
  const perAddress = createAddressLimiter({
    ratePerSecond: rate,
    burst: Math.max(1, rate * 5),
    limitLoopback: config.limitLoopback ?? false,
  });
  const maxConcurrent = Math.max(1, config.maxConcurrentUploads ?? 32);
  const F = UPLOAD.fields;

  const refuse = (res: ServerResponse, req: IncomingMessage, err: UploadRefused): void => {
    const peer = req.socket?.remoteAddress;
    if (err.status === 400) c.badRequest++;
    else if (err.status === 403) c.unknownAddress++;
    else if (err.status === 413) c.tooLarge++;
    else c.wrongContent++;
    const { allowed } = limiter.allow(`refused:${err.status}`);
    if (allowed) {
      log.warn("upload refused", {
        status: err.status,
        reason: err.message,
        peer,
      });
    }
    xmlAnswer(res, err.status, err.message);
    // The body is not wanted: read and discard what still comes until the connection closes.
    req.resume();
  };

  const handle = async (
    kind: MediaKind,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://device");
    const peer = plainAddress(req.socket.remoteAddress);
    const deviceId = field(url, req, F.deviceId);
    const mediaId = field(url, req, kind === "picture" ? F.picId : F.videoId);
    const channelText = field(url, req, F.channel);
    const time = field(url, req, F.time);
    const max = kind === "picture" ? config.maxPictureBytes : config.maxVideoBytes;

    if (!deviceId || deviceId.length > 256) {
      return refuse(res, req, new UploadRefused(400, `${F.deviceId} is required`));
    }
    if (!mediaId || !MediaId.safeParse(mediaId).success) {
      const name = kind === "picture" ? F.picId : F.videoId;
      return refuse(res, req, new UploadRefused(400, `${name} is required (1-128 printable)`));
    }
    let channel: number | undefined;
    if (channelText !== undefined) {
      if (!/^\d{1,5}$/.test(channelText)) {
        return refuse(res, req, new UploadRefused(400, `${F.channel} must be a number`));
      }
      channel = Number(channelText);
    }
    if (!deps.isDeviceAddress(deviceId, peer)) {
      return refuse(res, req, new UploadRefused(403, "not the address of a registered device"));
    }
    const length = Number(req.headers["content-length"]);
    if (Number.isFinite(length) && length > max + 64 * 1024) {
      // Multipart framing adds a little; anything beyond the cap plus that is refused unread.
      return refuse(res, req, new UploadRefused(413, `larger than ${max} bytes`));
    }
    const contentTypeHeader = req.headers["content-type"];
    const boundary = multipartBoundary(contentTypeHeader);
    if (/^multipart\//i.test(contentTypeHeader ?? "") && !boundary) {
      return refuse(res, req, new UploadRefused(400, "multipart body without a boundary"));
    }
    let partType: string | undefined;
    const stages: Transform[] = [];
    if (boundary) {
      stages.push(createFirstFilePartStream(boundary, (info) => (partType = info.contentType)));
    }
    const guard = createGuard(kind, max);
    const body = new PassThrough();
    const started = now();
    const key = mediaObjectKey(kind, deviceId, mediaId, new Date(started));
    const declared = (boundary ? partType : contentTypeHeader)?.split(";")[0]?.trim();
    const contentType =
      kind === "video" && declared && /^video\/[\w.+-]+$/i.test(declared)
        ? declared.toLowerCase()
        : MEDIA_FILE_TYPES[kind].contentType;

    const upload = new Upload({
      client: deps.s3(),
      params: { Bucket: config.bucket, Key: key, Body: body, ContentType: contentType },
      partSize,
      queueSize: config.queueSize ?? 2,
      leavePartsOnError: false,
    });
    // The stream's first failure (ours: a refusal; the device's: a broken body) stops the upload.
    // The request is piped in, not part of the pipeline: a refusal must not destroy the socket
    // the answer goes out on.
    let streamError: unknown;
    const entry = stages[0] ?? guard.stream;
    req.on("error", (err) => (entry as Transform).destroy(err));
    req.on("aborted", () => (entry as Transform).destroy(new Error("request aborted")));
    req.pipe(entry);
    const streamDone = new Promise<void>((resolve) => {
      pipeline([...stages, guard.stream, body], (err) => {
        if (err) {
          streamError = err;
          void upload.abort().catch(() => {});
        }
        resolve();
      });
    });
    let storageError: unknown;
    // Which failed first: a stream failure aborts the upload (so S3 reports an error too), and an
    // S3 failure ends the stream (so the pipeline reports one too).
    let storageFirst = false;
    try {
      await upload.done();
    } catch (err) {
      storageError = err;
      storageFirst = streamError === undefined;
      // S3 stopped reading: unblock the pipeline so the request is released.
      body.destroy();
    }
    await streamDone;

    if (streamError instanceof UploadRefused || streamError instanceof MultipartError) {
      c.aborted++;
      if (streamError instanceof MultipartError) {
        return refuse(res, req, new UploadRefused(400, streamError.message));
      }
      return refuse(res, req, streamError);
    }
    if (streamError !== undefined && !storageFirst) {
      c.aborted++;
      // The device went away or sent a broken body: nothing useful to answer.
      if (!res.writableEnded) xmlAnswer(res, 400, "upload interrupted");
      return;
    }
    if (storageError !== undefined) {
      c.storageFailed++;
      const { allowed } = limiter.allow("storage");
      if (allowed) log.error("upload to S3 failed", { err: storageError, key });
      // Not durable: the device must retry (never 200).
      xmlAnswer(res, 503, "storage unavailable, retry later");
      return;
    }
    const size = guard.size();
    c.accepted++;
    c.bytes += size;
    const base = {
      type: "media-uploaded" as const,
      eventId: uuid(),
      agentId: config.agentId,
      deviceId,
      ...(channel === undefined ? {} : { channel }),
      ...(time === undefined ? {} : { time: time.slice(0, 32) }),
      bucket: config.bucket,
      key,
      size,
      contentType,
      sha256: guard.sha256(),
      uploadedAt: new Date(now()).toISOString(),
    };
    const event: MediaUploadedEvent =
      kind === "picture"
        ? { ...base, kind: "picture", picId: mediaId }
        : { ...base, kind: "video", videoId: mediaId };
    try {
      const r = deps.events.emit(event);
      if (r instanceof Promise) r.catch((err: unknown) => log.error("media event failed", { err }));
    } catch (err) {
      log.error("media event failed", { err });
    }
    // After the event: with a journalled sink it is on disk before the device hears "stored".
    xmlAnswer(res, 200, "OK");
  };

  /** Bounds the uploads streamed at once (memory: parts buffered per upload). */
  const bounded = async (
    kind: MediaKind,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> => {
    const peer = plainAddress(req.socket.remoteAddress);
    const at = now();
    if (!perAddress.allow(peer, at)) {
      c.rateLimited++;
      const { allowed } = limiter.allow(`rate:${peer}`);
      if (allowed) log.warn("uploads refused: rate per address", { peer });
      xmlAnswer(
        res,
        429,
        "too many uploads from this address",
        perAddress.retryAfterSeconds(peer, at),
      );
      req.resume();
      return;
    }
    if (c.inFlight >= maxConcurrent) {
      c.busy++;
      xmlAnswer(res, 503, "too many uploads, retry later");
      req.resume();
      return;
    }
    c.inFlight++;
    try {
      await handle(kind, req, res);
    } finally {
      c.inFlight--;
    }
  };

  return {
    routes: [
      {
        method: "POST",
        path: UPLOAD.paths.picture,
        handle: (req, res) => bounded("picture", req, res),
      },
      {
        method: "POST",
        path: UPLOAD.paths.video,
        handle: (req, res) => bounded("video", req, res),
      },
    ],
    counters: () => ({ ...c }),
  };
}

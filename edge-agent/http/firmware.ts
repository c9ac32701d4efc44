import type { IncomingMessage, ServerResponse } from "node:http";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { firmwareObjectKey } from "../../lib/contracts/storage.ts";
import {
  FIRMWARE_PATH_PREFIX,
  type FirmwareTokenClaims,
  verifyFirmwareToken,
} from "../../lib/contracts/upgrades.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { DownloadCounter } from "../upgrades/progress.ts";
import { type DeviceHttpRoute, json } from "./device-http.ts";

/**
 * `GET /fw/<token>` on the device HTTP port (issue 6 item 2; ehome-2.0 §8: devices get short URLs
 * on the agent, never an S3 presigned URL). The token (lib/contracts/upgrades.ts) must verify, be
 * unexpired, and name a device that has a session on this agent from the request's source address.
 * The firmware object is streamed from S3 without buffering; a single `Range` is passed through
 * (206 + `Content-Range`; 416 beyond the file); other Range forms are ignored (200, whole file).
 *
 * Answers (JSON `{code, message}` on errors):
 * - 403 `FIRMWARE_TOKEN_EXPIRED` / `FIRMWARE_TOKEN_INVALID` (bad signature or malformed) /
 *   `FIRMWARE_TOKEN_FOREIGN` (the device is not online here from this address)
 * - 404 `FIRMWARE_NOT_FOUND` (no object for the token's firmware)
 * - 416 `RANGE_NOT_SATISFIABLE` with `Content-Range: bytes *\/<size>`
 */

export const FIRMWARE_HTTP_ERRORS = {
  FIRMWARE_TOKEN_EXPIRED: 403,
  FIRMWARE_TOKEN_INVALID: 403,
  FIRMWARE_TOKEN_FOREIGN: 403,
  FIRMWARE_NOT_FOUND: 404,
  RANGE_NOT_SATISFIABLE: 416,
} as const;

export interface FirmwareRouteCounters {
  /** Responses that started streaming (200 or 206). */
  served: number;
  /** Of `served`: ended before their last byte (client gone, S3 error). */
  interrupted: number;
  /** 403s, by reason. */
  refusedExpired: number;
  refusedInvalid: number;
  refusedForeign: number;
  notFound: number;
  rangeNotSatisfiable: number;
}

export interface FirmwareRoute extends DeviceHttpRoute {
  counters(): FirmwareRouteCounters;
}

export interface FirmwareRouteConfig {
  /** Token key (`parseFirmwareTokenKey(FIRMWARE_TOKEN_KEY)`). */
  key: Uint8Array;
  /** Media bucket holding `firmwareObjectKey(id)`. */
  bucket: string;
}

export interface FirmwareRouteDeps {
  s3: () => Pick<S3Client, "send">;
  /** The agent's sessions: the source address of a download must be the device's. */
  sessions: { get(deviceId: string): { host: string } | undefined };
  progress: {
    download(claims: FirmwareTokenClaims, totalBytes: number, start: number): DownloadCounter;
  };
  log?: Logger;
  now?: () => number;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`. */
function plainHost(host: string | undefined): string {
  return (host ?? "").replace(/^::ffff:/i, "");
}

/** One `bytes=a-b` / `bytes=a-` / `bytes=-n` range, or undefined (ignored), or "unsatisfiable". */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== "" && Number(m[2]) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

const errorName = (err: unknown) => (err as { name?: string } | undefined)?.name;

export function createFirmwareRoute(
  config: FirmwareRouteConfig,
  deps: FirmwareRouteDeps,
): FirmwareRoute {
  const now = deps.now ?? Date.now;
  const log = deps.log ?? silentLogger;
  const c: FirmwareRouteCounters = {
    served: 0,
    interrupted: 0,
    refusedExpired: 0,
    refusedInvalid: 0,
    refusedForeign: 0,
    notFound: 0,
    rangeNotSatisfiable: 0,
  };
  const COUNTER = {
    FIRMWARE_TOKEN_EXPIRED: "refusedExpired",
    FIRMWARE_TOKEN_INVALID: "refusedInvalid",
    FIRMWARE_TOKEN_FOREIGN: "refusedForeign",
    FIRMWARE_NOT_FOUND: "notFound",
    RANGE_NOT_SATISFIABLE: "rangeNotSatisfiable",
  } as const satisfies Record<keyof typeof FIRMWARE_HTTP_ERRORS, keyof FirmwareRouteCounters>;
  const refuse = (
    res: ServerResponse,
    code: keyof typeof FIRMWARE_HTTP_ERRORS,
    message: string,
  ) => {
    c[COUNTER[code]]++;
    json(res, FIRMWARE_HTTP_ERRORS[code], { code, message });
  };

  return {
    method: "GET",
    path: FIRMWARE_PATH_PREFIX,
    counters: () => ({ ...c }),
    async handle(req: IncomingMessage, res: ServerResponse, path: string) {
      const token = path.slice(FIRMWARE_PATH_PREFIX.length);
      const v = verifyFirmwareToken(config.key, token, now());
      if (!v.ok) {
        if (v.error === "expired") return refuse(res, "FIRMWARE_TOKEN_EXPIRED", "the link expired");
        return refuse(res, "FIRMWARE_TOKEN_INVALID", "not a valid firmware link");
      }
      const { claims } = v;
      const session = deps.sessions.get(claims.deviceId);
      const from = plainHost(req.socket.remoteAddress);
      if (!session || plainHost(session.host) !== from) {
        return refuse(res, "FIRMWARE_TOKEN_FOREIGN", "the link is not for this device");
      }
      const s3 = deps.s3();
      const Key = firmwareObjectKey(claims.firmwareId);
      let size: number;
      let etag: string | undefined;
      try {
        const head = await s3.send(new HeadObjectCommand({ Bucket: config.bucket, Key }));
        size = head.ContentLength ?? 0;
        etag = head.ETag;
      } catch (err) {
        const name = errorName(err);
        if (name === "NotFound" || name === "NoSuchKey") {
          return refuse(res, "FIRMWARE_NOT_FOUND", "no such firmware");
        }
        throw err;
      }
      const range = parseRange(req.headers.range, size);
      if (range === "unsatisfiable") {
        res.setHeader("content-range", `bytes */${size}`);
        return refuse(res, "RANGE_NOT_SATISFIABLE", `the firmware has ${size} bytes`);
      }
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      const abort = new AbortController();
      res.once("close", () => abort.abort());
      const object = await s3.send(
        new GetObjectCommand({
          Bucket: config.bucket,
          Key,
          ...(range ? { Range: `bytes=${start}-${end}` } : {}),
          ...(etag ? { IfMatch: etag } : {}),
        }),
        { abortSignal: abort.signal },
      );
      const body = object.Body as NodeJS.ReadableStream | undefined;
      if (!body) throw new Error("S3 answered without a body");
      const length = end - start + 1;
      res.writeHead(range ? 206 : 200, {
        "content-type": "application/octet-stream",
        "content-length": size === 0 ? 0 : length,
        "accept-ranges": "bytes",
        "cache-control": "no-store",
        ...(etag ? { etag } : {}),
        ...(range ? { "content-range": `bytes ${start}-${end}/${size}` } : {}),
      });
      c.served++;
      const counter = deps.progress.download(claims, size, start);
      let sent = 0;
      const count = new Transform({
        transform(chunk: Buffer, _enc, done) {
          sent += chunk.length;
          counter.add(chunk.length);
          done(null, chunk);
        },
      });
      try {
        await pipeline(body, count, res);
      } catch (err) {
        log.debug("firmware download ended early", {
          deviceId: claims.deviceId,
          sent,
          err: errorName(err),
        });
        res.destroy();
      } finally {
        if (sent !== length) c.interrupted++;
        counter.end(sent === length && end === size - 1);
      }
    },
  };
}

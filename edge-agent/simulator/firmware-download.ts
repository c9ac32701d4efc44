import { createHash } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";

/**
 * A simulated device's firmware fetch (ehome-2.0 §8 row UPDATE: an HTTP URL, `FileSize`, `MD5`).
 * Streams the body through an MD5 without keeping it; an interrupted transfer resumes with
 * `Range: bytes=<received>-`, as a device on a flaky link would. `https://` URLs are verified
 * against the system's CAs, or against `tls.ca` (a private or self-signed CA, issue 8 item 7).
 */

export interface FirmwareDownloadOptions {
  /** `FileSize` from UPDATE: more bytes than this are refused. */
  expectedSize: number | undefined;
  /** Drop the first connection after this many bytes (0 = never), then resume. */
  interruptAt: number;
  /** Called with each chunk's length. */
  onBytes(n: number): void;
  signal: AbortSignal;
  /** Connections tried before giving up. Default 4. */
  maxConnections?: number;
  /** Cap when no FileSize is given. Default 256 MiB. */
  maxBytes?: number;
  /** For `https://`: trusted CA certificates (PEM) instead of the system's, or no verification. */
  tls?: { ca?: string | undefined; insecure?: boolean };
}

/** One GET (node:http or node:https: fetch cannot take a CA per request without undici). */
function get(
  url: string,
  headers: Record<string, string>,
  o: FirmwareDownloadOptions,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const secure = url.startsWith("https:");
    const options = {
      method: "GET",
      headers,
      signal: o.signal,
      // One connection per attempt, closed after it: nothing pooled outlives the download.
      agent: false,
      ...(secure && o.tls?.ca ? { ca: o.tls.ca } : {}),
      ...(secure && o.tls?.insecure ? { rejectUnauthorized: false } : {}),
    };
    const req = (secure ? httpsRequest : httpRequest)(url, options, resolve);
    req.on("error", reject);
    req.end();
  });
}

export type FirmwareDownloadResult =
  | { ok: true; size: number; md5: string }
  | { ok: false; reason: string };

/** Total size from `Content-Range: bytes a-b/total`. */
function rangeTotal(header: string | null): { start: number; total: number } | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+)$/.exec(header ?? "");
  return m ? { start: Number(m[1]), total: Number(m[2]) } : undefined;
}

export async function downloadFirmware(
  url: string,
  o: FirmwareDownloadOptions,
): Promise<FirmwareDownloadResult> {
  const hash = createHash("md5");
  const cap = o.expectedSize ?? o.maxBytes ?? 256 * 1024 * 1024;
  let received = 0;
  let total: number | undefined;
  let interrupt = o.interruptAt;
  for (let connection = 0; connection < (o.maxConnections ?? 4); connection++) {
    let res: IncomingMessage;
    try {
      res = await get(url, received > 0 ? { range: `bytes=${received}-` } : {}, o);
    } catch (err) {
      if (o.signal.aborted) return { ok: false, reason: "aborted" };
      return { ok: false, reason: `fetch failed: ${(err as Error).message}` };
    }
    const header = (name: string) => {
      const v = res.headers[name];
      return typeof v === "string" ? v : null;
    };
    if (received === 0 && res.statusCode === 200) {
      total = Number(header("content-length") ?? Number.NaN);
    } else if (received > 0 && res.statusCode === 206) {
      const r = rangeTotal(header("content-range"));
      if (!r || r.start !== received) {
        res.destroy();
        return { ok: false, reason: "resume answered with the wrong range" };
      }
      total = r.total;
    } else {
      res.destroy();
      return { ok: false, reason: `HTTP ${res.statusCode}` };
    }
    let dropped = false;
    try {
      for await (const value of res as AsyncIterable<Buffer>) {
        let chunk: Uint8Array = value;
        if (interrupt > 0 && received + chunk.length >= interrupt) {
          chunk = chunk.subarray(0, interrupt - received);
          dropped = true;
        }
        received += chunk.length;
        if (received > cap) {
          res.destroy();
          return { ok: false, reason: `more than ${cap} bytes` };
        }
        hash.update(chunk);
        o.onBytes(chunk.length);
        if (dropped) {
          interrupt = 0;
          res.destroy();
          break;
        }
      }
    } catch (err) {
      if (o.signal.aborted) return { ok: false, reason: "aborted" };
      // A connection that broke mid-body resumes from what arrived.
      dropped = true;
      void err;
    }
    // A body that ended early (the server closed the connection) resumes like a dropped one.
    if (!dropped && Number.isFinite(total) && received < total!) dropped = true;
    if (!dropped) {
      if (Number.isFinite(total) && received !== total) {
        return { ok: false, reason: `received ${received} of ${total} bytes` };
      }
      return { ok: true, size: received, md5: hash.digest("hex") };
    }
  }
  return { ok: false, reason: "too many interrupted connections" };
}

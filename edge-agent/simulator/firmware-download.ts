import { createHash } from "node:crypto";

/**
 * A simulated device's firmware fetch (ehome-2.0 §8 row UPDATE: an HTTP URL, `FileSize`, `MD5`).
 * Streams the body through an MD5 without keeping it; an interrupted transfer resumes with
 * `Range: bytes=<received>-`, as a device on a flaky link would.
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
    let res: Response;
    try {
      res = await fetch(url, {
        signal: o.signal,
        headers: received > 0 ? { range: `bytes=${received}-` } : {},
      });
    } catch (err) {
      if (o.signal.aborted) return { ok: false, reason: "aborted" };
      return { ok: false, reason: `fetch failed: ${(err as Error).message}` };
    }
    if (received === 0 && res.status === 200) {
      total = Number(res.headers.get("content-length") ?? Number.NaN);
    } else if (received > 0 && res.status === 206) {
      const r = rangeTotal(res.headers.get("content-range"));
      if (!r || r.start !== received) {
        await res.body?.cancel();
        return { ok: false, reason: "resume answered with the wrong range" };
      }
      total = r.total;
    } else {
      await res.body?.cancel();
      return { ok: false, reason: `HTTP ${res.status}` };
    }
    if (!res.body) return { ok: false, reason: "no body" };
    const reader = res.body.getReader();
    let dropped = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        let chunk = value;
        if (interrupt > 0 && received + chunk.length >= interrupt) {
          chunk = chunk.subarray(0, interrupt - received);
          dropped = true;
        }
        received += chunk.length;
        if (received > cap) {
          await reader.cancel();
          return { ok: false, reason: `more than ${cap} bytes` };
        }
        hash.update(chunk);
        o.onBytes(chunk.length);
        if (dropped) {
          interrupt = 0;
          await reader.cancel();
          break;
        }
      }
    } catch (err) {
      if (o.signal.aborted) return { ok: false, reason: "aborted" };
      // A connection that broke mid-body resumes from what arrived.
      dropped = true;
      void err;
    }
    if (!dropped) {
      if (Number.isFinite(total) && received !== total) {
        return { ok: false, reason: `received ${received} of ${total} bytes` };
      }
      return { ok: true, size: received, md5: hash.digest("hex") };
    }
  }
  return { ok: false, reason: "too many interrupted connections" };
}

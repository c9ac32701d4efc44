import { request } from "node:http";
import { UPLOAD } from "../signalling/catalogue.ts";

/**
 * A device's picture/video upload (ehome-2.0 §8 upload row): `POST /pictures` or `POST /videos` to
 * the `PictureServer`:`PictureServerPort` of the REGISTER reply, names in the query, the raw file
 * as the body, from the device's own address (the agent accepts uploads only from it).
 */

export interface UploadTarget {
  host: string;
  port: number;
}

export interface UploadRequest {
  kind: "picture" | "video";
  deviceId: string;
  mediaId: string;
  channel: number;
  /** Device-local `YYYY-MM-DD HH:MM:SS`. */
  time: string;
  body: Uint8Array;
  /** Local address to send from (the device's socket address). */
  localAddress?: string;
}

const CONTENT_TYPES = { picture: "image/jpeg", video: "video/mp2p" } as const;
const TIMEOUT_MS = 30_000;

/** Resolves with the HTTP status, or 0 when the request failed before an answer. Never rejects. */
export function uploadMedia(target: UploadTarget, u: UploadRequest): Promise<number> {
  const f = UPLOAD.fields;
  const query = new URLSearchParams({
    [f.deviceId]: u.deviceId,
    [u.kind === "picture" ? f.picId : f.videoId]: u.mediaId,
    [f.channel]: String(u.channel),
    [f.time]: u.time,
  });
  const path = `${u.kind === "picture" ? UPLOAD.paths.picture : UPLOAD.paths.video}?${query}`;
  return new Promise((resolve) => {
    const req = request(
      {
        host: target.host,
        port: target.port,
        method: "POST",
        path,
        localAddress: u.localAddress,
        agent: false,
        timeout: TIMEOUT_MS,
        headers: {
          "content-type": CONTENT_TYPES[u.kind],
          "content-length": u.body.length,
          connection: "close",
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", () => resolve(0));
      },
    );
    req.on("timeout", () => req.destroy(new Error("upload timed out")));
    req.on("error", () => resolve(0));
    req.end(u.body);
  });
}

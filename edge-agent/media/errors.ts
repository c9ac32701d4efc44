import { ApiError } from "../../lib/contracts/errors.ts";

/**
 * Stable codes of the media module's errors (style rule 6). docs/errors.md ("Media") lists each
 * one; test/edge-agent/media/errors-doc.test.ts keeps the two in step. MEDIA_PORTS_EXHAUSTED is
 * also an API error (503, lib/contracts/errors.ts).
 */
export const MEDIA_ERROR_CODES = {
  MEDIA_PORTS_EXHAUSTED: "every port of EHOME_MEDIA_PORTS is leased or cannot be bound",
  MEDIA_ACCEPT_TIMEOUT: "the device did not connect to the session's port in time",
  MEDIA_LEASE_RELEASED: "the lease was released before the device connected",
  MEDIA_POOL_CLOSED: "the port pool is closed (agent shutdown)",
  // Media commands (manager.ts, media-commands.ts): `CommandResult.error.code`.
  MEDIA_NO_SESSION: "the device accepted the stream but its answer carried no Session",
  MEDIA_TRANSPORT_UNSUPPORTED: "the stream asks for a transport this agent does not serve",
  MEDIA_DOWNLOAD_UNAVAILABLE: "a download needs the media bucket (MEDIA_BUCKET), not configured",
  STREAM_NOT_FOUND: "no stream with this id on this agent (never started, or ended)",
  STREAM_NOT_PLAYBACK: "the control does not apply to this kind of stream",
  // Stream end reasons (`StreamEvent.reason.code`) that are failures.
  MEDIA_SOCKET_ERROR: "the device's media connection broke",
  MEDIA_UPLOAD_FAILED: "the download could not be stored in S3 (the multipart upload was aborted)",
  // Viewer HTTP server (viewer-http.ts): `{code, message}` bodies.
  STREAM_TOKEN_MISSING: "401: the viewer URL has no token",
  STREAM_TOKEN_INVALID: "401: the token is malformed or its signature is wrong",
  STREAM_TOKEN_EXPIRED: "403: the token has expired",
  STREAM_TOKEN_FOREIGN: "403: the token was minted for another stream",
  STREAM_ENDED: "410: the stream has ended",
  STREAM_NOT_VIEWABLE: "409: a download has no viewer stream",
  VIEWERS_EXHAUSTED: "503: the stream or the agent has its maximum number of viewers",
} as const;

export type MediaErrorCode = keyof typeof MEDIA_ERROR_CODES;

/** No pool port could be leased: every one is in use or fails to bind. Maps to HTTP 503. */
export class MediaPortsExhaustedError extends ApiError {
  constructor(details: { size: number; leased: number; bindFailures: number }) {
    super(
      "MEDIA_PORTS_EXHAUSTED",
      `no free media port (${details.leased} of ${details.size} leased, ${details.bindFailures} failed to bind)`,
      details,
    );
    this.name = "MediaPortsExhaustedError";
  }
}

type LeaseErrorCode = "MEDIA_ACCEPT_TIMEOUT" | "MEDIA_LEASE_RELEASED" | "MEDIA_POOL_CLOSED";

/** A lease ended before a device connection was accepted. */
export class MediaConnectionError extends Error {
  readonly code: LeaseErrorCode;
  constructor(code: LeaseErrorCode, message?: string) {
    super(message ?? MEDIA_ERROR_CODES[code]);
    this.name = "MediaConnectionError";
    this.code = code;
  }
}

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

/** A lease ended before a device connection was accepted. */
export class MediaConnectionError extends Error {
  readonly code: Exclude<MediaErrorCode, "MEDIA_PORTS_EXHAUSTED">;
  constructor(code: Exclude<MediaErrorCode, "MEDIA_PORTS_EXHAUSTED">, message?: string) {
    super(message ?? MEDIA_ERROR_CODES[code]);
    this.name = "MediaConnectionError";
    this.code = code;
  }
}

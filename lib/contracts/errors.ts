/**
 * Stable error codes with their HTTP status (style rule 6). docs/errors.md lists every one, and a
 * test keeps the two in step.
 */
export const ERROR_CODES = {
  UNAUTHORIZED: { status: 401, message: "missing or invalid credentials" },
  VALIDATION_FAILED: { status: 422, message: "the request is not valid" },
  BAD_REQUEST: { status: 400, message: "the request could not be read" },
  NOT_FOUND: { status: 404, message: "no such route" },
  DEVICE_NOT_FOUND: { status: 404, message: "no such device" },
  COMMAND_NOT_FOUND: { status: 404, message: "no such command" },
  ALARM_NOT_FOUND: { status: 404, message: "no such alarm" },
  CAPTURE_NOT_FOUND: { status: 404, message: "no such capture" },
  DEVICE_OFFLINE: { status: 409, message: "the device is offline" },
  DEVICE_ERROR: { status: 502, message: "the device answered with an error" },
  DEVICE_TIMEOUT: { status: 504, message: "the device did not answer in time" },
  FIRMWARE_NOT_FOUND: { status: 404, message: "no such firmware" },
  FIRMWARE_NOT_AVAILABLE: { status: 409, message: "the firmware is not available" },
  FIRMWARE_IN_USE: { status: 409, message: "a campaign still uses the firmware" },
  FIRMWARE_NOT_UPLOADED: { status: 409, message: "the firmware object has not been uploaded" },
  FIRMWARE_VERIFICATION_FAILED: {
    status: 422,
    message: "the uploaded firmware does not match its declared size or SHA-256",
  },
  CAMPAIGN_NOT_FOUND: { status: 404, message: "no such upgrade campaign" },
  CAMPAIGN_FINISHED: { status: 409, message: "the upgrade campaign has already finished" },
  CAMPAIGN_NO_TARGETS: { status: 422, message: "the campaign selects no devices" },
  PAYLOAD_TOO_LARGE: { status: 413, message: "the request body is too large" },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "the request body must be application/json" },
  RATE_LIMITED: { status: 429, message: "too many requests" },
  MEDIA_PORTS_EXHAUSTED: { status: 503, message: "no free media port on the agent" },
  STREAM_NOT_FOUND: { status: 404, message: "no such stream" },
  DOWNLOAD_NOT_FOUND: { status: 404, message: "no such download" },
  STREAM_ENDED: { status: 409, message: "the stream has ended" },
  STREAM_NOT_PLAYBACK: { status: 409, message: "the control applies to another kind of stream" },
  DOWNLOAD_NOT_READY: { status: 409, message: "the download has not completed" },
  TALK_BUSY: { status: 409, message: "the device channel already has a talk session" },
  TALK_NOT_FOUND: { status: 404, message: "no such talk" },
  INTERNAL: { status: 500, message: "internal error" },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error that maps to an API response `{code, message, details?}`. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;
  constructor(code: ErrorCode, message?: string, details?: unknown) {
    super(message ?? ERROR_CODES[code].message);
    this.name = "ApiError";
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = details;
  }
}

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
  PAYLOAD_TOO_LARGE: { status: 413, message: "the request body is too large" },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "the request body must be application/json" },
  RATE_LIMITED: { status: 429, message: "too many requests" },
  MEDIA_PORTS_EXHAUSTED: { status: 503, message: "no free media port on the agent" },
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

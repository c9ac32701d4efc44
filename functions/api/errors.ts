import type { ZodError } from "zod";
import { ApiError, ERROR_CODES, type ErrorCode } from "../shared/errors.ts";
import { ErrorBody } from "./schemas.ts";

/** Error responses: the JSON body, validation details, and their OpenAPI documentation. */

export interface ErrorResponseBody {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export function errorBody(error: ApiError): ErrorResponseBody {
  return {
    code: error.code,
    message: error.message,
    ...(error.details === undefined ? {} : { details: error.details }),
  };
}

export type ValidationLocation = "body" | "query" | "path" | "header";

const TARGET_LOCATION: Record<string, ValidationLocation> = {
  json: "body",
  form: "body",
  query: "query",
  param: "path",
  header: "header",
};

/** zod issues → `[{in, path, message}]` with a dotted path (`params.channel`, `labels.site`). */
export function validationError(error: ZodError, target: string): ApiError {
  const location = TARGET_LOCATION[target] ?? "body";
  return new ApiError(
    "VALIDATION_FAILED",
    "the request is not valid",
    error.issues.map((issue) => ({
      in: location,
      path: issue.path.map(String).join("."),
      message: issue.message,
    })),
  );
}

/** OpenAPI `responses` entries for the error codes a route can answer with. */
export function errorResponses(...codes: ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      status,
      {
        description: list.map((code) => `\`${code}\`: ${ERROR_CODES[code].message}`).join("; "),
        content: { "application/json": { schema: ErrorBody } },
      },
    ]),
  );
}

/** Codes any route can answer with (auth is added in front by the runtime). */
export const COMMON_ERRORS: ErrorCode[] = ["UNAUTHORIZED", "INTERNAL"];

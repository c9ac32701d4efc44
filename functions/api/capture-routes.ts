import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { Capture, CaptureIdParam, CaptureQuery, CaptureRequest } from "./alarm-schemas.ts";
import type { CapturesService } from "./captures-service.ts";
import { COMMON_ERRORS, errorResponses } from "./errors.ts";
import { DeviceIdParam } from "./schemas.ts";

const json = <T>(schema: T) => ({ "application/json": { schema } });

/** What a capture-making POST answers (captures, and stored pictures fetched as captures). */
export const CAPTURE_SUBMIT_RESPONSES = {
  200: { description: "Ready within `wait`, with a presigned URL", content: json(Capture) },
  202: {
    description: "Accepted (no `wait`, or still pending when it ended)",
    content: json(Capture),
  },
  ...errorResponses(
    "DEVICE_NOT_FOUND",
    "DEVICE_OFFLINE",
    "DEVICE_ERROR",
    "DEVICE_TIMEOUT",
    "VALIDATION_FAILED",
    "BAD_REQUEST",
    "UNSUPPORTED_MEDIA_TYPE",
    "PAYLOAD_TOO_LARGE",
    ...COMMON_ERRORS,
  ),
};

export const submitCapture = createRoute({
  method: "post",
  path: "/devices/{deviceId}/captures",
  summary: "Take a picture (MANUALSNAP) to S3; `?wait=N` returns the ready capture inline",
  request: {
    params: DeviceIdParam,
    query: CaptureQuery,
    body: { content: json(CaptureRequest), required: true },
  },
  responses: CAPTURE_SUBMIT_RESPONSES,
});

export const getCapture = createRoute({
  method: "get",
  path: "/captures/{captureId}",
  summary: "One capture: its state, the reason of a failure, or a presigned URL when ready",
  request: { params: CaptureIdParam },
  responses: {
    200: { description: "The capture", content: json(Capture) },
    ...errorResponses("CAPTURE_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export function registerCaptureRoutes(app: OpenAPIHono, captures: CapturesService): void {
  app.openapi(submitCapture, async (c) => {
    const { status, capture } = await captures.submit(
      c.req.valid("param").deviceId,
      c.req.valid("json"),
      c.req.valid("query").wait,
    );
    return status === 200 ? c.json(capture, 200) : c.json(capture, 202);
  });
  app.openapi(getCapture, async (c) =>
    c.json(await captures.get(c.req.valid("param").captureId), 200),
  );
}

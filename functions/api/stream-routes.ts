import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { StreamControlRequest, StreamRequest } from "../../lib/contracts/media.ts";
import { COMMON_ERRORS, errorResponses, validationError } from "./errors.ts";
import {
  Download,
  Stream,
  StreamControlBody,
  StreamControlResult,
  StreamIdParam,
  StreamRequestBody,
  StreamStarted,
} from "./media-schemas.ts";
import { DeviceIdParam } from "./schemas.ts";
import type { StreamsService } from "./streams-service.ts";

const json = <T>(schema: T) => ({ "application/json": { schema } });

const BODY_ERRORS = ["BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE", "PAYLOAD_TOO_LARGE"] as const;

export const startStream = createRoute({
  method: "post",
  path: "/devices/{deviceId}/streams",
  summary: "Open a live, playback or download stream; viewer URLs or the download's progress URL",
  request: {
    params: DeviceIdParam,
    body: { content: json(StreamRequestBody), required: true },
  },
  responses: {
    201: { description: "The device accepted; the stream", content: json(StreamStarted) },
    ...errorResponses(
      "DEVICE_NOT_FOUND",
      "DEVICE_OFFLINE",
      "DEVICE_ERROR",
      "DEVICE_TIMEOUT",
      "MEDIA_PORTS_EXHAUSTED",
      "STREAM_ENDED",
      "VALIDATION_FAILED",
      ...BODY_ERRORS,
      ...COMMON_ERRORS,
    ),
  },
});

export const getStream = createRoute({
  method: "get",
  path: "/streams/{streamId}",
  summary: "One stream: state, viewers, bytes, bitrate",
  request: { params: StreamIdParam },
  responses: {
    200: { description: "The stream", content: json(Stream) },
    ...errorResponses("STREAM_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export const controlStream = createRoute({
  method: "post",
  path: "/streams/{streamId}/control",
  summary: "Playback controls (PLAYBACKCONTROL) or a forced key frame on a live stream",
  request: {
    params: StreamIdParam,
    body: { content: json(StreamControlBody), required: true },
  },
  responses: {
    200: { description: "The device applied it", content: json(StreamControlResult) },
    ...errorResponses(
      "STREAM_NOT_FOUND",
      "STREAM_ENDED",
      "STREAM_NOT_PLAYBACK",
      "DEVICE_OFFLINE",
      "DEVICE_ERROR",
      "DEVICE_TIMEOUT",
      "VALIDATION_FAILED",
      ...BODY_ERRORS,
      ...COMMON_ERRORS,
    ),
  },
});

export const stopStream = createRoute({
  method: "delete",
  path: "/streams/{streamId}",
  summary: "Stop a stream (BYESTREAM); idempotent",
  request: { params: StreamIdParam },
  responses: {
    200: { description: "The stream, stopped (or as it ended)", content: json(Stream) },
    ...errorResponses("STREAM_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export const getDownload = createRoute({
  method: "get",
  path: "/downloads/{streamId}",
  summary: "A download's progress; a presigned GET URL once it is completed",
  request: { params: StreamIdParam },
  responses: {
    200: { description: "The download", content: json(Download) },
    ...errorResponses("DOWNLOAD_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export function registerStreamRoutes(app: OpenAPIHono, streams: StreamsService): void {
  app.openapi(startStream, async (c) => {
    // The contract is the authority (its refinements), as for commands.
    const parsed = StreamRequest.safeParse(c.req.valid("json"));
    if (!parsed.success) throw validationError(parsed.error, "json");
    return c.json(await streams.start(c.req.valid("param").deviceId, parsed.data), 201);
  });
  app.openapi(getStream, async (c) =>
    c.json(await streams.get(c.req.valid("param").streamId), 200),
  );
  app.openapi(controlStream, async (c) => {
    const parsed = StreamControlRequest.safeParse(c.req.valid("json"));
    if (!parsed.success) throw validationError(parsed.error, "json");
    return c.json(await streams.control(c.req.valid("param").streamId, parsed.data), 200);
  });
  app.openapi(stopStream, async (c) =>
    c.json(await streams.stop(c.req.valid("param").streamId), 200),
  );
  app.openapi(getDownload, async (c) =>
    c.json(await streams.download(c.req.valid("param").streamId), 200),
  );
}

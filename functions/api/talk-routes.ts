import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { TalkRequest, TalkStartResult } from "../../lib/contracts/talk.ts";
import { COMMON_ERRORS, errorResponses, validationError } from "./errors.ts";
import { DeviceIdParam } from "./schemas.ts";
import type { TalkService } from "./talk-service.ts";

const json = <T>(schema: T) => ({ "application/json": { schema } });

const BODY_ERRORS = ["BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE", "PAYLOAD_TOO_LARGE"] as const;

const TalkRequestBody = TalkRequest;
const TalkStarted = TalkStartResult;

export const TalkIdParam = z.object({
  talkId: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_-]+$/)
    .openapi({ param: { name: "talkId", in: "path" }, example: "tk-5c1e…" }),
});

export const startTalk = createRoute({
  method: "post",
  path: "/devices/{deviceId}/talk",
  summary: "Open a voice talk (INVITETALK); a WebSocket URL on the agent for the audio",
  request: {
    params: DeviceIdParam,
    body: { content: json(TalkRequestBody), required: true },
  },
  responses: {
    201: { description: "The device accepted; the talk", content: json(TalkStarted) },
    ...errorResponses(
      "DEVICE_NOT_FOUND",
      "DEVICE_OFFLINE",
      "DEVICE_ERROR",
      "DEVICE_TIMEOUT",
      "TALK_BUSY",
      "MEDIA_PORTS_EXHAUSTED",
      "VALIDATION_FAILED",
      ...BODY_ERRORS,
      ...COMMON_ERRORS,
    ),
  },
});

export const stopTalk = createRoute({
  method: "delete",
  path: "/talk/{talkId}",
  summary: "End a voice talk (BYESTREAM); idempotent",
  request: { params: TalkIdParam },
  responses: {
    204: { description: "The talk is over" },
    ...errorResponses("TALK_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export function registerTalkRoutes(app: OpenAPIHono, talk: TalkService): void {
  app.openapi(startTalk, async (c) => {
    const parsed = TalkRequest.safeParse(c.req.valid("json"));
    if (!parsed.success) throw validationError(parsed.error, "json");
    return c.json(await talk.start(c.req.valid("param").deviceId, parsed.data), 201);
  });
  app.openapi(stopTalk, async (c) => {
    await talk.stop(c.req.valid("param").talkId);
    return c.body(null, 204);
  });
}

import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { CommandRequest } from "../../lib/contracts/commands.ts";
import type { CommandsService } from "./commands-service.ts";
import { COMMON_ERRORS, errorResponses, validationError } from "./errors.ts";
import {
  Command,
  CommandIdParam,
  CommandRequestBody,
  DeviceIdParam,
  SubmitCommandQuery,
} from "./schemas.ts";

const json = <T>(schema: T) => ({ "application/json": { schema } });

export const submitCommand = createRoute({
  method: "post",
  path: "/devices/{deviceId}/commands",
  summary: "Send a command to a device; `?wait=N` returns the result inline",
  request: {
    params: DeviceIdParam,
    query: SubmitCommandQuery,
    body: { content: json(CommandRequestBody), required: true },
  },
  responses: {
    200: {
      description: "Succeeded within `wait`; the command with its result",
      content: json(Command),
    },
    202: {
      description: "Accepted (no `wait`, or still running when `wait` ended)",
      content: json(Command),
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
  },
});

export const getCommand = createRoute({
  method: "get",
  path: "/commands/{commandId}",
  summary: "One command (a command past its deadline + grace is reported `timed-out`)",
  request: { params: CommandIdParam },
  responses: {
    200: { description: "The command", content: json(Command) },
    ...errorResponses("COMMAND_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export function registerCommandRoutes(app: OpenAPIHono, commands: CommandsService): void {
  app.openapi(submitCommand, async (c) => {
    // The documented schema loosens `set-config.params.config` (see schemas.ts); the contract
    // is the authority.
    const parsed = CommandRequest.safeParse(c.req.valid("json"));
    if (!parsed.success) throw validationError(parsed.error, "json");
    const { status, command } = await commands.submit(
      c.req.valid("param").deviceId,
      parsed.data,
      c.req.valid("query").wait,
    );
    return status === 200 ? c.json(command, 200) : c.json(command, 202);
  });

  app.openapi(getCommand, async (c) =>
    c.json(await commands.get(c.req.valid("param").commandId), 200),
  );
}

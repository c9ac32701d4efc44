import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { COMMON_ERRORS, errorResponses } from "./errors.ts";
import { RecordList, RecordsQuery } from "./media-schemas.ts";
import { DeviceIdParam } from "./schemas.ts";
import type { StreamsService } from "./streams-service.ts";

const json = <T>(schema: T) => ({ "application/json": { schema } });

export const listRecords = createRoute({
  method: "get",
  path: "/devices/{deviceId}/records",
  summary: "Search the device's recordings (QUERYRECORDEDFILES, all pages); device-local times",
  request: { params: DeviceIdParam, query: RecordsQuery },
  responses: {
    200: { description: "The record files in the range", content: json(RecordList) },
    ...errorResponses(
      "DEVICE_NOT_FOUND",
      "DEVICE_OFFLINE",
      "DEVICE_ERROR",
      "DEVICE_TIMEOUT",
      "VALIDATION_FAILED",
      ...COMMON_ERRORS,
    ),
  },
});

export function registerRecordRoutes(app: OpenAPIHono, streams: StreamsService): void {
  app.openapi(listRecords, async (c) =>
    c.json(await streams.records(c.req.valid("param").deviceId, c.req.valid("query")), 200),
  );
}

import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import {
  Alarm,
  AlarmIdParam,
  AlarmPage,
  ListAlarmsQuery,
  ListDeviceAlarmsQuery,
} from "./alarm-schemas.ts";
import type { AlarmsApiService } from "./alarms-service.ts";
import { COMMON_ERRORS, errorResponses } from "./errors.ts";
import { DeviceIdParam } from "./schemas.ts";

const json = <T>(schema: T) => ({ "application/json": { schema } });

export const listAlarms = createRoute({
  method: "get",
  path: "/alarms",
  summary:
    "List alarms, newest first (filter by device, type, state, time range; cursor pagination)",
  request: { query: ListAlarmsQuery },
  responses: {
    200: { description: "A page of alarms (media without URLs)", content: json(AlarmPage) },
    ...errorResponses("VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export const listDeviceAlarms = createRoute({
  method: "get",
  path: "/devices/{deviceId}/alarms",
  summary: "One device's alarms, newest first (filter by type, state, time range)",
  request: { params: DeviceIdParam, query: ListDeviceAlarmsQuery },
  responses: {
    200: { description: "A page of alarms (media without URLs)", content: json(AlarmPage) },
    ...errorResponses("DEVICE_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export const getAlarm = createRoute({
  method: "get",
  path: "/alarms/{alarmId}",
  summary: "One alarm with a presigned URL for each attached picture and video",
  request: { params: AlarmIdParam },
  responses: {
    200: { description: "The alarm", content: json(Alarm) },
    ...errorResponses("ALARM_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export function registerAlarmRoutes(app: OpenAPIHono, alarms: AlarmsApiService): void {
  app.openapi(listAlarms, async (c) => c.json(await alarms.list(c.req.valid("query")), 200));
  app.openapi(listDeviceAlarms, async (c) =>
    c.json(await alarms.listForDevice(c.req.valid("param").deviceId, c.req.valid("query")), 200),
  );
  app.openapi(getAlarm, async (c) => c.json(await alarms.get(c.req.valid("param").alarmId), 200));
}

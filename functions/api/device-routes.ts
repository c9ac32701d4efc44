import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { DevicesService } from "./devices-service.ts";
import { COMMON_ERRORS, errorResponses } from "./errors.ts";
import {
  Device,
  DeviceIdParam,
  DevicePage,
  ListDevicesQuery,
  PageQuery,
  PresencePage,
  ProvisionRequest,
} from "./schemas.ts";

const json = <T>(schema: T) => ({ "application/json": { schema } });

export const listDevices = createRoute({
  method: "get",
  path: "/devices",
  summary: "List devices (filter by status, model, firmware; cursor pagination)",
  request: { query: ListDevicesQuery },
  responses: {
    200: { description: "A page of devices", content: json(DevicePage) },
    ...errorResponses("VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export const getDevice = createRoute({
  method: "get",
  path: "/devices/{deviceId}",
  summary: "One device",
  request: { params: DeviceIdParam },
  responses: {
    200: { description: "The device", content: json(Device) },
    ...errorResponses("DEVICE_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export const listPresence = createRoute({
  method: "get",
  path: "/devices/{deviceId}/presence",
  summary: "Presence history (online/offline/address transitions), newest first",
  request: { params: DeviceIdParam, query: PageQuery },
  responses: {
    200: { description: "A page of presence entries", content: json(PresencePage) },
    ...errorResponses("DEVICE_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export const provisionDevice = createRoute({
  method: "put",
  path: "/devices/{deviceId}",
  summary: "Provision a device: allow or refuse it, set its password and labels",
  request: {
    params: DeviceIdParam,
    body: { content: json(ProvisionRequest), required: true },
  },
  responses: {
    200: { description: "Provisioning replaced", content: json(Device) },
    201: { description: "Device created", content: json(Device) },
    ...errorResponses(
      "VALIDATION_FAILED",
      "BAD_REQUEST",
      "UNSUPPORTED_MEDIA_TYPE",
      "PAYLOAD_TOO_LARGE",
      ...COMMON_ERRORS,
    ),
  },
});

export const deleteDevice = createRoute({
  method: "delete",
  path: "/devices/{deviceId}",
  summary: "Deprovision and delete a device; it is refused at its next REGISTER",
  request: { params: DeviceIdParam },
  responses: {
    204: { description: "Deleted" },
    ...errorResponses("DEVICE_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

export function registerDeviceRoutes(app: OpenAPIHono, devices: DevicesService): void {
  app.openapi(listDevices, async (c) => c.json(await devices.list(c.req.valid("query")), 200));

  app.openapi(getDevice, async (c) =>
    c.json(await devices.get(c.req.valid("param").deviceId), 200),
  );

  app.openapi(listPresence, async (c) =>
    c.json(await devices.presence(c.req.valid("param").deviceId, c.req.valid("query")), 200),
  );

  app.openapi(provisionDevice, async (c) => {
    const { device, created } = await devices.provision(
      c.req.valid("param").deviceId,
      c.req.valid("json"),
    );
    return created ? c.json(device, 201) : c.json(device, 200);
  });

  app.openapi(deleteDevice, async (c) => {
    await devices.remove(c.req.valid("param").deviceId);
    return c.body(null, 204);
  });
}

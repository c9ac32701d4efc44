import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  MAX_PASSTHROUGH_BYTES,
  MAX_PASSTHROUGH_CHANNEL,
  PassthroughData,
} from "../../lib/contracts/passthrough.ts";
import type { DeviceDataService } from "./device-data-service.ts";
import { COMMON_ERRORS, errorResponses } from "./errors.ts";
import { Command, DeviceIdParam, MAX_WAIT_SECONDS, SubmitCommandQuery } from "./schemas.ts";

/**
 * GPS positions and tracks (ehome-2.0 §2.9), passthrough data (§8 TRANSPARENT) and capabilities
 * (§8 GetDevAbility): issue 8.
 */

const json = <T>(schema: T) => ({ "application/json": { schema } });

export const MAX_TRACK_PAGE = 1000;
export const DEFAULT_TRACK_PAGE = 500;

const instant = z.iso
  .datetime({ offset: true })
  .openapi({ description: "ISO 8601 instant, e.g. 2026-11-24T08:00:00Z" });
const cursor = z
  .string()
  .max(2048)
  .optional()
  .openapi({ description: "`nextCursor` of the previous page (opaque)" });

export const PositionSchema = z
  .object({
    time: z.string().openapi({ description: "UTC instant of the fix (from Time + TimeZone)" }),
    localTime: z.string().optional().openapi({ description: "`Time` as the device sent it" }),
    timeZone: z.string().optional(),
    sequence: z.number().int(),
    longitude: z.number().openapi({ description: "signed decimal degrees, E positive" }),
    latitude: z.number().openapi({ description: "signed decimal degrees, N positive" }),
    direction: z.number().optional().openapi({ description: "degrees clockwise from north" }),
    speedKmh: z.number().optional(),
    satellites: z.number().int().optional(),
    precision: z.number().optional(),
    height: z.number().optional(),
    retransmitted: z.boolean().optional(),
    receivedAt: z.string(),
  })
  .openapi("Position");

const LatestPosition = z
  .object({ deviceId: z.string(), position: PositionSchema.nullable() })
  .openapi("LatestPosition");

export const TrackQuery = z.object({
  start: instant.optional(),
  end: instant.optional(),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_TRACK_PAGE)
    .default(DEFAULT_TRACK_PAGE)
    .openapi({ description: `Positions per page, 1-${MAX_TRACK_PAGE}` }),
  cursor,
  format: z
    .enum(["json", "geojson"])
    .default("json")
    .openapi({ description: "`geojson`: a GeoJSON Feature with a LineString" }),
});

const Track = z
  .object({
    deviceId: z.string(),
    positions: z.array(PositionSchema),
    nextCursor: z.string().optional(),
  })
  .openapi("Track");

const GeoJsonTrack = z
  .object({
    type: z.literal("Feature"),
    geometry: z
      .object({
        type: z.enum(["LineString", "Point"]),
        coordinates: z.union([z.array(z.array(z.number())), z.array(z.number())]),
      })
      .nullable(),
    properties: z.object({
      deviceId: z.string(),
      times: z.array(z.string()),
      nextCursor: z.string().optional(),
    }),
  })
  .openapi("GeoJsonTrack");

export const PassthroughRequest = z
  .object({
    channel: z
      .number()
      .int()
      .min(1)
      .max(MAX_PASSTHROUGH_CHANNEL)
      .openapi({ description: "serial port or logical channel (`Channel`)" }),
    data: z
      .string()
      .min(1)
      .max(Math.ceil(MAX_PASSTHROUGH_BYTES / 3) * 4)
      // The contract's rules (canonical base64, ≤ 1024 bytes decoded), with its messages.
      .superRefine((value, ctx) => {
        const parsed = PassthroughData.safeParse(value);
        if (!parsed.success) {
          for (const issue of parsed.error.issues)
            ctx.addIssue({ code: "custom", message: issue.message });
        }
      })
      .openapi({ description: `base64, at most ${MAX_PASSTHROUGH_BYTES} bytes decoded` }),
  })
  .strict()
  .openapi("PassthroughRequest");

const PassthroughQuery = z.object({
  since: instant.optional().openapi({ description: "only messages received after this instant" }),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor,
});

const PassthroughPage = z
  .object({
    deviceId: z.string(),
    messages: z.array(
      z.object({
        receivedAt: z.string(),
        sequence: z.number().int(),
        channel: z.number().int().optional(),
        data: z.string().openapi({ description: "base64 as the device sent it" }),
      }),
    ),
    nextCursor: z.string().optional(),
  })
  .openapi("PassthroughPage");

const CapabilitiesQuery = z.object({
  refresh: z
    .enum(["true", "false"])
    .default("false")
    .openapi({ description: "`true`: ask the device (GetDevAbility) even when cached" }),
  wait: z.coerce
    .number()
    .int()
    .min(0)
    .max(MAX_WAIT_SECONDS)
    .default(10)
    .openapi({ description: `Seconds to wait for the device, 0-${MAX_WAIT_SECONDS}` }),
});

const Capabilities = z
  .object({
    deviceId: z.string(),
    capabilities: z
      .object({
        abilities: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])),
        configXml: z.record(z.string(), z.unknown()),
      })
      .nullable(),
    fetchedAt: z.string().optional(),
    source: z.enum(["cache", "device", "pending"]),
    commandId: z.string().optional(),
  })
  .openapi("Capabilities");

const deviceErrors = ["DEVICE_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS] as const;

export const getPosition = createRoute({
  method: "get",
  path: "/devices/{deviceId}/position",
  summary: "The device's latest GPS position (null before its first report)",
  request: { params: DeviceIdParam },
  responses: {
    200: { description: "The latest position", content: json(LatestPosition) },
    ...errorResponses(...deviceErrors),
  },
});

export const getTrack = createRoute({
  method: "get",
  path: "/devices/{deviceId}/track",
  summary: "GPS positions between `start` and `end`, oldest first (`?format=geojson`)",
  request: { params: DeviceIdParam, query: TrackQuery },
  responses: {
    200: {
      description: "A page of the track",
      content: { "application/json": { schema: z.union([Track, GeoJsonTrack]) } },
    },
    ...errorResponses(...deviceErrors),
  },
});

export const sendPassthrough = createRoute({
  method: "post",
  path: "/devices/{deviceId}/passthrough",
  summary: "Send data to a device's serial port or channel (TRANSPARENT); `?wait=N` for the reply",
  request: {
    params: DeviceIdParam,
    query: SubmitCommandQuery,
    body: { content: json(PassthroughRequest), required: true },
  },
  responses: {
    200: {
      description: "Answered within `wait`: the command; `result.data` is the reply (base64)",
      content: json(Command),
    },
    202: { description: "Accepted (no `wait`, or still running)", content: json(Command) },
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

export const listPassthrough = createRoute({
  method: "get",
  path: "/devices/{deviceId}/passthrough",
  summary: "Passthrough messages the device sent, oldest first (`since` an instant)",
  request: { params: DeviceIdParam, query: PassthroughQuery },
  responses: {
    200: { description: "A page of messages", content: json(PassthroughPage) },
    ...errorResponses(...deviceErrors),
  },
});

export const getCapabilities = createRoute({
  method: "get",
  path: "/devices/{deviceId}/capabilities",
  summary: "The device's capability set (GetDevAbility), cached on the device record",
  request: { params: DeviceIdParam, query: CapabilitiesQuery },
  responses: {
    200: { description: "The capability set", content: json(Capabilities) },
    202: {
      description: "Asked the device; not answered within `wait` (the cache, if any)",
      content: json(Capabilities),
    },
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

export function registerDeviceDataRoutes(app: OpenAPIHono, service: DeviceDataService): void {
  app.openapi(getPosition, async (c) =>
    c.json(await service.position(c.req.valid("param").deviceId), 200),
  );

  app.openapi(getTrack, async (c) => {
    const { deviceId } = c.req.valid("param");
    const q = c.req.valid("query");
    const page = await service.track(deviceId, q);
    if (q.format === "json") return c.json(page, 200);
    const coordinates = page.positions.map((p) => [p.longitude, p.latitude]);
    // RFC 7946: a LineString has two or more positions; one fix is a Point, none no geometry.
    const geometry =
      coordinates.length >= 2
        ? { type: "LineString" as const, coordinates }
        : coordinates.length === 1
          ? { type: "Point" as const, coordinates: coordinates[0]! }
          : null;
    return c.json(
      {
        type: "Feature" as const,
        geometry,
        properties: {
          deviceId,
          times: page.positions.map((p) => p.time),
          ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
        },
      },
      200,
    );
  });

  app.openapi(sendPassthrough, async (c) => {
    const { status, command } = await service.sendPassthrough(
      c.req.valid("param").deviceId,
      c.req.valid("json"),
      c.req.valid("query").wait,
    );
    return status === 200 ? c.json(command, 200) : c.json(command, 202);
  });

  app.openapi(listPassthrough, async (c) =>
    c.json(
      await service.passthroughMessages(c.req.valid("param").deviceId, c.req.valid("query")),
      200,
    ),
  );

  app.openapi(getCapabilities, async (c) => {
    const q = c.req.valid("query");
    const { status, view } = await service.capabilities(c.req.valid("param").deviceId, {
      refresh: q.refresh === "true",
      waitSeconds: q.wait,
    });
    return status === 200 ? c.json(view, 200) : c.json(view, 202);
  });
}

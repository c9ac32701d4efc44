import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { CreateFirmwareRequest, type FirmwareService } from "../upgrades/firmware-service.ts";
import { FIRMWARE_STATES } from "../upgrades/model.ts";
import { COMMON_ERRORS, errorResponses } from "./errors.ts";

/** Firmware store routes (issue 6): create + presigned upload, verify, list, get, delete. */

const json = <T>(schema: T) => ({ "application/json": { schema } });

export const Firmware = z
  .object({
    firmwareId: z.string(),
    version: z.string(),
    models: z.array(z.string()),
    sha256: z.string(),
    md5: z.string().optional(),
    size: z.number().int(),
    state: z.enum(FIRMWARE_STATES),
    createdAt: z.string(),
    updatedAt: z.string(),
    verifiedAt: z.string().optional(),
    rejection: z.object({ code: z.string(), message: z.string() }).optional(),
  })
  .openapi("Firmware");

const FirmwareIdParam = z.object({
  firmwareId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .openapi({ param: { name: "firmwareId", in: "path" } }),
});

const CreatedFirmware = z
  .object({
    firmware: Firmware,
    upload: z.object({
      method: z.literal("PUT"),
      url: z.string(),
      headers: z.record(z.string(), z.string()),
      expiresAt: z.string(),
    }),
  })
  .openapi("CreatedFirmware");

const createFirmware = createRoute({
  method: "post",
  path: "/firmware",
  summary: "Declare a firmware image; answers a presigned PUT URL to upload it to",
  request: { body: { content: json(CreateFirmwareRequest), required: true } },
  responses: {
    201: { description: "Created (`uploading`)", content: json(CreatedFirmware) },
    ...errorResponses(
      "VALIDATION_FAILED",
      "BAD_REQUEST",
      "UNSUPPORTED_MEDIA_TYPE",
      ...COMMON_ERRORS,
    ),
  },
});

const completeFirmware = createRoute({
  method: "post",
  path: "/firmware/{firmwareId}/complete",
  summary: "Verify the uploaded object's size and SHA-256; the firmware becomes `available`",
  request: { params: FirmwareIdParam },
  responses: {
    200: { description: "Verified (`available`)", content: json(Firmware) },
    ...errorResponses(
      "FIRMWARE_NOT_FOUND",
      "FIRMWARE_NOT_UPLOADED",
      "FIRMWARE_VERIFICATION_FAILED",
      "VALIDATION_FAILED",
      ...COMMON_ERRORS,
    ),
  },
});

const listFirmware = createRoute({
  method: "get",
  path: "/firmware",
  summary: "Every firmware record, oldest first",
  responses: {
    200: { description: "Firmware", content: json(z.object({ items: z.array(Firmware) })) },
    ...errorResponses(...COMMON_ERRORS),
  },
});

const getFirmware = createRoute({
  method: "get",
  path: "/firmware/{firmwareId}",
  summary: "One firmware record",
  request: { params: FirmwareIdParam },
  responses: {
    200: { description: "The firmware", content: json(Firmware) },
    ...errorResponses("FIRMWARE_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

const deleteFirmware = createRoute({
  method: "delete",
  path: "/firmware/{firmwareId}",
  summary: "Delete a firmware record and its object (refused while an unfinished campaign uses it)",
  request: { params: FirmwareIdParam },
  responses: {
    204: { description: "Deleted" },
    ...errorResponses(
      "FIRMWARE_NOT_FOUND",
      "FIRMWARE_IN_USE",
      "VALIDATION_FAILED",
      ...COMMON_ERRORS,
    ),
  },
});

export function registerFirmwareRoutes(app: OpenAPIHono, firmware: FirmwareService): void {
  app.openapi(createFirmware, async (c) => c.json(await firmware.create(c.req.valid("json")), 201));
  app.openapi(completeFirmware, async (c) =>
    c.json(await firmware.complete(c.req.valid("param").firmwareId), 200),
  );
  app.openapi(listFirmware, async (c) => c.json({ items: await firmware.list() }, 200));
  app.openapi(getFirmware, async (c) =>
    c.json(await firmware.get(c.req.valid("param").firmwareId), 200),
  );
  app.openapi(deleteFirmware, async (c) => {
    await firmware.remove(c.req.valid("param").firmwareId);
    return c.body(null, 204);
  });
}

import { z } from "@hono/zod-openapi";
import { COMMAND_STATES, COMMAND_TYPES, CommandParams } from "../../lib/contracts/commands.ts";
import { ERROR_CODES } from "../../lib/contracts/errors.ts";
import { ChannelInfo, OFFLINE_REASONS } from "../../lib/contracts/events.ts";

/** Request and response schemas of the API, registered as OpenAPI components. */

/** A UTC offset as a device uses it: `+08:00`, `-03:30` (−12:00 … +14:00 and minutes). */
export const TIME_ZONE_PATTERN = /^[+-](?:0\d|1[0-4]):[0-5]\d$/;

export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_WAIT_SECONDS = 25;
/** EHOME `Password` is at most 32 bytes (ehome-2.0 §7.1, register fields). */
export const MAX_PASSWORD_BYTES = 32;
export const MAX_LABELS = 50;

export const ErrorBody = z
  .object({
    code: z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES]),
    message: z.string(),
    details: z.unknown().optional().openapi({
      description:
        "VALIDATION_FAILED: `[{in, path, message}]`; command errors: `{command}` (the record)",
    }),
  })
  .openapi("Error");

export const DeviceIdParam = z.object({
  deviceId: z
    .string()
    .min(1)
    .max(256)
    .openapi({ param: { name: "deviceId", in: "path" }, example: "cam-0001" }),
});

export const CommandIdParam = z.object({
  commandId: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "commandId", in: "path" }, example: "0b6c9a9e-…" }),
});

const limit = z.coerce
  .number()
  .int()
  .min(1)
  .max(MAX_PAGE_SIZE)
  .default(DEFAULT_PAGE_SIZE)
  .openapi({ description: `Page size, 1-${MAX_PAGE_SIZE}` });
const cursor = z
  .string()
  .max(2048)
  .optional()
  .openapi({ description: "`nextCursor` of the previous page (opaque)" });

export const ListDevicesQuery = z.object({
  status: z.enum(["online", "offline"]).optional(),
  model: z.string().min(1).max(64).optional().openapi({ description: "DevType from REGISTER" }),
  firmware: z.string().min(1).max(64).optional().openapi({ description: "exact FirmwareVersion" }),
  limit,
  cursor,
});

export const PageQuery = z.object({ limit, cursor });

export const Device = z
  .object({
    deviceId: z.string(),
    status: z.enum(["online", "offline", "never-seen"]),
    offlineReason: z.enum(OFFLINE_REASONS).optional(),
    statusChangedAt: z.string().optional(),
    agentId: z.string().optional(),
    address: z.string().optional().openapi({ example: "203.0.113.7:40112" }),
    devType: z.string().optional(),
    netUnitType: z.string().optional(),
    protocolVersion: z.string().optional(),
    firmwareVersion: z.string().optional(),
    serialNumber: z.string().optional(),
    channelCount: z.number().int().optional(),
    alarmInCount: z.number().int().optional(),
    alarmOutCount: z.number().int().optional(),
    diskCount: z.number().int().optional(),
    channels: z.array(ChannelInfo).optional(),
    lastSeen: z.string().optional(),
    registeredAt: z.string().optional(),
    createdAt: z.string().optional(),
    provisioned: z.boolean(),
    passwordRequired: z.boolean(),
    labels: z.record(z.string(), z.string()),
    provisioningUpdatedAt: z.string().optional(),
    position: z
      .record(z.string(), z.unknown())
      .optional()
      .openapi({ description: "latest GPS fix (see GET /devices/{deviceId}/position)" }),
    positionAt: z.string().optional(),
    capabilitiesAt: z
      .string()
      .optional()
      .openapi({ description: "when the cached capability set was fetched" }),
    timeZone: z.string().optional().openapi({
      description: "the device's UTC offset; record times are device-local",
      example: "+08:00",
    }),
  })
  .openapi("Device");

export const DevicePage = z
  .object({ items: z.array(Device), nextCursor: z.string().optional() })
  .openapi("DevicePage");

export const PresenceEntry = z
  .object({
    at: z.string(),
    type: z.enum(["registered", "online", "offline", "address-changed"]),
    status: z.enum(["online", "offline"]),
    reason: z.enum(OFFLINE_REASONS).optional(),
    address: z.string().optional(),
    previousAddress: z.string().optional(),
    agentId: z.string(),
    version: z.number().int(),
  })
  .openapi("PresenceEntry");

export const PresencePage = z
  .object({ items: z.array(PresenceEntry), nextCursor: z.string().optional() })
  .openapi("PresencePage");

const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$/;

export const ProvisionRequest = z
  .object({
    allowed: z.boolean().openapi({ description: "false refuses the device at REGISTER" }),
    password: z
      .string()
      .min(1)
      .refine((p) => Buffer.byteLength(p, "utf8") <= MAX_PASSWORD_BYTES, {
        message: `at most ${MAX_PASSWORD_BYTES} bytes (EHOME Password)`,
      })
      .optional()
      .openapi({ description: "REGISTER must carry it; omitted = no password required" }),
    labels: z
      .record(
        z.string().regex(LABEL_KEY, "a label key such as site or zone/a"),
        z.string().max(256),
      )
      .refine((labels) => Object.keys(labels).length <= MAX_LABELS, {
        message: `at most ${MAX_LABELS} labels`,
      })
      .optional(),
    timeZone: z
      .string()
      .regex(TIME_ZONE_PATTERN, "a UTC offset such as +08:00")
      .optional()
      .openapi({
        description:
          "the device's UTC offset (`+08:00`); record searches add ISO 8601 times with it. Omitted = kept as it is",
        example: "+08:00",
      }),
  })
  .strict()
  .openapi("ProvisionRequest");

/**
 * The request body as documented. `set-config.params.config` is a recursive element tree in the
 * contract (`ConfigBody`), which the OpenAPI generator cannot walk, so it is documented as an
 * object here and the route validates the body again with the contract's `CommandRequest`.
 */
export const CommandRequestBody = z
  .discriminatedUnion("type", [
    z.object({ type: z.literal("reboot"), params: CommandParams.reboot.optional() }),
    z.object({ type: z.literal("work-status"), params: CommandParams["work-status"].optional() }),
    z.object({ type: z.literal("get-config"), params: CommandParams["get-config"] }),
    z.object({
      type: z.literal("set-config"),
      params: CommandParams["get-config"].extend({
        config: z.record(z.string(), z.unknown()).openapi({
          description: "element name → text, nested object, or array of either (ConfigXML)",
          example: { PicPara: { Resolution: "1920*1080" } },
        }),
      }),
    }),
    z.object({ type: z.literal("ptz"), params: CommandParams.ptz }),
    z.object({ type: z.literal("time-sync"), params: CommandParams["time-sync"].optional() }),
  ])
  .openapi("CommandRequest");

export const SubmitCommandQuery = z.object({
  wait: z.coerce
    .number()
    .int()
    .min(0)
    .max(MAX_WAIT_SECONDS)
    .default(0)
    .openapi({ description: `Seconds to wait for the result, 0-${MAX_WAIT_SECONDS}` }),
});

export const Command = z
  .object({
    commandId: z.string(),
    deviceId: z.string(),
    type: z.enum(COMMAND_TYPES),
    params: z.record(z.string(), z.unknown()),
    state: z.enum(COMMAND_STATES),
    createdAt: z.string(),
    updatedAt: z.string(),
    deadline: z.string(),
    agentId: z.string().optional(),
    sentAt: z.string().optional(),
    completedAt: z.string().optional(),
    result: z.unknown().optional(),
    error: z
      .object({ code: z.string(), message: z.string(), status: z.number().int().optional() })
      .optional(),
  })
  .openapi("Command");

export const Health = z.object({ status: z.literal("ok") }).openapi("Health");

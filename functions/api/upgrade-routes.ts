import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { CampaignsService } from "../upgrades/campaigns-service.ts";
import {
  CAMPAIGN_STATES,
  CreateCampaignRequest,
  EXECUTION_STATES,
  FAILURE_TYPES,
} from "../upgrades/model.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { COMMON_ERRORS, errorResponses } from "./errors.ts";
import { PageQuery } from "./schemas.ts";

/** Upgrade campaign routes (issue 6). */

const json = <T>(schema: T) => ({ "application/json": { schema } });

const Counts = z.object(
  Object.fromEntries(EXECUTION_STATES.map((s) => [s, z.number().int()])) as Record<
    (typeof EXECUTION_STATES)[number],
    z.ZodNumber
  >,
);

export const Campaign = z
  .object({
    campaignId: z.string(),
    firmwareId: z.string(),
    targetVersion: z.string(),
    state: z.enum(CAMPAIGN_STATES),
    createdAt: z.string(),
    finishedAt: z.string().optional(),
    targetCount: z.number().int(),
    counts: Counts,
    currentRate: z.number().openapi({ description: "Dispatches per minute now (after the ramp)" }),
    etaSeconds: z.number().int().optional(),
    rollout: z.unknown(),
    timeoutSeconds: z.number().int(),
    retries: z.record(z.string(), z.number().int()),
    abort: z.array(z.unknown()),
    maintenanceWindow: z.object({ start: z.string(), end: z.string() }).optional(),
    abortReason: z.string().optional(),
  })
  .openapi("UpgradeCampaign");

export const Execution = z
  .object({
    deviceId: z.string(),
    state: z.enum(EXECUTION_STATES),
    attempt: z.number().int(),
    bytesServed: z.number().int(),
    failureType: z.enum(FAILURE_TYPES).optional(),
    lastMessage: z.string().optional(),
    commandId: z.string().optional(),
    sentAt: z.string().optional(),
    deadline: z.string().optional(),
    updatedAt: z.string(),
    finishedAt: z.string().optional(),
  })
  .openapi("UpgradeExecution");

const CampaignIdParam = z.object({
  campaignId: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "campaignId", in: "path" } }),
});

const createCampaign = createRoute({
  method: "post",
  path: "/upgrades",
  summary: "Start an upgrade campaign (targets resolved and snapshotted now)",
  request: { body: { content: json(CreateCampaignRequest), required: true } },
  responses: {
    201: { description: "Created (`running`)", content: json(Campaign) },
    ...errorResponses(
      "FIRMWARE_NOT_FOUND",
      "FIRMWARE_NOT_AVAILABLE",
      "CAMPAIGN_NO_TARGETS",
      "VALIDATION_FAILED",
      "BAD_REQUEST",
      "UNSUPPORTED_MEDIA_TYPE",
      ...COMMON_ERRORS,
    ),
  },
});

const listCampaigns = createRoute({
  method: "get",
  path: "/upgrades",
  summary: "Every campaign, newest first",
  responses: {
    200: { description: "Campaigns", content: json(z.object({ items: z.array(Campaign) })) },
    ...errorResponses(...COMMON_ERRORS),
  },
});

const getCampaign = createRoute({
  method: "get",
  path: "/upgrades/{campaignId}",
  summary: "A campaign: counts per state, current rate, ETA",
  request: { params: CampaignIdParam },
  responses: {
    200: { description: "The campaign", content: json(Campaign) },
    ...errorResponses("CAMPAIGN_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

const listExecutions = createRoute({
  method: "get",
  path: "/upgrades/{campaignId}/devices",
  summary: "Per-device state, attempt, bytes served, last message (cursor pagination)",
  request: { params: CampaignIdParam, query: PageQuery },
  responses: {
    200: {
      description: "A page of executions, by device id",
      content: json(z.object({ items: z.array(Execution), nextCursor: z.string().optional() })),
    },
    ...errorResponses("CAMPAIGN_NOT_FOUND", "VALIDATION_FAILED", ...COMMON_ERRORS),
  },
});

const cancelCampaign = createRoute({
  method: "post",
  path: "/upgrades/{campaignId}/cancel",
  summary: "Stop dispatching; queued devices are canceled, in-flight ones finish",
  request: { params: CampaignIdParam },
  responses: {
    200: { description: "Canceled", content: json(Campaign) },
    ...errorResponses(
      "CAMPAIGN_NOT_FOUND",
      "CAMPAIGN_FINISHED",
      "VALIDATION_FAILED",
      ...COMMON_ERRORS,
    ),
  },
});

export function registerUpgradeRoutes(app: OpenAPIHono, campaigns: CampaignsService): void {
  app.openapi(createCampaign, async (c) =>
    c.json(await campaigns.create(c.req.valid("json")), 201),
  );
  app.openapi(listCampaigns, async (c) => c.json({ items: await campaigns.list() }, 200));
  app.openapi(getCampaign, async (c) =>
    c.json(await campaigns.get(c.req.valid("param").campaignId), 200),
  );
  app.openapi(listExecutions, async (c) => {
    const { campaignId } = c.req.valid("param");
    const { limit, cursor } = c.req.valid("query");
    const scope = `upgrade-devices:${campaignId}`;
    const startKey =
      cursor === undefined ? undefined : decodeCursor(scope, cursor, ["campaignId", "deviceId"]);
    const page = await campaigns.devices(campaignId, limit, startKey);
    return c.json(
      {
        items: page.items,
        ...(page.lastKey
          ? { nextCursor: encodeCursor(scope, page.lastKey as Record<string, string>) }
          : {}),
      },
      200,
    );
  });
  app.openapi(cancelCampaign, async (c) =>
    c.json(await campaigns.cancel(c.req.valid("param").campaignId), 200),
  );
}

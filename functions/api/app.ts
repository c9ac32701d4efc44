import type { S3Client } from "@aws-sdk/client-s3";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { DOWNLOAD_URL_TTL_SECONDS } from "../../lib/contracts/media.ts";
import type { Clock } from "../shared/clock.ts";
import { ApiError, type ErrorCode } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { CampaignsService } from "../upgrades/campaigns-service.ts";
import type { FirmwareService } from "../upgrades/firmware-service.ts";
import { registerAlarmRoutes } from "./alarm-routes.ts";
import type { AlarmsReadRepository } from "./alarms-repository.ts";
import { createAlarmsService } from "./alarms-service.ts";
import { registerCaptureRoutes } from "./capture-routes.ts";
import type { CapturesRepository } from "./captures-repository.ts";
import { createCapturesService } from "./captures-service.ts";
import { registerCommandRoutes } from "./command-routes.ts";
import { createCommandsService } from "./commands-service.ts";
import { type ApiConfig, DEFAULT_API_CONFIG } from "./config.ts";
import type { DeviceDataReadRepository } from "./device-data-repository.ts";
import { registerDeviceDataRoutes } from "./device-data-routes.ts";
import { createDeviceDataService } from "./device-data-service.ts";
import { registerDeviceRoutes } from "./device-routes.ts";
import { createDevicesService } from "./devices-service.ts";
import { errorBody, errorResponses, validationError } from "./errors.ts";
import { registerFirmwareRoutes } from "./firmware-routes.ts";
import { createMediaUrlSigner, type MediaUrlSigner } from "./media-urls.ts";
import { registerPictureRoutes } from "./picture-routes.ts";
import { createPicturesService } from "./pictures-service.ts";
import type {
  AgentQueue,
  AgentsRepository,
  CommandsRepository,
  DevicesRepository,
  PresenceRepository,
} from "./ports.ts";
import { registerRecordRoutes } from "./record-routes.ts";
import { Health, MAX_WAIT_SECONDS } from "./schemas.ts";
import { registerStreamRoutes } from "./stream-routes.ts";
import type { StreamsRepository } from "./streams-repository.ts";
import { createStreamsService, DEFAULT_MEDIA_CONFIG, type MediaConfig } from "./streams-service.ts";
import { registerTalkRoutes } from "./talk-routes.ts";
import { createTalkService, DEFAULT_TALK_CONFIG, type TalkConfig } from "./talk-service.ts";
import { registerUpgradeRoutes } from "./upgrade-routes.ts";

/**
 * The HTTP API as a Hono app built by a factory (style: Hono/Fastify), separate from whatever
 * serves it: `handler.ts` adapts it to API Gateway, the local runner to a Node server, and tests
 * call `app.request(...)` in memory.
 */

export interface ApiDeps {
  readonly devices: DevicesRepository;
  readonly presence: PresenceRepository;
  readonly commands: CommandsRepository;
  readonly agents: AgentsRepository;
  readonly agentQueue: AgentQueue;
  readonly alarms: AlarmsReadRepository;
  readonly captures: CapturesRepository;
  /**
   * Presigned GET URLs for pictures and videos. Either a signer, or an S3 client to build one
   * with `config.mediaUrlTtlSeconds`.
   */
  readonly mediaUrls: MediaUrlSigner | { s3: S3Client };
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config?: Partial<ApiConfig>;
  /** Command ids; random UUIDs by default. */
  readonly newId?: () => string;
  /** Password hashing; scrypt (`functions/shared/device-password.ts`) by default. */
  readonly hashPassword?: (password: string) => Promise<string>;
  /**
   * Runs in front of every route except `/healthz`. On AWS, API Gateway authorizes (IAM or JWT)
   * and this is absent; the local runner passes its bearer-token check.
   */
  readonly auth?: MiddlewareHandler;
  /** Firmware store and upgrade campaigns (issue 6); their routes exist only when given. */
  readonly upgrades?: { firmware: FirmwareService; campaigns: CampaignsService };
  /** GPS tracks, passthrough, capabilities (issue 8); their routes exist only when given. */
  readonly deviceData?: DeviceDataReadRepository;
  /** Record search, streams and downloads (issue 4); their routes exist only when given. */
  readonly media?: {
    streams: StreamsRepository;
    /** `STREAM_TOKEN_KEY`, parsed: viewer URLs are signed with it. */
    tokenKey: Uint8Array;
    /** The media bucket downloads land in. */
    bucket: string;
    config?: Partial<MediaConfig>;
    newStreamId?: () => string;
    /** Voice talk (`POST /devices/{id}/talk`, `DELETE /talk/{id}`); tokens use `tokenKey`. */
    talk?: Partial<TalkConfig>;
    newTalkId?: () => string;
  };
}

export const API_TITLE = "EHOME cloud API";
export const API_VERSION = "1.0.0";
const PUBLIC_PATHS = new Set(["/healthz"]);

const HTTP_STATUS_CODES: Record<number, ErrorCode> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  404: "NOT_FOUND",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
  429: "RATE_LIMITED",
};

export function createApp(deps: ApiDeps): OpenAPIHono {
  const config: ApiConfig = { ...DEFAULT_API_CONFIG, ...deps.config };
  const logger = deps.logger;
  const app = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target);
    },
  });

  app.onError((error, c) => {
    if (error instanceof ApiError) {
      if (error.status >= 500) logger.error("request failed", { path: c.req.path, error });
      return c.json(errorBody(error), error.status as 400);
    }
    if (error instanceof HTTPException) {
      const code = HTTP_STATUS_CODES[error.status];
      if (code) {
        const message =
          code === "BAD_REQUEST" || code === "UNAUTHORIZED" ? error.message : undefined;
        return c.json(errorBody(new ApiError(code, message || undefined)), error.status);
      }
    }
    logger.error("unhandled error", { method: c.req.method, path: c.req.path, error });
    return c.json(errorBody(new ApiError("INTERNAL")), 500);
  });
  app.notFound((c) =>
    c.json(errorBody(new ApiError("NOT_FOUND", `no route ${c.req.method} ${c.req.path}`)), 404),
  );

  const auth = deps.auth;
  if (auth) {
    app.use("*", (c, next) => (PUBLIC_PATHS.has(c.req.path) ? next() : auth(c, next)));
  }
  app.use(
    "*",
    bodyLimit({
      maxSize: config.maxBodyBytes,
      onError: () => {
        throw new ApiError(
          "PAYLOAD_TOO_LARGE",
          `request bodies are limited to ${config.maxBodyBytes} bytes`,
        );
      },
    }),
  );

  const common = {
    clock: deps.clock,
    logger,
    devices: deps.devices,
    agents: deps.agents,
    agentQueue: deps.agentQueue,
  };
  registerDeviceRoutes(
    app,
    createDevicesService(config, {
      ...common,
      presence: deps.presence,
      ...(deps.hashPassword ? { hashPassword: deps.hashPassword } : {}),
    }),
  );
  const commands = createCommandsService(config, {
    ...common,
    commands: deps.commands,
    ...(deps.newId ? { newId: deps.newId } : {}),
  });
  registerCommandRoutes(app, commands);

  const mediaUrls =
    "sign" in deps.mediaUrls
      ? deps.mediaUrls
      : createMediaUrlSigner(
          { ttlSeconds: config.mediaUrlTtlSeconds },
          { s3: deps.mediaUrls.s3, clock: deps.clock },
        );
  const captures = createCapturesService(
    {
      uploadDeadlineSeconds: config.captureUploadDeadlineSeconds,
      ttlSeconds: config.captureTtlSeconds,
      waitPollIntervalMs: config.waitPollIntervalMs,
    },
    { ...common, captures: deps.captures, commands, mediaUrls },
  );
  registerCaptureRoutes(app, captures);
  registerPictureRoutes(
    app,
    createPicturesService(
      { waitSeconds: MAX_WAIT_SECONDS },
      { devices: deps.devices, commands, captures },
    ),
  );
  registerAlarmRoutes(
    app,
    createAlarmsService({
      alarms: deps.alarms,
      devices: deps.devices,
      mediaUrls,
      clock: deps.clock,
    }),
  );

  if (deps.deviceData) {
    registerDeviceDataRoutes(
      app,
      createDeviceDataService({
        devices: deps.devices,
        data: deps.deviceData,
        commands,
        clock: deps.clock,
      }),
    );
  }
  if (deps.media) {
    // Download URLs live DOWNLOAD_URL_TTL_SECONDS, whatever the capture URLs' setting.
    const downloadUrls =
      "sign" in deps.mediaUrls
        ? deps.mediaUrls
        : createMediaUrlSigner(
            { ttlSeconds: DOWNLOAD_URL_TTL_SECONDS },
            { s3: deps.mediaUrls.s3, clock: deps.clock },
          );
    const streams = createStreamsService(
      { ...DEFAULT_MEDIA_CONFIG, ...deps.media.config },
      {
        ...common,
        streams: deps.media.streams,
        commands,
        downloadUrls,
        bucket: deps.media.bucket,
        tokenKey: deps.media.tokenKey,
        ...(deps.media.newStreamId ? { newStreamId: deps.media.newStreamId } : {}),
      },
    );
    registerRecordRoutes(app, streams);
    registerStreamRoutes(app, streams);
    registerTalkRoutes(
      app,
      createTalkService(
        { ...DEFAULT_TALK_CONFIG, ...deps.media.talk },
        {
          ...common,
          commands,
          tokenKey: deps.media.tokenKey,
          ...(deps.media.newTalkId ? { newTalkId: deps.media.newTalkId } : {}),
        },
      ),
    );
  }

  if (deps.upgrades) {
    registerFirmwareRoutes(app, deps.upgrades.firmware);
    registerUpgradeRoutes(app, deps.upgrades.campaigns);
  }

  app.openapi(
    createRoute({
      method: "get",
      path: "/healthz",
      summary: "Liveness (no authorization)",
      responses: {
        200: { description: "Up", content: { "application/json": { schema: Health } } },
      },
    }),
    (c) => c.json({ status: "ok" as const }, 200),
  );

  const documentConfig = {
    openapi: "3.1.0",
    info: {
      title: API_TITLE,
      version: API_VERSION,
      description:
        "Devices, provisioning, commands, alarms, captures, record search, streams and downloads of the EHOME 2.0 platform. Every route but /healthz " +
        "requires authorization: IAM (SigV4) or a JWT on AWS, `Authorization: Bearer <token>` locally.",
    },
  };
  app.openapi(
    createRoute({
      method: "get",
      path: "/openapi.json",
      summary: "This OpenAPI document",
      responses: {
        200: {
          description: "OpenAPI 3.1 document",
          content: { "application/json": { schema: z.record(z.string(), z.unknown()) } },
        },
        ...errorResponses("UNAUTHORIZED"),
      },
    }),
    (c) =>
      c.json(app.getOpenAPI31Document(documentConfig) as unknown as Record<string, unknown>, 200),
  );

  return app;
}

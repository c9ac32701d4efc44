import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { handle, type LambdaContext, type LambdaEvent } from "hono/aws-lambda";
import { ENV } from "../../lib/contracts/env.ts";
import { parseFirmwareTokenKey } from "../../lib/contracts/upgrades.ts";
import {
  awsClientConfigFromEnv,
  createDocumentClient,
  createSqsClient,
  lazy,
} from "../shared/clients.ts";
import { systemClock } from "../shared/clock.ts";
import {
  ConfigError,
  type Env,
  optionalEnv,
  requireEnv,
  tableNamesFromEnv,
} from "../shared/env.ts";
import { createLogger, parseLogLevel } from "../shared/logger.ts";
import { createApiUpgradesFromEnv } from "../upgrades/compose.ts";
import { createAgentQueue, createAgentsRepository } from "./agents-repository.ts";
import { createAlarmsReadRepository } from "./alarms-repository.ts";
import { type ApiDeps, createApp } from "./app.ts";
import { createCapturesRepository } from "./captures-repository.ts";
import { createCommandsRepository } from "./commands-repository.ts";
import { createDeviceDataReadRepository } from "./device-data-repository.ts";
import { createDevicesRepository, createPresenceRepository } from "./devices-repository.ts";
import { createS3ClientFromEnv } from "./media-urls.ts";
import { createStreamsRepository } from "./streams-repository.ts";

/** Variable: lifetime of presigned picture/video URLs, seconds (default 900). */
export const MEDIA_URL_TTL_VARIABLE = "CAPTURE_URL_TTL_SECONDS";

function mediaUrlTtlFromEnv(env: Env): number | undefined {
  const raw = optionalEnv(env, MEDIA_URL_TTL_VARIABLE);
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 7 * 24 * 3600) {
    throw new ConfigError(`${MEDIA_URL_TTL_VARIABLE} must be 1-604800 seconds, got ${raw}`);
  }
  return seconds;
}

/**
 * Media routes need the streams table, the media bucket and the viewer token key
 * (`STREAM_TOKEN_KEY`, same format as the firmware key); without all three they are not served.
 * A key that is set but too short is a configuration error.
 */
function mediaSettingsFromEnv(
  env: Env,
): { table: string; bucket: string; tokenKey: Buffer } | undefined {
  const table = optionalEnv(env, ENV.STREAMS_TABLE);
  const bucket = optionalEnv(env, ENV.MEDIA_BUCKET);
  const keyText = optionalEnv(env, ENV.STREAM_TOKEN_KEY);
  if (!table || !bucket || !keyText) return undefined;
  try {
    return { table, bucket, tokenKey: parseFirmwareTokenKey(keyText) };
  } catch (error) {
    throw new ConfigError(`${ENV.STREAM_TOKEN_KEY}: ${(error as Error).message}`);
  }
}

function mediaDeps(
  settings: ReturnType<typeof mediaSettingsFromEnv>,
  documentClient: DynamoDBDocumentClient,
): ApiDeps["media"] {
  if (!settings) return undefined;
  return {
    streams: createStreamsRepository({ streamsTable: settings.table }, { documentClient }),
    tokenKey: settings.tokenKey,
    bucket: settings.bucket,
  };
}

/**
 * The app's dependencies from the environment the api stack (or the local runner) sets. The
 * local runner calls this too and adds its bearer-token middleware as `auth`. `close()`
 * releases the clients' sockets.
 */
export function createApiDepsFromEnv(
  env: Env,
  extra: Pick<ApiDeps, "auth"> = {},
): ApiDeps & { close(): void } {
  const logger = createLogger({ service: "api", level: parseLogLevel(env.AWS_LAMBDA_LOG_LEVEL) });
  const tables = tableNamesFromEnv(env);
  const alarmTables = requireEnv(env, [ENV.ALARMS_TABLE, ENV.CAPTURES_TABLE]);
  const mediaUrlTtlSeconds = mediaUrlTtlFromEnv(env);
  const agentQueuePrefix = optionalEnv(env, ENV.AGENT_QUEUE_PREFIX);
  const mediaSettings = mediaSettingsFromEnv(env);
  // Settings are validated first: a bad one fails before any client exists.
  const aws = awsClientConfigFromEnv(env);
  const documentClient = createDocumentClient(aws);
  const sqs = createSqsClient(aws);
  const s3 = createS3ClientFromEnv(env);
  const upgrades = createApiUpgradesFromEnv(env, { documentClient, clock: systemClock, logger });
  // GPS tracks and passthrough (issue 8): routes only where the stack gives their tables.
  const positionsTable = optionalEnv(env, ENV.POSITIONS_TABLE);
  const passthroughTable = optionalEnv(env, ENV.PASSTHROUGH_TABLE);
  const deviceData =
    positionsTable && passthroughTable
      ? createDeviceDataReadRepository(
          { positionsTable, passthroughTable, devicesTable: tables.devices },
          { documentClient },
        )
      : undefined;
  const media = mediaDeps(mediaSettings, documentClient);
  const config = {
    ...(agentQueuePrefix ? { agentQueuePrefix } : {}),
    ...(mediaUrlTtlSeconds ? { mediaUrlTtlSeconds } : {}),
  };
  return {
    devices: createDevicesRepository({ devicesTable: tables.devices }, { documentClient }),
    presence: createPresenceRepository({ presenceTable: tables.presence }, { documentClient }),
    commands: createCommandsRepository({ commandsTable: tables.commands }, { documentClient }),
    agents: createAgentsRepository({ agentsTable: tables.agents }, { documentClient, logger }),
    agentQueue: createAgentQueue({ sqs }),
    alarms: createAlarmsReadRepository(
      { alarmsTable: alarmTables.ALARMS_TABLE },
      { documentClient },
    ),
    captures: createCapturesRepository(
      { capturesTable: alarmTables.CAPTURES_TABLE },
      { documentClient },
    ),
    mediaUrls: { s3 },
    clock: systemClock,
    logger,
    ...(Object.keys(config).length > 0 ? { config } : {}),
    ...(upgrades ? { upgrades } : {}),
    ...(deviceData ? { deviceData } : {}),
    ...(media ? { media } : {}),
    ...extra,
    close: () => {
      upgrades?.close();
      documentClient.destroy();
      sqs.destroy();
      s3.destroy();
    },
  };
}

/** The app from the environment, e.g. for the local runner's HTTP server. */
export function createApiAppFromEnv(
  env: Env,
  extra: Pick<ApiDeps, "auth"> = {},
): { app: OpenAPIHono; close(): void } {
  const deps = createApiDepsFromEnv(env, extra);
  return { app: createApp(deps), close: deps.close };
}

const root = lazy(() => handle(createApiAppFromEnv(process.env).app));

/** Lambda entry point (API Gateway HTTP API, payload format 2.0; REST and ALB also work). */
export const handler = (event: LambdaEvent, context?: LambdaContext) => root()(event, context);

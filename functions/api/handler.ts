import type { OpenAPIHono } from "@hono/zod-openapi";
import { handle, type LambdaContext, type LambdaEvent } from "hono/aws-lambda";
import { ENV } from "../../lib/contracts/env.ts";
import {
  awsClientConfigFromEnv,
  createDocumentClient,
  createSqsClient,
  lazy,
} from "../shared/clients.ts";
import { systemClock } from "../shared/clock.ts";
import { type Env, optionalEnv, tableNamesFromEnv } from "../shared/env.ts";
import { createLogger, parseLogLevel } from "../shared/logger.ts";
import { createApiUpgradesFromEnv } from "../upgrades/compose.ts";
import { createAgentQueue, createAgentsRepository } from "./agents-repository.ts";
import { type ApiDeps, createApp } from "./app.ts";
import { createCommandsRepository } from "./commands-repository.ts";
import { createDevicesRepository, createPresenceRepository } from "./devices-repository.ts";

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
  const aws = awsClientConfigFromEnv(env);
  const documentClient = createDocumentClient(aws);
  const sqs = createSqsClient(aws);
  const agentQueuePrefix = optionalEnv(env, ENV.AGENT_QUEUE_PREFIX);
  const upgrades = createApiUpgradesFromEnv(env, { documentClient, clock: systemClock, logger });
  return {
    devices: createDevicesRepository({ devicesTable: tables.devices }, { documentClient }),
    presence: createPresenceRepository({ presenceTable: tables.presence }, { documentClient }),
    commands: createCommandsRepository({ commandsTable: tables.commands }, { documentClient }),
    agents: createAgentsRepository({ agentsTable: tables.agents }, { documentClient, logger }),
    agentQueue: createAgentQueue({ sqs }),
    clock: systemClock,
    logger,
    ...(agentQueuePrefix ? { config: { agentQueuePrefix } } : {}),
    ...(upgrades ? { upgrades } : {}),
    ...extra,
    close: () => {
      upgrades?.close();
      documentClient.destroy();
      sqs.destroy();
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

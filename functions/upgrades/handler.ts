import { ENV } from "../../lib/contracts/env.ts";
import {
  parseFirmwareTokenKey,
  type UpgradeProgressEvent,
  UpgradeProgressEvent as UpgradeProgressEventSchema,
} from "../../lib/contracts/upgrades.ts";
import { createAgentQueue, createAgentsRepository } from "../api/agents-repository.ts";
import { createCommandsRepository } from "../api/commands-repository.ts";
import { createCommandsService } from "../api/commands-service.ts";
import { DEFAULT_API_CONFIG } from "../api/config.ts";
import { createDevicesRepository } from "../api/devices-repository.ts";
import {
  awsClientConfigFromEnv,
  createDocumentClient,
  createSqsClient,
  lazy,
} from "../shared/clients.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import { type Env, optionalEnv, requireEnv, tableNamesFromEnv } from "../shared/env.ts";
import { createLogger, type Logger, parseLogLevel } from "../shared/logger.ts";
import {
  parseRecord,
  processPartialBatch,
  type SqsBatchResponse,
  type SqsEvent,
  type SqsRecord,
} from "../shared/sqs-batch.ts";
import { upgradeTablesFromEnv } from "./compose.ts";
import { createCommandDispatcher } from "./dispatcher.ts";
import {
  createUpgradeEngine,
  type EngineTickResult,
  type ProgressInput,
  type UpgradeEngine,
} from "./engine.ts";
import { createUpgradesRepository } from "./repository.ts";

/**
 * The upgrades function: one Lambda with two entry points. `tickHandler` runs the engine's tick
 * (EventBridge schedule, every minute); `handler` consumes the upgrade-events queue (progress:
 * bytes served, `UPGRADESTATUS`). The local runner calls both the same way.
 */

/** A progress event in the engine's terms; `SUCCEEDED` is left to the re-REGISTER check. */
export function progressOf(event: UpgradeProgressEvent): ProgressInput | undefined {
  const base = {
    campaignId: event.campaignId,
    deviceId: event.deviceId,
    ...(event.attempt === undefined ? {} : { attempt: event.attempt }),
  };
  if (event.kind === "bytes-served") {
    return {
      ...base,
      bytesServed: event.bytes,
      ...(event.reachedEnd ? { status: "upgrading" as const } : {}),
    };
  }
  switch (event.status) {
    case "DOWNLOADING":
      return { ...base, status: "downloading" };
    case "UPGRADING":
      return { ...base, status: "upgrading" };
    case "FAILED":
      return {
        ...base,
        status: "failed",
        message: event.description ?? "the device reported UPGRADESTATUS FAILED",
      };
    case "SUCCEEDED":
      return undefined;
  }
}

export function createProgressHandler(deps: {
  engine: Pick<UpgradeEngine, "progress">;
  logger: Logger;
}): (event: SqsEvent) => Promise<SqsBatchResponse> {
  return (event) =>
    processPartialBatch(
      event,
      async (record) => {
        const progress = progressOf(parseRecord(record, UpgradeProgressEventSchema));
        if (progress) await deps.engine.progress(progress);
      },
      {
        logger: deps.logger,
        groupKey: (record: SqsRecord) => {
          try {
            const body = JSON.parse(record.body) as { campaignId?: string; deviceId?: string };
            return `${body.campaignId}/${body.deviceId}`;
          } catch {
            return record.messageId;
          }
        },
      },
    );
}

export interface UpgradesFunction {
  engine: UpgradeEngine;
  tick(): Promise<EngineTickResult>;
  handler(event: SqsEvent): Promise<SqsBatchResponse>;
  close(): void;
}

/** Composition root from the environment (stack or local runner). */
export function createUpgradesFunctionFromEnv(
  env: Env,
  options: { clock?: Clock } = {},
): UpgradesFunction {
  const logger = createLogger({
    service: "upgrades",
    level: parseLogLevel(env.AWS_LAMBDA_LOG_LEVEL),
  });
  const clock = options.clock ?? systemClock;
  const tables = tableNamesFromEnv(env);
  const tokenKey = parseFirmwareTokenKey(
    requireEnv(env, [ENV.FIRMWARE_TOKEN_KEY]).FIRMWARE_TOKEN_KEY,
  );
  const aws = awsClientConfigFromEnv(env);
  const documentClient = createDocumentClient(aws);
  const sqs = createSqsClient(aws);
  const repository = createUpgradesRepository(upgradeTablesFromEnv(env), { documentClient });
  const commandsRepository = createCommandsRepository(
    { commandsTable: tables.commands },
    { documentClient },
  );
  const agentQueuePrefix = optionalEnv(env, ENV.AGENT_QUEUE_PREFIX);
  const commands = createCommandsService(
    { ...DEFAULT_API_CONFIG, ...(agentQueuePrefix ? { agentQueuePrefix } : {}) },
    {
      devices: createDevicesRepository({ devicesTable: tables.devices }, { documentClient }),
      commands: commandsRepository,
      agents: createAgentsRepository({ agentsTable: tables.agents }, { documentClient, logger }),
      agentQueue: createAgentQueue({ sqs }),
      clock,
      logger,
    },
  );
  const engine = createUpgradeEngine({
    repository,
    dispatcher: createCommandDispatcher({ commands, repository, tokenKey }),
    commands: commandsRepository,
    clock,
    logger,
  });
  return {
    engine,
    tick: () => engine.tick(),
    handler: createProgressHandler({ engine, logger }),
    close: () => {
      documentClient.destroy();
      sqs.destroy();
    },
  };
}

const root = lazy(() => createUpgradesFunctionFromEnv(process.env));

/**
 * Lambda entry point of both triggers: an SQS batch from the upgrade-events queue (`Records`), or
 * the EventBridge schedule (`detail-type: "Scheduled Event"`), which runs one engine tick.
 */
export const handler = (
  event: SqsEvent | { "detail-type"?: string },
): Promise<SqsBatchResponse | EngineTickResult> =>
  "Records" in event ? root().handler(event) : root().tick();

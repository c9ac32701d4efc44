import { ENV } from "../../lib/contracts/env.ts";
import { DeviceEvent } from "../../lib/contracts/events.ts";
import { awsClientConfigFromEnv, createDocumentClient, lazy } from "../shared/clients.ts";
import { systemClock } from "../shared/clock.ts";
import { type Env, requireEnv } from "../shared/env.ts";
import { createLogger, type Logger, parseLogLevel } from "../shared/logger.ts";
import {
  deviceIdGroupKey,
  parseRecord,
  processPartialBatch,
  type SqsBatchResponse,
  type SqsEvent,
} from "../shared/sqs-batch.ts";
import { createRegistryRepository } from "./repository.ts";
import { createRegistryService, DEFAULT_REGISTRY_CONFIG, type RegistryService } from "./service.ts";

/** SQS consumer of device events (queue `QUEUES.deviceEvents`), partial batch failures. */
export type RegistryHandler = (event: SqsEvent) => Promise<SqsBatchResponse>;

export function createRegistryHandler(deps: {
  service: RegistryService;
  logger: Logger;
}): RegistryHandler {
  const { service, logger } = deps;
  return (event) =>
    processPartialBatch(
      event,
      async (record) => {
        const deviceEvent = parseRecord(record, DeviceEvent);
        const result = await service.apply(deviceEvent);
        logger.debug("device event", {
          eventId: deviceEvent.eventId,
          deviceId: deviceEvent.deviceId,
          type: deviceEvent.type,
          outcome: result.outcome,
          aspects: result.aspects,
        });
      },
      { logger, groupKey: deviceIdGroupKey },
    );
}

/**
 * Composition root from the environment the stack (or the local runner) sets. `close()` releases
 * the client's sockets (the local runner and tests call it; Lambda never needs to).
 */
export function createRegistryHandlerFromEnv(env: Env): {
  handler: RegistryHandler;
  close(): void;
} {
  const logger = createLogger({
    service: "registry",
    level: parseLogLevel(env.AWS_LAMBDA_LOG_LEVEL),
  });
  const tables = requireEnv(env, [ENV.DEVICES_TABLE, ENV.PRESENCE_TABLE]);
  const documentClient = createDocumentClient(awsClientConfigFromEnv(env));
  const repository = createRegistryRepository(
    { devicesTable: tables.DEVICES_TABLE, presenceTable: tables.PRESENCE_TABLE },
    { documentClient },
  );
  const service = createRegistryService(DEFAULT_REGISTRY_CONFIG, {
    repository,
    clock: systemClock,
    logger,
  });
  return {
    handler: createRegistryHandler({ service, logger }),
    close: () => documentClient.destroy(),
  };
}

const root = lazy(() => createRegistryHandlerFromEnv(process.env).handler);

/** Lambda entry point. */
export const handler: RegistryHandler = (event) => root()(event);

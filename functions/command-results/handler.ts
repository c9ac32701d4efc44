import { CommandResult } from "../../lib/contracts/commands.ts";
import { ENV } from "../../lib/contracts/env.ts";
import { awsClientConfigFromEnv, createDocumentClient, lazy } from "../shared/clients.ts";
import { systemClock } from "../shared/clock.ts";
import { type Env, requireEnv } from "../shared/env.ts";
import { createLogger, type Logger, parseLogLevel } from "../shared/logger.ts";
import {
  parseRecord,
  processPartialBatch,
  type SqsBatchResponse,
  type SqsEvent,
} from "../shared/sqs-batch.ts";
import { createCommandResultsRepository } from "./repository.ts";
import { type CommandResultsService, createCommandResultsService } from "./service.ts";

/** SQS consumer of command results (queue `QUEUES.commandResults`), partial batch failures. */
export type CommandResultsHandler = (event: SqsEvent) => Promise<SqsBatchResponse>;

export function createCommandResultsHandler(deps: {
  service: CommandResultsService;
  logger: Logger;
}): CommandResultsHandler {
  return (event) =>
    processPartialBatch(
      event,
      async (record) => {
        await deps.service.apply(parseRecord(record, CommandResult));
      },
      { logger: deps.logger },
    );
}

/** Composition root from the environment; `close()` releases the client's sockets. */
export function createCommandResultsHandlerFromEnv(env: Env): {
  handler: CommandResultsHandler;
  close(): void;
} {
  const logger = createLogger({
    service: "command-results",
    level: parseLogLevel(env.AWS_LAMBDA_LOG_LEVEL),
  });
  const documentClient = createDocumentClient(awsClientConfigFromEnv(env));
  const repository = createCommandResultsRepository(
    { commandsTable: requireEnv(env, [ENV.COMMANDS_TABLE]).COMMANDS_TABLE },
    { documentClient },
  );
  const service = createCommandResultsService({ repository, clock: systemClock, logger });
  return {
    handler: createCommandResultsHandler({ service, logger }),
    close: () => documentClient.destroy(),
  };
}

const root = lazy(() => createCommandResultsHandlerFromEnv(process.env).handler);

/** Lambda entry point. */
export const handler: CommandResultsHandler = (event) => root()(event);

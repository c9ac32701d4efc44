import { ENV } from "../../lib/contracts/env.ts";
import { StreamEvent } from "../../lib/contracts/media.ts";
import { awsClientConfigFromEnv, createDocumentClient, lazy } from "../shared/clients.ts";
import { systemClock } from "../shared/clock.ts";
import { type Env, requireEnv } from "../shared/env.ts";
import { createLogger, type Logger, parseLogLevel } from "../shared/logger.ts";
import {
  parseRecord,
  processPartialBatch,
  type SqsBatchResponse,
  type SqsEvent,
  type SqsRecord,
} from "../shared/sqs-batch.ts";
import { createMediaEventsRepository } from "./repository.ts";
import { createMediaEventsService, type MediaEventsService } from "./service.ts";

/**
 * SQS consumer of the media-events queue (`QUEUES.mediaEvents`): `StreamEvent`s onto the streams
 * table, partial batch failures; a record that is not a `StreamEvent` is poison and reaches the
 * DLQ after the queue's maxReceiveCount.
 */
export type MediaHandler = (event: SqsEvent) => Promise<SqsBatchResponse>;

/** Events of one stream run in batch order (fewer conditional-write conflicts). */
export function streamIdGroupKey(record: SqsRecord): string {
  try {
    const body = JSON.parse(record.body) as { streamId?: unknown };
    if (typeof body.streamId === "string") return `stream:${body.streamId}`;
  } catch {
    // Poison; reported by the record handler.
  }
  return `message:${record.messageId}`;
}

export function createMediaHandler(deps: {
  service: MediaEventsService;
  logger: Logger;
}): MediaHandler {
  return (event) =>
    processPartialBatch(
      event,
      async (record) => {
        await deps.service.apply(parseRecord(record, StreamEvent));
      },
      { logger: deps.logger, groupKey: streamIdGroupKey },
    );
}

/** Composition root from the environment; `close()` releases the client's sockets. */
export function createMediaHandlerFromEnv(env: Env): { handler: MediaHandler; close(): void } {
  const logger = createLogger({ service: "media", level: parseLogLevel(env.AWS_LAMBDA_LOG_LEVEL) });
  const { STREAMS_TABLE } = requireEnv(env, [ENV.STREAMS_TABLE]);
  const documentClient = createDocumentClient(awsClientConfigFromEnv(env));
  const repository = createMediaEventsRepository(
    { streamsTable: STREAMS_TABLE },
    { documentClient },
  );
  const service = createMediaEventsService({ repository, clock: systemClock, logger });
  return {
    handler: createMediaHandler({ service, logger }),
    close: () => documentClient.destroy(),
  };
}

const root = lazy(() => createMediaHandlerFromEnv(process.env).handler);

/** Lambda entry point. */
export const handler: MediaHandler = (event) => root()(event);

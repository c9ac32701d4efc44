import { AlarmQueueMessage } from "../../lib/contracts/alarms.ts";
import { ENV } from "../../lib/contracts/env.ts";
import { awsClientConfigFromEnv, createDocumentClient, lazy } from "../shared/clients.ts";
import { systemClock } from "../shared/clock.ts";
import { ConfigError, type Env, optionalEnv, requireEnv } from "../shared/env.ts";
import { createLogger, type Logger, parseLogLevel } from "../shared/logger.ts";
import {
  deviceIdGroupKey,
  parseRecord,
  processPartialBatch,
  type SqsBatchResponse,
  type SqsEvent,
} from "../shared/sqs-batch.ts";
import { createAlarmsRepository } from "./repository.ts";
import {
  type AlarmsConfig,
  type AlarmsService,
  createAlarmsService,
  DEFAULT_ALARMS_CONFIG,
} from "./service.ts";

/**
 * The alarms function has two triggers: the `alarm-events` queue (SQS batches, partial batch
 * failures; a poison record reaches the DLQ after the queue's maxReceiveCount), and a schedule
 * (EventBridge, every minute) that runs the deadline sweep. One function, because both need the
 * same tables and grants; the event's shape tells them apart.
 */

/** Variable: seconds an alarm waits for its media before it is `partial` (default 120). */
export const ALARM_MEDIA_DEADLINE_VARIABLE = "ALARM_MEDIA_DEADLINE_SECONDS";

export interface SweepResult {
  moved: number;
  seen: number;
}

export function isSqsEvent(event: unknown): event is SqsEvent {
  return (
    typeof event === "object" &&
    event !== null &&
    Array.isArray((event as { Records?: unknown }).Records)
  );
}

export function createAlarmsHandler(deps: { service: AlarmsService; logger: Logger }) {
  const { service, logger } = deps;
  const batch = (event: SqsEvent): Promise<SqsBatchResponse> =>
    processPartialBatch(
      event,
      async (record) => {
        const message = parseRecord(record, AlarmQueueMessage);
        if (message.type === "alarm") {
          const { alarmId, created } = await service.applyAlarm(message);
          logger.debug("alarm", { eventId: message.eventId, alarmId, created });
        } else {
          const { alarmIds } = await service.applyMedia(message);
          logger.debug("media", { eventId: message.eventId, kind: message.kind, alarmIds });
        }
      },
      // One device's records in order: fewer conditional-write conflicts on its items.
      { logger, groupKey: deviceIdGroupKey },
    );
  return {
    batch,
    sweep: () => service.sweep(),
    /** Lambda entry: an SQS batch, or anything else (the scheduled event) runs the sweep. */
    handle: (event: unknown): Promise<SqsBatchResponse | SweepResult> =>
      isSqsEvent(event) ? batch(event) : service.sweep(),
  };
}

export function alarmsConfigFromEnv(env: Env): AlarmsConfig {
  const raw = optionalEnv(env, ALARM_MEDIA_DEADLINE_VARIABLE);
  if (raw === undefined) return DEFAULT_ALARMS_CONFIG;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86_400) {
    throw new ConfigError(`${ALARM_MEDIA_DEADLINE_VARIABLE} must be 1-86400 seconds, got ${raw}`);
  }
  return { ...DEFAULT_ALARMS_CONFIG, mediaDeadlineSeconds: seconds };
}

/** Composition root from the environment; `close()` releases the client's sockets. */
export function createAlarmsHandlerFromEnv(env: Env): ReturnType<typeof createAlarmsHandler> & {
  close(): void;
} {
  const logger = createLogger({
    service: "alarms",
    level: parseLogLevel(env.AWS_LAMBDA_LOG_LEVEL),
  });
  const tables = requireEnv(env, [ENV.ALARMS_TABLE, ENV.ALARM_MEDIA_TABLE, ENV.CAPTURES_TABLE]);
  const config = alarmsConfigFromEnv(env);
  const documentClient = createDocumentClient(awsClientConfigFromEnv(env));
  const repository = createAlarmsRepository(
    {
      alarmsTable: tables.ALARMS_TABLE,
      alarmMediaTable: tables.ALARM_MEDIA_TABLE,
      capturesTable: tables.CAPTURES_TABLE,
    },
    { documentClient },
  );
  const service = createAlarmsService(config, { repository, clock: systemClock, logger });
  return { ...createAlarmsHandler({ service, logger }), close: () => documentClient.destroy() };
}

const root = lazy(() => createAlarmsHandlerFromEnv(process.env));

/** Lambda entry point: SQS batches from `alarm-events`, and the scheduled deadline sweep. */
export const handler = (event: unknown) => root().handle(event);

import { ENV } from "../../lib/contracts/env.ts";
import {
  DeviceDataMessage,
  type PassthroughMessage,
  passthroughSortKey,
} from "../../lib/contracts/passthrough.ts";
import { type PositionsMessage, positionSortKey } from "../../lib/contracts/positions.ts";
import { expiresAt, TABLES } from "../../lib/contracts/tables.ts";
import { awsClientConfigFromEnv, createDocumentClient, lazy } from "../shared/clients.ts";
import { ConfigError, type Env, optionalEnv, requireEnv } from "../shared/env.ts";
import { createLogger, type Logger, parseLogLevel } from "../shared/logger.ts";
import {
  deviceIdGroupKey,
  parseRecord,
  processPartialBatch,
  type SqsBatchResponse,
  type SqsEvent,
} from "../shared/sqs-batch.ts";
import type { PassthroughItem, PositionItem } from "./items.ts";
import { createDeviceDataRepository, type DeviceDataRepository } from "./repository.ts";

/**
 * The device-data function: consumer of the device-data queue (`QUEUES.deviceData`).
 *
 * - `positions` (ehome-2.0 §2.9 GPS, batched per device by the agent): every fix is written to
 *   the positions table under `<time>#<sequence>`. The write is a put of the same item, so a fix
 *   the device resent (RetransFlag 1, same Time and Sequence) or a message SQS redelivered is
 *   stored once. The newest fix also goes on the device record (`position`, `positionAt`), by a
 *   conditional update that never moves it back in time.
 * - `passthrough` (ehome-2.0 §8 TRANSPARENT from the device): one item per message, listed by
 *   `GET /devices/{id}/passthrough?since`.
 */

/** Variables: how long positions and passthrough messages are kept (days). */
export const POSITIONS_TTL_VARIABLE = "POSITIONS_TTL_DAYS";
export const PASSTHROUGH_TTL_VARIABLE = "PASSTHROUGH_TTL_DAYS";

export interface DeviceDataConfig {
  readonly positionsTtlSeconds: number;
  readonly passthroughTtlSeconds: number;
}

export const DEFAULT_DEVICE_DATA_CONFIG: DeviceDataConfig = {
  positionsTtlSeconds: TABLES.positions.defaultTtlSeconds,
  passthroughTtlSeconds: TABLES.passthrough.defaultTtlSeconds,
};

export interface DeviceDataResult {
  stored: number;
  /** Of the message's positions, copies of another one in the same message (same key). */
  duplicates: number;
  latestMoved: boolean;
}

export function createDeviceDataService(
  config: DeviceDataConfig,
  deps: { repository: DeviceDataRepository; now?: () => number },
) {
  const now = deps.now ?? Date.now;
  return {
    async applyPositions(message: PositionsMessage): Promise<DeviceDataResult> {
      const byKey = new Map<string, PositionItem>();
      for (const position of message.positions) {
        const at = positionSortKey(position.time, position.sequence);
        // The first copy wins: a RetransFlag 1 copy repeats it (BatchWriteItem also refuses
        // two requests for one key).
        if (byKey.has(at)) continue;
        byKey.set(at, {
          ...position,
          deviceId: message.deviceId,
          at,
          expiresAt: expiresAt(Date.parse(position.receivedAt), config.positionsTtlSeconds),
        });
      }
      const items = [...byKey.values()];
      await deps.repository.putPositions(items);
      let latest = items[0]!;
      for (const item of items) if (item.at > latest.at) latest = item;
      const { deviceId: _d, at: _a, expiresAt: _e, ...position } = latest;
      const latestMoved =
        Date.parse(position.time) <= now() + 24 * 3600_000 &&
        (await deps.repository.setLatestPosition(message.deviceId, position));
      return {
        stored: items.length,
        duplicates: message.positions.length - items.length,
        latestMoved,
      };
    },
    async applyPassthrough(message: PassthroughMessage): Promise<void> {
      const item: PassthroughItem = {
        deviceId: message.deviceId,
        at: passthroughSortKey(message.receivedAt, message.sequence),
        sequence: message.sequence,
        ...(message.channel === undefined ? {} : { channel: message.channel }),
        data: message.data,
        receivedAt: message.receivedAt,
        agentId: message.agentId,
        eventId: message.eventId,
        expiresAt: expiresAt(Date.parse(message.receivedAt), config.passthroughTtlSeconds),
      };
      await deps.repository.putPassthrough(item);
    },
  };
}
export type DeviceDataService = ReturnType<typeof createDeviceDataService>;

export type DeviceDataHandler = (event: SqsEvent) => Promise<SqsBatchResponse>;

export function createDeviceDataHandler(deps: {
  service: DeviceDataService;
  logger: Logger;
}): DeviceDataHandler {
  const { service, logger } = deps;
  return (event) =>
    processPartialBatch(
      event,
      async (record) => {
        const message = parseRecord(record, DeviceDataMessage);
        if (message.type === "positions") {
          const result = await service.applyPositions(message);
          logger.debug("positions", { eventId: message.eventId, ...result });
        } else {
          await service.applyPassthrough(message);
          logger.debug("passthrough", { eventId: message.eventId, deviceId: message.deviceId });
        }
      },
      { logger, groupKey: deviceIdGroupKey },
    );
}

function ttlDays(env: Env, name: string, fallbackSeconds: number): number {
  const raw = optionalEnv(env, name);
  if (raw === undefined) return fallbackSeconds;
  const days = Number(raw);
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new ConfigError(`${name} must be 1-3650 days, got ${raw}`);
  }
  return days * 86_400;
}

export function deviceDataConfigFromEnv(env: Env): DeviceDataConfig {
  return {
    positionsTtlSeconds: ttlDays(
      env,
      POSITIONS_TTL_VARIABLE,
      DEFAULT_DEVICE_DATA_CONFIG.positionsTtlSeconds,
    ),
    passthroughTtlSeconds: ttlDays(
      env,
      PASSTHROUGH_TTL_VARIABLE,
      DEFAULT_DEVICE_DATA_CONFIG.passthroughTtlSeconds,
    ),
  };
}

/** Composition root from the environment; `close()` releases the client's sockets. */
export function createDeviceDataHandlerFromEnv(env: Env): {
  handler: DeviceDataHandler;
  close(): void;
} {
  const logger = createLogger({
    service: "device-data",
    level: parseLogLevel(env.AWS_LAMBDA_LOG_LEVEL),
  });
  const tables = requireEnv(env, [ENV.DEVICES_TABLE, ENV.POSITIONS_TABLE, ENV.PASSTHROUGH_TABLE]);
  const config = deviceDataConfigFromEnv(env);
  const documentClient = createDocumentClient(awsClientConfigFromEnv(env));
  const repository = createDeviceDataRepository(
    {
      devicesTable: tables.DEVICES_TABLE,
      positionsTable: tables.POSITIONS_TABLE,
      passthroughTable: tables.PASSTHROUGH_TABLE,
    },
    { documentClient },
  );
  const service = createDeviceDataService(config, { repository });
  return {
    handler: createDeviceDataHandler({ service, logger }),
    close: () => documentClient.destroy(),
  };
}

const root = lazy(() => createDeviceDataHandlerFromEnv(process.env).handler);

/** Lambda entry point: SQS batches from `device-data`. */
export const handler: DeviceDataHandler = (event) => root()(event);

import {
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  type DynamoDBDocumentClient,
  PutCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { type Position, positionSortKey } from "../../lib/contracts/positions.ts";
import { deviceKey } from "../../lib/contracts/tables.ts";
import { storageCall } from "../shared/batch-get.ts";
import { isConditionalCheckFailed } from "../shared/errors.ts";
import type { PassthroughItem, PositionItem } from "./items.ts";

/**
 * Storage of the device-data function: positions (BatchWriteItem, idempotent puts keyed by
 * `<time>#<sequence>`), the latest position on the device record (a conditional update that only
 * moves forward in time), and device-initiated passthrough messages.
 */

export interface DeviceDataRepositoryConfig {
  readonly devicesTable: string;
  readonly positionsTable: string;
  readonly passthroughTable: string;
}

export interface DeviceDataRepository {
  /** Writes the items (distinct keys), retrying unprocessed ones. */
  putPositions(items: readonly PositionItem[]): Promise<void>;
  /**
   * Sets `position`/`positionAt` (and `positionKey`, `<time>#<sequence>`) on a live device record
   * when the fix is newer than what it holds. False when it was not newer, or there is no live record (nothing written).
   */
  setLatestPosition(deviceId: string, position: Position): Promise<boolean>;
  putPassthrough(item: PassthroughItem): Promise<void>;
}

/** BatchWriteItem takes at most 25 requests. */
const BATCH = 25;
const MAX_ROUNDS = 8;

export function createDeviceDataRepository(
  config: DeviceDataRepositoryConfig,
  deps: { documentClient: DynamoDBDocumentClient; sleep?: (ms: number) => Promise<void> },
): DeviceDataRepository {
  const db = deps.documentClient;
  const sleep = deps.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  return {
    async putPositions(items) {
      for (let i = 0; i < items.length; i += BATCH) {
        let pending: unknown[] | undefined = items
          .slice(i, i + BATCH)
          .map((Item) => ({ PutRequest: { Item } }));
        for (let round = 0; pending && pending.length > 0; round++) {
          if (round >= MAX_ROUNDS) {
            throw new Error(`positions: ${pending.length} writes still unprocessed`);
          }
          if (round > 0) await sleep(Math.min(50 * 2 ** round, 2000));
          const requests: unknown[] = pending;
          const res: BatchWriteCommandOutput = await storageCall("positions.BatchWriteItem", () =>
            db.send(
              new BatchWriteCommand({
                RequestItems: { [config.positionsTable]: requests as never },
              }),
            ),
          );
          pending = res.UnprocessedItems?.[config.positionsTable] as unknown[] | undefined;
        }
      }
    },
    async setLatestPosition(deviceId, position) {
      try {
        await storageCall("devices.UpdateItem(position)", () =>
          db.send(
            new UpdateCommand({
              TableName: config.devicesTable,
              Key: deviceKey(deviceId),
              UpdateExpression: "SET #p = :p, #t = :t, #k = :k",
              // Ordered by `<time>#<sequence>`: fixes within one second (Time has whole
              // seconds) still move forward by Sequence.
              ConditionExpression:
                "attribute_exists(#id) AND attribute_not_exists(#del) AND " +
                "(attribute_not_exists(#k) OR #k < :k)",
              ExpressionAttributeNames: {
                "#p": "position",
                "#t": "positionAt",
                "#k": "positionKey",
                "#id": "deviceId",
                "#del": "deletedAt",
              },
              ExpressionAttributeValues: {
                ":p": position,
                ":t": position.time,
                ":k": positionSortKey(position.time, position.sequence),
              },
            }),
          ),
        );
        return true;
      } catch (error) {
        const cause = (error as { cause?: unknown }).cause ?? error;
        if (isConditionalCheckFailed(cause) || isConditionalCheckFailed(error)) return false;
        throw error;
      }
    },
    async putPassthrough(item) {
      await storageCall("passthrough.PutItem", () =>
        db.send(new PutCommand({ TableName: config.passthroughTable, Item: item })),
      );
    },
  };
}

import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { CapabilitiesResult } from "../../lib/contracts/capabilities.ts";
import { deviceKey } from "../../lib/contracts/tables.ts";
import type { PassthroughItem, PositionItem } from "../device-data/items.ts";
import { storageCall } from "../shared/batch-get.ts";
import { isConditionalCheckFailed } from "../shared/errors.ts";
import type { CursorKey } from "./cursor.ts";
import type { Page } from "./ports.ts";

/**
 * Reads of the positions and passthrough tables (written by `functions/device-data/`), and the
 * capability cache on the device record (issue 8).
 */

/** Attributes the device-data function and the capabilities route keep on a device record. */
export interface DeviceDataAttributes {
  position?: Omit<PositionItem, "deviceId" | "at" | "expiresAt">;
  positionAt?: string;
  capabilities?: CapabilitiesResult;
  capabilitiesAt?: string;
  /** A `capabilities` command still running when its request returned (read-repaired later). */
  capabilitiesCommandId?: string;
}

export interface RangeQuery {
  /** Sort-key bounds, inclusive. */
  from: string;
  to: string;
  limit: number;
  startKey?: CursorKey;
}

export interface DeviceDataReadRepository {
  /** Positions of a device in sort-key order (oldest first). */
  track(deviceId: string, range: RangeQuery): Promise<Page<PositionItem>>;
  /** Device-initiated passthrough messages, oldest first. */
  passthrough(deviceId: string, range: RangeQuery): Promise<Page<PassthroughItem>>;
  /**
   * Stores a capability answer (or, with `result` undefined, the id of the command fetching it)
   * on a live device record. False when there is none.
   */
  setCapabilities(
    deviceId: string,
    update: { result: CapabilitiesResult; at: string } | { commandId: string },
  ): Promise<boolean>;
}

export function createDeviceDataReadRepository(
  config: { positionsTable: string; passthroughTable: string; devicesTable: string },
  deps: { documentClient: DynamoDBDocumentClient },
): DeviceDataReadRepository {
  const db = deps.documentClient;
  const range = async <T>(table: string, label: string, deviceId: string, q: RangeQuery) => {
    const out = await storageCall(`${label}.Query`, () =>
      db.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: "#d = :d AND #at BETWEEN :from AND :to",
          ExpressionAttributeNames: { "#d": "deviceId", "#at": "at" },
          ExpressionAttributeValues: { ":d": deviceId, ":from": q.from, ":to": q.to },
          Limit: q.limit,
          ScanIndexForward: true,
          ...(q.startKey ? { ExclusiveStartKey: q.startKey } : {}),
        }),
      ),
    );
    const nowSeconds = Math.floor(Date.now() / 1000);
    // TTL expiry is lazy: expired items may still be returned for a while.
    const items = ((out.Items ?? []) as (T & { expiresAt?: number })[]).filter(
      (item) => item.expiresAt === undefined || item.expiresAt > nowSeconds,
    );
    const page: Page<T> = { items };
    if (out.LastEvaluatedKey) page.lastKey = out.LastEvaluatedKey as CursorKey;
    return page;
  };
  return {
    track: (deviceId, q) => range<PositionItem>(config.positionsTable, "positions", deviceId, q),
    passthrough: (deviceId, q) =>
      range<PassthroughItem>(config.passthroughTable, "passthrough", deviceId, q),
    async setCapabilities(deviceId, update) {
      const values: Record<string, unknown> =
        "result" in update ? { ":c": update.result, ":t": update.at } : { ":id": update.commandId };
      try {
        await storageCall("devices.UpdateItem(capabilities)", () =>
          db.send(
            new UpdateCommand({
              TableName: config.devicesTable,
              Key: deviceKey(deviceId),
              UpdateExpression:
                "result" in update ? "SET #c = :c, #t = :t REMOVE #cmd" : "SET #cmd = :id",
              ConditionExpression: "attribute_exists(#id) AND attribute_not_exists(#del)",
              ExpressionAttributeNames: {
                ...("result" in update ? { "#c": "capabilities", "#t": "capabilitiesAt" } : {}),
                "#cmd": "capabilitiesCommandId",
                "#id": "deviceId",
                "#del": "deletedAt",
              },
              ExpressionAttributeValues: values,
            }),
          ),
        );
        return true;
      } catch (error) {
        const cause = (error as { cause?: unknown }).cause;
        if (isConditionalCheckFailed(cause) || isConditionalCheckFailed(error)) return false;
        throw error;
      }
    },
  };
}

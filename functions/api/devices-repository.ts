import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { DEVICES_BY_STATUS_INDEX, deviceKey } from "../../lib/contracts/tables.ts";
import { batchGetItems, storageCall } from "../shared/batch-get.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";
import type { DeviceItem, PresenceItem } from "../shared/items.ts";
import type { CursorKey } from "./cursor.ts";
import type { DevicesRepository, Page, PresenceRepository } from "./ports.ts";

/**
 * A filtered page may need several DynamoDB pages (a filter is applied after `Limit`); this caps
 * the reads per request. A short page with a cursor is then returned, which clients must follow.
 */
const MAX_READS_PER_PAGE = 10;
const FILTERED_READ_SIZE = 100;

const call = storageCall;

export function createDevicesRepository(
  config: { readonly devicesTable: string },
  deps: { documentClient: DynamoDBDocumentClient },
): DevicesRepository {
  const db = deps.documentClient;
  const TableName = config.devicesTable;

  /** Whole items for index hits, by deviceId; deleted ones are absent. */
  const batchGet = async (keys: readonly DeviceItem[]): Promise<Map<string, DeviceItem>> => {
    const items = await batchGetItems<DeviceItem>(
      db,
      { name: TableName, label: "devices" },
      keys.map((k) => deviceKey(k.deviceId)),
    );
    return new Map(
      items.filter((item) => item.deletedAt === undefined).map((item) => [item.deviceId, item]),
    );
  };

  return {
    async get(deviceId) {
      const out = await call("devices.GetItem", () =>
        db.send(new GetCommand({ TableName, Key: deviceKey(deviceId), ConsistentRead: true })),
      );
      const item = out.Item as DeviceItem | undefined;
      return item && item.deletedAt === undefined ? item : undefined;
    },

    async list({ status, model, firmware, limit, startKey }) {
      const names: Record<string, string> = {};
      const values: Record<string, unknown> = {};
      const filters: string[] = [];
      if (model !== undefined) {
        names["#devType"] = "devType";
        values[":devType"] = model;
        filters.push("#devType = :devType");
      }
      if (firmware !== undefined) {
        names["#firmware"] = "firmwareVersion";
        values[":firmware"] = firmware;
        filters.push("#firmware = :firmware");
      }
      // Tombstones carry no status, so the index never holds them; a scan must skip them.
      if (status === undefined) {
        names["#deletedAt"] = "deletedAt";
        filters.push("attribute_not_exists(#deletedAt)");
      } else {
        names["#status"] = "status";
        values[":status"] = status;
      }
      const readSize = model !== undefined || firmware !== undefined ? FILTERED_READ_SIZE : limit;
      const keyOf = (item: DeviceItem): CursorKey =>
        status === undefined
          ? { deviceId: item.deviceId }
          : { deviceId: item.deviceId, status: item.status ?? status };

      const items: DeviceItem[] = [];
      let exclusiveStartKey: Record<string, unknown> | undefined = startKey;
      for (let reads = 0; reads < MAX_READS_PER_PAGE; reads++) {
        const common = {
          TableName,
          Limit: readSize,
          ...(filters.length > 0 ? { FilterExpression: filters.join(" AND ") } : {}),
          ExpressionAttributeNames: names,
          ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
          ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}),
        };
        const out =
          status === undefined
            ? await call("devices.Scan", () => db.send(new ScanCommand(common)))
            : await call("devices.Query", () =>
                db.send(
                  new QueryCommand({
                    ...common,
                    IndexName: DEVICES_BY_STATUS_INDEX,
                    KeyConditionExpression: "#status = :status",
                  }),
                ),
              );
        const found = (out.Items ?? []) as DeviceItem[];
        // The status index projects only keys and filter attributes (lib/contracts/tables.ts),
        // so whole items come from the table.
        const full = status === undefined ? undefined : await batchGet(found);
        const page = full ? found.filter((k) => full.has(k.deviceId)) : found;
        for (let i = 0; i < page.length; i++) {
          items.push(full ? full.get(page[i]!.deviceId)! : page[i]!);
          if (items.length === limit) {
            const more = i < page.length - 1 || out.LastEvaluatedKey !== undefined;
            return more ? { items, lastKey: keyOf(page[i]!) } : { items };
          }
        }
        exclusiveStartKey = out.LastEvaluatedKey;
        if (!exclusiveStartKey) return { items };
      }
      return { items, lastKey: exclusiveStartKey as CursorKey };
    },

    async provision(deviceId, input) {
      const names: Record<string, string> = {
        "#provisioned": "provisioned",
        "#labels": "labels",
        "#updated": "provisioningUpdatedAt",
        "#createdAt": "createdAt",
        "#deletedAt": "deletedAt",
        "#passwordHash": "passwordHash",
      };
      const values: Record<string, unknown> = {
        ":provisioned": input.provisioned,
        ":labels": input.labels,
        ":now": input.now,
      };
      const sets = [
        "#provisioned = :provisioned",
        "#labels = :labels",
        "#updated = :now",
        "#createdAt = if_not_exists(#createdAt, :now)",
      ];
      if (input.timeZone !== undefined) {
        names["#timeZone"] = "timeZone";
        values[":timeZone"] = input.timeZone;
        sets.push("#timeZone = :timeZone");
      }
      const removes = ["#deletedAt"];
      if (input.passwordHash === undefined) removes.push("#passwordHash");
      else {
        values[":passwordHash"] = input.passwordHash;
        sets.push("#passwordHash = :passwordHash");
      }
      const out = await call("devices.UpdateItem", () =>
        db.send(
          new UpdateCommand({
            TableName,
            Key: deviceKey(deviceId),
            UpdateExpression: `SET ${sets.join(", ")} REMOVE ${removes.join(", ")}`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: "ALL_NEW",
          }),
        ),
      );
      const item = out.Attributes as DeviceItem;
      // `createdAt` was set by this very write: no live record existed (a tombstone has none).
      return { item, created: item.createdAt === input.now };
    },

    async setTimeZone(deviceId, timeZone, now) {
      try {
        await db.send(
          new UpdateCommand({
            TableName,
            Key: deviceKey(deviceId),
            UpdateExpression: "SET #timeZone = :timeZone, #updated = :now",
            ConditionExpression: "attribute_exists(#id) AND attribute_not_exists(#deletedAt)",
            ExpressionAttributeNames: {
              "#id": "deviceId",
              "#deletedAt": "deletedAt",
              "#timeZone": "timeZone",
              "#updated": "timeZoneUpdatedAt",
            },
            ExpressionAttributeValues: { ":timeZone": timeZone, ":now": now },
          }),
        );
        return true;
      } catch (error) {
        if (isConditionalCheckFailed(error)) return false;
        throw new StorageError("devices.UpdateItem", error);
      }
    },

    async remove(deviceId, now) {
      try {
        await db.send(
          new PutCommand({
            TableName,
            Item: { deviceId, deletedAt: now } satisfies DeviceItem,
            ConditionExpression: "attribute_exists(#id) AND attribute_not_exists(#deletedAt)",
            ExpressionAttributeNames: { "#id": "deviceId", "#deletedAt": "deletedAt" },
          }),
        );
        return true;
      } catch (error) {
        if (isConditionalCheckFailed(error)) return false;
        throw new StorageError("devices.PutItem", error);
      }
    },
  };
}

export function createPresenceRepository(
  config: { readonly presenceTable: string },
  deps: { documentClient: DynamoDBDocumentClient },
): PresenceRepository {
  return {
    async list(deviceId, { limit, startKey }): Promise<Page<PresenceItem>> {
      const out = await call("presence.Query", () =>
        deps.documentClient.send(
          new QueryCommand({
            TableName: config.presenceTable,
            KeyConditionExpression: "#deviceId = :deviceId",
            ExpressionAttributeNames: { "#deviceId": "deviceId" },
            ExpressionAttributeValues: { ":deviceId": deviceId },
            ScanIndexForward: false,
            Limit: limit,
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        ),
      );
      const items = (out.Items ?? []) as PresenceItem[];
      return out.LastEvaluatedKey
        ? { items, lastKey: out.LastEvaluatedKey as CursorKey }
        : { items };
    },
  };
}

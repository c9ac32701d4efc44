import { type DynamoDBDocumentClient, GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import {
  ALARMS_BY_DEVICE_INDEX,
  ALARMS_BY_RECEIVED_INDEX,
  ALARMS_LIST_SHARD,
  alarmKey,
} from "../../lib/contracts/tables.ts";
import type { AlarmItem } from "../alarms/items.ts";
import { batchGetItems, storageCall } from "../shared/batch-get.ts";
import type { CursorKey } from "./cursor.ts";
import type { Page } from "./ports.ts";

/** Reads of the alarms table for the API (the alarms function writes it). */

export interface ListAlarmsInput {
  deviceId?: string;
  alarmType?: number;
  /** ISO 8601 bounds on `receivedAt`, inclusive. */
  from?: string;
  to?: string;
  limit: number;
  startKey?: CursorKey;
  /** Applied to whole items (the state depends on the clock, so it is not a DynamoDB filter). */
  keep?: (item: AlarmItem) => boolean;
}

export interface AlarmsReadRepository {
  get(alarmId: string): Promise<AlarmItem | undefined>;
  /** Newest first (by `receivedAt`). */
  list(input: ListAlarmsInput): Promise<Page<AlarmItem>>;
}

const MAX_READS_PER_PAGE = 10;
const FILTERED_READ_SIZE = 100;

const call = storageCall;

export function createAlarmsReadRepository(
  config: { readonly alarmsTable: string },
  deps: { documentClient: DynamoDBDocumentClient },
): AlarmsReadRepository {
  const db = deps.documentClient;
  const TableName = config.alarmsTable;

  const batchGet = async (ids: readonly string[]): Promise<Map<string, AlarmItem>> => {
    const items = await batchGetItems<AlarmItem>(
      db,
      { name: TableName, label: "alarms" },
      ids.map(alarmKey),
    );
    return new Map(items.map((item) => [item.alarmId, item]));
  };

  return {
    async get(alarmId) {
      const out = await call("alarms.GetItem", () =>
        db.send(new GetCommand({ TableName, Key: alarmKey(alarmId), ConsistentRead: true })),
      );
      return out.Item as AlarmItem | undefined;
    },

    async list({ deviceId, alarmType, from, to, limit, startKey, keep }) {
      const byDevice = deviceId !== undefined;
      const names: Record<string, string> = { "#pk": byDevice ? "deviceId" : "listShard" };
      if (from !== undefined || to !== undefined) names["#at"] = "receivedAt";
      const values: Record<string, unknown> = { ":pk": byDevice ? deviceId : ALARMS_LIST_SHARD };
      let condition = "#pk = :pk";
      if (from !== undefined && to !== undefined) {
        condition += " AND #at BETWEEN :from AND :to";
        values[":from"] = from;
        values[":to"] = to;
      } else if (from !== undefined) {
        condition += " AND #at >= :from";
        values[":from"] = from;
      } else if (to !== undefined) {
        condition += " AND #at <= :to";
        values[":to"] = to;
      }
      let filter: string | undefined;
      if (alarmType !== undefined) {
        // `alarmType` is projected into both list indexes (lib/contracts/tables.ts).
        names["#type"] = "alarmType";
        values[":type"] = alarmType;
        filter = "#type = :type";
      }
      const filtered = filter !== undefined || keep !== undefined;
      const keyOf = (item: AlarmItem): CursorKey => ({
        alarmId: item.alarmId,
        receivedAt: item.receivedAt,
        ...(byDevice ? { deviceId: item.deviceId } : { listShard: item.listShard }),
      });

      const items: AlarmItem[] = [];
      let exclusiveStartKey: Record<string, unknown> | undefined = startKey;
      for (let reads = 0; reads < MAX_READS_PER_PAGE; reads++) {
        const out = await call("alarms.Query", () =>
          db.send(
            new QueryCommand({
              TableName,
              IndexName: byDevice ? ALARMS_BY_DEVICE_INDEX : ALARMS_BY_RECEIVED_INDEX,
              KeyConditionExpression: condition,
              ...(filter ? { FilterExpression: filter } : {}),
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: values,
              ScanIndexForward: false,
              Limit: filtered ? Math.max(limit, FILTERED_READ_SIZE) : limit,
              ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}),
            }),
          ),
        );
        const keys = (out.Items ?? []) as AlarmItem[];
        const full = await batchGet(keys.map((k) => k.alarmId));
        for (let i = 0; i < keys.length; i++) {
          const item = full.get(keys[i]!.alarmId);
          if (!item || (keep && !keep(item))) continue;
          items.push(item);
          if (items.length === limit) {
            const more = i < keys.length - 1 || out.LastEvaluatedKey !== undefined;
            return more ? { items, lastKey: keyOf(item) } : { items };
          }
        }
        exclusiveStartKey = out.LastEvaluatedKey;
        if (!exclusiveStartKey) return { items };
      }
      return { items, lastKey: exclusiveStartKey as CursorKey };
    },
  };
}

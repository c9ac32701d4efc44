import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { CAMPAIGNS_BY_ACTIVE_INDEX } from "../../lib/contracts/tables.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";
import type { DeviceItem } from "../shared/items.ts";
import type { CampaignItem, ExecutionItem, ExecutionState, FirmwareItem } from "./model.ts";

/** DynamoDB access of the upgrades feature: firmware, campaigns, executions, devices (read). */

export interface UpgradeTableNames {
  readonly firmware: string;
  readonly campaigns: string;
  readonly executions: string;
  readonly devices: string;
}

async function call<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new StorageError(operation, error);
  }
}

/** `SET` clause, names and values for `changes` (undefined values skipped, `null` removes). */
function setClause(changes: Record<string, unknown>) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  const removes: string[] = [];
  Object.entries(changes).forEach(([attribute, value], i) => {
    if (value === undefined) return;
    names[`#c${i}`] = attribute;
    if (value === null) {
      removes.push(`#c${i}`);
      return;
    }
    values[`:c${i}`] = value;
    sets.push(`#c${i} = :c${i}`);
  });
  const expression = [
    sets.length ? `SET ${sets.join(", ")}` : "",
    removes.length ? `REMOVE ${removes.join(", ")}` : "",
  ]
    .filter(Boolean)
    .join(" ");
  return { expression, names, values };
}

type Changes<T> = { [K in keyof T]?: T[K] | null };

export function createUpgradesRepository(
  tables: UpgradeTableNames,
  deps: { documentClient: DynamoDBDocumentClient },
) {
  const db = deps.documentClient;

  async function conditionalUpdate<T>(
    operation: string,
    input: {
      TableName: string;
      Key: Record<string, unknown>;
      changes: Record<string, unknown>;
      condition: string;
      names?: Record<string, string>;
      values?: Record<string, unknown>;
    },
  ): Promise<T | undefined> {
    const set = setClause(input.changes);
    const values = { ...set.values, ...input.values };
    try {
      const out = await db.send(
        new UpdateCommand({
          TableName: input.TableName,
          Key: input.Key,
          UpdateExpression: set.expression,
          ConditionExpression: input.condition,
          ExpressionAttributeNames: { ...set.names, ...input.names },
          ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
          ReturnValues: "ALL_NEW",
        }),
      );
      return out.Attributes as T;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw new StorageError(operation, error);
    }
  }

  async function queryAll<T>(
    operation: string,
    input: ConstructorParameters<typeof QueryCommand>[0],
  ) {
    const items: T[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await call(operation, () =>
        db.send(
          new QueryCommand({ ...input, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }),
        ),
      );
      items.push(...((out.Items ?? []) as T[]));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  return {
    // Firmware ---------------------------------------------------------------------------------
    async createFirmware(item: FirmwareItem): Promise<void> {
      await call("firmware.PutItem", () =>
        db.send(
          new PutCommand({
            TableName: tables.firmware,
            Item: item,
            ConditionExpression: "attribute_not_exists(firmwareId)",
          }),
        ),
      );
    },
    async getFirmware(firmwareId: string): Promise<FirmwareItem | undefined> {
      const out = await call("firmware.GetItem", () =>
        db.send(
          new GetCommand({ TableName: tables.firmware, Key: { firmwareId }, ConsistentRead: true }),
        ),
      );
      return out.Item as FirmwareItem | undefined;
    },
    async listFirmware(): Promise<FirmwareItem[]> {
      const items: FirmwareItem[] = [];
      let startKey: Record<string, unknown> | undefined;
      do {
        const out = await call("firmware.Scan", () =>
          db.send(
            new ScanCommand({
              TableName: tables.firmware,
              ...(startKey ? { ExclusiveStartKey: startKey } : {}),
            }),
          ),
        );
        items.push(...((out.Items ?? []) as FirmwareItem[]));
        startKey = out.LastEvaluatedKey;
      } while (startKey);
      return items.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },
    /** Moves firmware from `from` to the state in `changes`; undefined when not in `from`. */
    transitionFirmware(
      firmwareId: string,
      from: FirmwareItem["state"],
      changes: Changes<FirmwareItem>,
    ): Promise<FirmwareItem | undefined> {
      return conditionalUpdate("firmware.UpdateItem", {
        TableName: tables.firmware,
        Key: { firmwareId },
        changes,
        condition: "#fromState = :fromState",
        names: { "#fromState": "state" },
        values: { ":fromState": from },
      });
    },
    async deleteFirmware(firmwareId: string): Promise<void> {
      await call("firmware.DeleteItem", () =>
        db.send(new DeleteCommand({ TableName: tables.firmware, Key: { firmwareId } })),
      );
    },

    // Campaigns --------------------------------------------------------------------------------
    async createCampaign(campaign: CampaignItem, executions: ExecutionItem[]): Promise<void> {
      // Executions first: a tick that sees the active campaign finds all of them.
      for (let i = 0; i < executions.length; i += 25) {
        let pending: Record<string, unknown>[] | undefined = executions
          .slice(i, i + 25)
          .map((Item) => ({ PutRequest: { Item } }));
        for (let attempt = 0; pending && pending.length > 0; attempt++) {
          if (attempt > 8) throw new StorageError("executions.BatchWriteItem", "unprocessed");
          const out = await call("executions.BatchWriteItem", () =>
            db.send(
              new BatchWriteCommand({
                RequestItems: { [tables.executions]: pending as never },
              }),
            ),
          );
          pending = out.UnprocessedItems?.[tables.executions] as
            | Record<string, unknown>[]
            | undefined;
        }
      }
      await call("campaigns.PutItem", () =>
        db.send(
          new PutCommand({
            TableName: tables.campaigns,
            Item: campaign,
            ConditionExpression: "attribute_not_exists(campaignId)",
          }),
        ),
      );
    },
    async getCampaign(campaignId: string): Promise<CampaignItem | undefined> {
      const out = await call("campaigns.GetItem", () =>
        db.send(
          new GetCommand({
            TableName: tables.campaigns,
            Key: { campaignId },
            ConsistentRead: true,
          }),
        ),
      );
      return out.Item as CampaignItem | undefined;
    },
    /** Campaigns that still have work (the sparse `byActive` index; eventually consistent). */
    async activeCampaigns(): Promise<{ campaignId: string; firmwareId: string; state: string }[]> {
      return queryAll("campaigns.Query", {
        TableName: tables.campaigns,
        IndexName: CAMPAIGNS_BY_ACTIVE_INDEX,
        KeyConditionExpression: "#a = :a",
        ExpressionAttributeNames: { "#a": "active" },
        ExpressionAttributeValues: { ":a": "1" },
      });
    },
    async listCampaigns(): Promise<CampaignItem[]> {
      const out = await call("campaigns.Scan", () =>
        db.send(new ScanCommand({ TableName: tables.campaigns })),
      );
      return ((out.Items ?? []) as CampaignItem[]).sort((a, b) =>
        b.createdAt.localeCompare(a.createdAt),
      );
    },
    /**
     * Conditional campaign update: `condition` over `#state`/`#seq` (names provided), e.g. the
     * dispatch round `#seq = :seq AND #state = :running`.
     */
    updateCampaign(
      campaignId: string,
      changes: Changes<CampaignItem>,
      condition: { states?: readonly string[]; bucketSeq?: number },
    ): Promise<CampaignItem | undefined> {
      const values: Record<string, unknown> = {};
      const parts = ["attribute_exists(campaignId)"];
      const names: Record<string, string> = {};
      if (condition.states) {
        names["#cs"] = "state";
        parts.push(
          `#cs IN (${condition.states
            .map((s, i) => {
              values[`:cs${i}`] = s;
              return `:cs${i}`;
            })
            .join(", ")})`,
        );
      }
      if (condition.bucketSeq !== undefined) {
        names["#seq"] = "bucketSeq";
        values[":seq"] = condition.bucketSeq;
        parts.push("#seq = :seq");
      }
      return conditionalUpdate("campaigns.UpdateItem", {
        TableName: tables.campaigns,
        Key: { campaignId },
        changes,
        condition: parts.join(" AND "),
        names,
        values,
      });
    },

    // Executions -------------------------------------------------------------------------------
    listExecutions(campaignId: string): Promise<ExecutionItem[]> {
      return queryAll<ExecutionItem>("executions.Query", {
        TableName: tables.executions,
        KeyConditionExpression: "#c = :c",
        ExpressionAttributeNames: { "#c": "campaignId" },
        ExpressionAttributeValues: { ":c": campaignId },
        ConsistentRead: true,
      });
    },
    async pageExecutions(
      campaignId: string,
      limit: number,
      startKey?: Record<string, unknown>,
    ): Promise<{ items: ExecutionItem[]; lastKey?: Record<string, unknown> }> {
      const out = await call("executions.Query", () =>
        db.send(
          new QueryCommand({
            TableName: tables.executions,
            KeyConditionExpression: "#c = :c",
            ExpressionAttributeNames: { "#c": "campaignId" },
            ExpressionAttributeValues: { ":c": campaignId },
            Limit: limit,
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        ),
      );
      return {
        items: (out.Items ?? []) as ExecutionItem[],
        ...(out.LastEvaluatedKey ? { lastKey: out.LastEvaluatedKey } : {}),
      };
    },
    async getExecution(campaignId: string, deviceId: string): Promise<ExecutionItem | undefined> {
      const out = await call("executions.GetItem", () =>
        db.send(
          new GetCommand({
            TableName: tables.executions,
            Key: { campaignId, deviceId },
            ConsistentRead: true,
          }),
        ),
      );
      return out.Item as ExecutionItem | undefined;
    },
    /**
     * Moves an execution from one of `from` (and, when given, the same `attempt`) to the state
     * in `changes`. Returns the item after the write, or undefined when the condition failed:
     * someone else (a concurrent tick, a redelivered event) moved it first.
     */
    transitionExecution(
      key: { campaignId: string; deviceId: string },
      from: readonly ExecutionState[],
      attempt: number | undefined,
      changes: Changes<ExecutionItem>,
      extraCondition?: {
        expression: string;
        names: Record<string, string>;
        values: Record<string, unknown>;
      },
    ): Promise<ExecutionItem | undefined> {
      const values: Record<string, unknown> = { ...extraCondition?.values };
      const names: Record<string, string> = { "#es": "state", ...extraCondition?.names };
      const parts = [
        `#es IN (${from
          .map((s, i) => {
            values[`:es${i}`] = s;
            return `:es${i}`;
          })
          .join(", ")})`,
      ];
      if (attempt !== undefined) {
        names["#att"] = "attempt";
        values[":att"] = attempt;
        parts.push("#att = :att");
      }
      if (extraCondition) parts.push(extraCondition.expression);
      return conditionalUpdate("executions.UpdateItem", {
        TableName: tables.executions,
        Key: { campaignId: key.campaignId, deviceId: key.deviceId },
        changes,
        condition: parts.join(" AND "),
        names,
        values,
      });
    },

    // Devices (read only) ----------------------------------------------------------------------
    /** Every live device matching the filter (a Scan: campaigns are created rarely). */
    async scanDevices(filter: {
      model?: string;
      firmware?: string;
      labels?: Record<string, string>;
    }): Promise<DeviceItem[]> {
      const names: Record<string, string> = { "#del": "deletedAt" };
      const values: Record<string, unknown> = {};
      const parts = ["attribute_not_exists(#del)"];
      if (filter.model !== undefined) {
        names["#model"] = "devType";
        values[":model"] = filter.model;
        parts.push("#model = :model");
      }
      if (filter.firmware !== undefined) {
        names["#fw"] = "firmwareVersion";
        values[":fw"] = filter.firmware;
        parts.push("#fw = :fw");
      }
      Object.entries(filter.labels ?? {}).forEach(([label, value], i) => {
        names["#labels"] = "labels";
        names[`#l${i}`] = label;
        values[`:l${i}`] = value;
        parts.push(`#labels.#l${i} = :l${i}`);
      });
      const items: DeviceItem[] = [];
      let startKey: Record<string, unknown> | undefined;
      do {
        const out = await call("devices.Scan", () =>
          db.send(
            new ScanCommand({
              TableName: tables.devices,
              FilterExpression: parts.join(" AND "),
              ExpressionAttributeNames: names,
              ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
              ...(startKey ? { ExclusiveStartKey: startKey } : {}),
            }),
          ),
        );
        items.push(...((out.Items ?? []) as DeviceItem[]));
        startKey = out.LastEvaluatedKey;
      } while (startKey);
      return items.sort((a, b) => a.deviceId.localeCompare(b.deviceId));
    },
    async getDevices(deviceIds: readonly string[]): Promise<Map<string, DeviceItem>> {
      const found = new Map<string, DeviceItem>();
      const unique = [...new Set(deviceIds)];
      for (let i = 0; i < unique.length; i += 100) {
        let pending: Record<string, unknown>[] | undefined = unique
          .slice(i, i + 100)
          .map((deviceId) => ({ deviceId }));
        for (let attempt = 0; pending && pending.length > 0; attempt++) {
          if (attempt > 8) throw new StorageError("devices.BatchGetItem", "unprocessed keys");
          const keys = pending;
          const out = await call("devices.BatchGetItem", () =>
            db.send(new BatchGetCommand({ RequestItems: { [tables.devices]: { Keys: keys } } })),
          );
          for (const item of (out.Responses?.[tables.devices] ?? []) as DeviceItem[]) {
            if (item.deletedAt === undefined) found.set(item.deviceId, item);
          }
          pending = out.UnprocessedKeys?.[tables.devices]?.Keys as
            | Record<string, unknown>[]
            | undefined;
        }
      }
      return found;
    },
  };
}

export type UpgradesRepository = ReturnType<typeof createUpgradesRepository>;

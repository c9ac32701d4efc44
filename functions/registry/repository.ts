import {
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  type DynamoDBDocumentClient,
  PutCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { deviceKey } from "../../lib/contracts/tables.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";
import {
  ASPECT_SEQ_ATTRIBUTE,
  ASPECTS,
  type DeviceItem,
  type PresenceItem,
} from "../shared/items.ts";
import { conditionFailureItem, type RawItem, rawNumber, rawString } from "../shared/raw-item.ts";
import type {
  DeviceUpdatePlan,
  RegistryRepository,
  StoredDeviceState,
  StoredPresence,
} from "./service.ts";

export interface RegistryRepositoryConfig {
  readonly devicesTable: string;
  readonly presenceTable: string;
  /** Rounds of re-sending `UnprocessedItems` of a history batch. Default 6. */
  readonly maxUnprocessedRetries?: number;
}

/** BatchWriteItem's limit of items per call. */
const MAX_BATCH_WRITE = 25;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Placeholder-safe expression builder: every attribute name goes through `#nN`. */
export function buildDeviceUpdate(plan: DeviceUpdatePlan) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ":version": plan.version };
  const nameOf = (attribute: string) => {
    const existing = Object.entries(names).find(([, n]) => n === attribute)?.[0];
    if (existing) return existing;
    const placeholder = `#n${Object.keys(names).length}`;
    names[placeholder] = attribute;
    return placeholder;
  };
  const sets: string[] = [];
  let i = 0;
  for (const [attribute, value] of Object.entries(plan.set)) {
    const v = `:v${i++}`;
    values[v] = value;
    sets.push(`${nameOf(attribute)} = ${v}`);
  }
  for (const [attribute, value] of Object.entries(plan.setIfNotExists)) {
    const v = `:v${i++}`;
    values[v] = value;
    const n = nameOf(attribute);
    sets.push(`${n} = if_not_exists(${n}, ${v})`);
  }
  const removes = plan.remove.map(nameOf);

  const conditions = plan.aspects.map((aspect) => {
    const seq = nameOf(ASPECT_SEQ_ATTRIBUTE[aspect]);
    return `(attribute_not_exists(${seq}) OR ${seq} < :version)`;
  });
  if (plan.owner !== undefined) {
    values[":owner"] = plan.owner;
    const agent = nameOf("agentId");
    conditions.push(`(attribute_not_exists(${agent}) OR ${agent} = :owner)`);
  }
  if (plan.requireStatus !== undefined) {
    values[":status"] = plan.requireStatus;
    conditions.push(`${nameOf("status")} = :status`);
  }
  if (plan.changedBefore !== undefined) {
    values[":changedBefore"] = plan.changedBefore;
    conditions.push(`${nameOf("statusChangedAt")} < :changedBefore`);
  }
  if (!plan.revive) conditions.push(`attribute_not_exists(${nameOf("deletedAt")})`);

  return {
    Key: deviceKey(plan.deviceId),
    UpdateExpression: [
      `SET ${sets.join(", ")}`,
      ...(removes.length > 0 ? [`REMOVE ${removes.join(", ")}`] : []),
    ].join(" "),
    ConditionExpression: conditions.join(" AND "),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

/** The attributes the planner compares against, from a condition failure's item. */
export function storedStateOf(item: RawItem): StoredDeviceState | undefined {
  const deviceId = rawString(item, "deviceId");
  if (deviceId === undefined) return undefined;
  const state: StoredDeviceState = { deviceId };
  const agentId = rawString(item, "agentId");
  if (agentId !== undefined) state.agentId = agentId;
  const deletedAt = rawString(item, "deletedAt");
  if (deletedAt !== undefined) state.deletedAt = deletedAt;
  for (const aspect of ASPECTS) {
    const seq = rawNumber(item, ASPECT_SEQ_ATTRIBUTE[aspect]);
    if (seq !== undefined) state[ASPECT_SEQ_ATTRIBUTE[aspect]] = seq;
  }
  return state;
}

export function createRegistryRepository(
  config: RegistryRepositoryConfig,
  deps: { documentClient: DynamoDBDocumentClient },
): RegistryRepository {
  const db = deps.documentClient;
  return {
    async applyDeviceUpdate(plan) {
      try {
        const out = await db.send(
          new UpdateCommand({
            TableName: config.devicesTable,
            ...buildDeviceUpdate(plan),
            // A failed condition returns the stored item: the planner needs no extra read (and
            // the function no read permission).
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
            // Returned values cost no capacity; only a last-seen asks (see reviveLost).
            ...(plan.returnPresence ? { ReturnValues: "ALL_NEW" as const } : {}),
          }),
        );
        if (!plan.returnPresence) return { applied: true };
        const a = (out.Attributes ?? {}) as Partial<DeviceItem>;
        const presence: StoredPresence = {};
        if (a.status !== undefined) presence.status = a.status;
        if (a.offlineReason !== undefined) presence.offlineReason = a.offlineReason;
        if (a.address !== undefined) presence.address = a.address;
        return { applied: true, presence };
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw new StorageError("devices.UpdateItem", error);
        const item = conditionFailureItem(error);
        return { applied: false, stored: item ? storedStateOf(item) : undefined };
      }
    },

    async reviveLost(deviceId, agentId, version, at) {
      try {
        const out = await db.send(
          new UpdateCommand({
            TableName: config.devicesTable,
            Key: deviceKey(deviceId),
            UpdateExpression: "SET #status = :online, #changed = :at, #seq = :v REMOVE #reason",
            ConditionExpression:
              "#agent = :agent AND #status = :offline AND #reason = :lost AND #seq < :v AND attribute_not_exists(#deleted)",
            ExpressionAttributeNames: {
              "#status": "status",
              "#changed": "statusChangedAt",
              "#seq": ASPECT_SEQ_ATTRIBUTE.presence,
              "#reason": "offlineReason",
              "#agent": "agentId",
              "#deleted": "deletedAt",
            },
            ExpressionAttributeValues: {
              ":online": "online",
              ":offline": "offline",
              ":lost": "agent-lost",
              ":at": at,
              ":v": version,
              ":agent": agentId,
            },
            ReturnValues: "ALL_NEW",
          }),
        );
        const address = (out.Attributes as Partial<DeviceItem> | undefined)?.address;
        return address === undefined ? {} : { address };
      } catch (error) {
        if (isConditionalCheckFailed(error)) return undefined;
        throw new StorageError("devices.UpdateItem", error);
      }
    },

    async putPresenceBatch(items) {
      // One item per key: a batch that holds an event twice (a redelivery next to the original)
      // writes it once (BatchWriteItem refuses duplicate keys), and both count as written.
      const byKey = new Map<string, PresenceItem[]>();
      for (const item of items) {
        const key = `${item.deviceId}\u0000${item.at}`;
        const same = byKey.get(key);
        if (same) same.push(item);
        else byKey.set(key, [item]);
      }
      const keys = [...byKey.keys()];
      const failed: PresenceItem[] = [];
      const maxRetries = config.maxUnprocessedRetries ?? 6;
      const writeChunk = async (chunk: string[]) => {
        let pending = chunk.map((key) => byKey.get(key)![0]!);
        for (let round = 0; pending.length > 0; round++) {
          if (round > maxRetries) {
            failed.push(...pending.flatMap((i) => byKey.get(`${i.deviceId}\u0000${i.at}`)!));
            return;
          }
          if (round > 0) await pause(Math.min(1000, 25 * 2 ** round));
          let out: BatchWriteCommandOutput;
          try {
            out = await db.send(
              new BatchWriteCommand({
                RequestItems: {
                  [config.presenceTable]: pending.map((item) => ({ PutRequest: { Item: item } })),
                },
              }),
            );
          } catch {
            // The caller writes these one by one, which reports the error properly.
            failed.push(...pending.flatMap((i) => byKey.get(`${i.deviceId}\u0000${i.at}`)!));
            return;
          }
          pending = (out.UnprocessedItems?.[config.presenceTable] ?? []).map(
            (r) => r.PutRequest?.Item as PresenceItem,
          );
        }
      };
      const chunks: string[][] = [];
      for (let i = 0; i < keys.length; i += MAX_BATCH_WRITE) {
        chunks.push(keys.slice(i, i + MAX_BATCH_WRITE));
      }
      await Promise.all(chunks.map(writeChunk));
      return failed;
    },

    async putPresence(item: PresenceItem) {
      try {
        await db.send(new PutCommand({ TableName: config.presenceTable, Item: item }));
      } catch (error) {
        throw new StorageError("presence.PutItem", error);
      }
    },
  };
}

import { type DynamoDBDocumentClient, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { deviceKey } from "../../lib/contracts/tables.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";
import { ASPECT_SEQ_ATTRIBUTE, ASPECTS, type PresenceItem } from "../shared/items.ts";
import { conditionFailureItem, type RawItem, rawNumber, rawString } from "../shared/raw-item.ts";
import type { DeviceUpdatePlan, RegistryRepository, StoredDeviceState } from "./service.ts";

export interface RegistryRepositoryConfig {
  readonly devicesTable: string;
  readonly presenceTable: string;
}

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
        await db.send(
          new UpdateCommand({
            TableName: config.devicesTable,
            ...buildDeviceUpdate(plan),
            // A failed condition returns the stored item: the planner needs no extra read (and
            // the function no read permission).
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        );
        return { applied: true };
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw new StorageError("devices.UpdateItem", error);
        const item = conditionFailureItem(error);
        return { applied: false, stored: item ? storedStateOf(item) : undefined };
      }
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

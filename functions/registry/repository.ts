import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { deviceKey } from "../../lib/contracts/tables.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";
import { ASPECT_SEQ_ATTRIBUTE, ASPECTS, type PresenceItem } from "../shared/items.ts";
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

const STATE_ATTRIBUTES = [
  "deviceId",
  "agentId",
  "deletedAt",
  ...ASPECTS.map((a) => ASPECT_SEQ_ATTRIBUTE[a]),
];

export function createRegistryRepository(
  config: RegistryRepositoryConfig,
  deps: { documentClient: DynamoDBDocumentClient },
): RegistryRepository {
  const db = deps.documentClient;
  return {
    async applyDeviceUpdate(plan) {
      try {
        await db.send(
          new UpdateCommand({ TableName: config.devicesTable, ...buildDeviceUpdate(plan) }),
        );
        return true;
      } catch (error) {
        if (isConditionalCheckFailed(error)) return false;
        throw new StorageError("devices.UpdateItem", error);
      }
    },

    async readDeviceState(deviceId) {
      try {
        const out = await db.send(
          new GetCommand({
            TableName: config.devicesTable,
            Key: deviceKey(deviceId),
            ConsistentRead: true,
            ProjectionExpression: STATE_ATTRIBUTES.map((_, i) => `#p${i}`).join(", "),
            ExpressionAttributeNames: Object.fromEntries(
              STATE_ATTRIBUTES.map((a, i) => [`#p${i}`, a]),
            ),
          }),
        );
        return out.Item as StoredDeviceState | undefined;
      } catch (error) {
        throw new StorageError("devices.GetItem", error);
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

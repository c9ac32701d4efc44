import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { isConditionalCheckFailed, StorageError } from "./errors.ts";

/**
 * Records with a `state` that only moves forward (commands, captures): created once, read
 * consistently, and changed by a conditional write that applies only from the expected states, so
 * redeliveries, late results and concurrent writers never move a record twice or backwards.
 */
export interface StateRecords<T extends { state: string }> {
  /** Creates the record; fails if one with the same id exists. */
  create(item: T): Promise<void>;
  get(id: string): Promise<T | undefined>;
  /** Applies `changes` if the record is in one of `from`; `undefined` when it was not. */
  transition(
    id: string,
    from: readonly T["state"][],
    changes: Partial<Omit<T, "state">> & { state?: T["state"]; updatedAt: string },
  ): Promise<T | undefined>;
}

export function createStateRecords<T extends { state: string }>(
  config: {
    readonly tableName: string;
    /** Partition key attribute (the record id). */
    readonly idAttribute: string;
    /** Name used in storage errors, e.g. `commands`. */
    readonly label: string;
  },
  deps: { documentClient: DynamoDBDocumentClient },
): StateRecords<T> {
  const db = deps.documentClient;
  const { tableName: TableName, idAttribute, label } = config;
  const key = (id: string) => ({ [idAttribute]: id });
  return {
    async create(item) {
      try {
        await db.send(
          new PutCommand({
            TableName,
            Item: item,
            ConditionExpression: "attribute_not_exists(#id)",
            ExpressionAttributeNames: { "#id": idAttribute },
          }),
        );
      } catch (error) {
        throw new StorageError(`${label}.PutItem`, error);
      }
    },

    async get(id) {
      try {
        const out = await db.send(
          new GetCommand({ TableName, Key: key(id), ConsistentRead: true }),
        );
        return out.Item as T | undefined;
      } catch (error) {
        throw new StorageError(`${label}.GetItem`, error);
      }
    },

    async transition(id, from, changes) {
      const names: Record<string, string> = { "#id": idAttribute, "#state": "state" };
      const values: Record<string, unknown> = {};
      const sets: string[] = [];
      Object.entries(changes).forEach(([attribute, value], i) => {
        if (value === undefined) return;
        names[`#c${i}`] = attribute;
        values[`:c${i}`] = value;
        sets.push(`#c${i} = :c${i}`);
      });
      const fromValues = from.map((state, i) => {
        values[`:from${i}`] = state;
        return `:from${i}`;
      });
      try {
        const out = await db.send(
          new UpdateCommand({
            TableName,
            Key: key(id),
            UpdateExpression: `SET ${sets.join(", ")}`,
            ConditionExpression: `attribute_exists(#id) AND #state IN (${fromValues.join(", ")})`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: "ALL_NEW",
          }),
        );
        return out.Attributes as T;
      } catch (error) {
        if (isConditionalCheckFailed(error)) return undefined;
        throw new StorageError(`${label}.UpdateItem`, error);
      }
    },
  };
}

import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { commandKey } from "../../lib/contracts/tables.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";
import type { CommandItem } from "../shared/items.ts";
import type { CommandsRepository } from "./ports.ts";

export function createCommandsRepository(
  config: { readonly commandsTable: string },
  deps: { documentClient: DynamoDBDocumentClient },
): CommandsRepository {
  const db = deps.documentClient;
  const TableName = config.commandsTable;
  return {
    async create(item) {
      try {
        await db.send(
          new PutCommand({
            TableName,
            Item: item,
            ConditionExpression: "attribute_not_exists(#id)",
            ExpressionAttributeNames: { "#id": "commandId" },
          }),
        );
      } catch (error) {
        throw new StorageError("commands.PutItem", error);
      }
    },

    async get(commandId) {
      try {
        const out = await db.send(
          new GetCommand({ TableName, Key: commandKey(commandId), ConsistentRead: true }),
        );
        return out.Item as CommandItem | undefined;
      } catch (error) {
        throw new StorageError("commands.GetItem", error);
      }
    },

    async transition(commandId, from, changes) {
      const names: Record<string, string> = { "#id": "commandId", "#state": "state" };
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
            Key: commandKey(commandId),
            UpdateExpression: `SET ${sets.join(", ")}`,
            ConditionExpression: `attribute_exists(#id) AND #state IN (${fromValues.join(", ")})`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: "ALL_NEW",
          }),
        );
        return out.Attributes as CommandItem;
      } catch (error) {
        if (isConditionalCheckFailed(error)) return undefined;
        throw new StorageError("commands.UpdateItem", error);
      }
    },
  };
}

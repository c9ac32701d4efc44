import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { captureKey } from "../../lib/contracts/tables.ts";
import type { CaptureItem, CaptureState } from "../alarms/items.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";

/** The captures table as the API uses it (the alarms function moves captures to `ready`). */
export interface CapturesRepository {
  create(item: CaptureItem): Promise<void>;
  /** Strongly consistent read. */
  get(captureId: string): Promise<CaptureItem | undefined>;
  /**
   * Sets `changes` when the capture is in `from`; returns the item afterwards, or `undefined`
   * when it was not (nothing written).
   */
  update(
    captureId: string,
    from: readonly CaptureState[],
    changes: Partial<Omit<CaptureItem, "captureId">> & { updatedAt: string },
  ): Promise<CaptureItem | undefined>;
}

export function createCapturesRepository(
  config: { readonly capturesTable: string },
  deps: { documentClient: DynamoDBDocumentClient },
): CapturesRepository {
  const db = deps.documentClient;
  const TableName = config.capturesTable;
  return {
    async create(item) {
      try {
        await db.send(
          new PutCommand({
            TableName,
            Item: item,
            ConditionExpression: "attribute_not_exists(#id)",
            ExpressionAttributeNames: { "#id": "captureId" },
          }),
        );
      } catch (error) {
        throw new StorageError("captures.PutItem", error);
      }
    },

    async get(captureId) {
      try {
        const out = await db.send(
          new GetCommand({ TableName, Key: captureKey(captureId), ConsistentRead: true }),
        );
        return out.Item as CaptureItem | undefined;
      } catch (error) {
        throw new StorageError("captures.GetItem", error);
      }
    },

    async update(captureId, from, changes) {
      const names: Record<string, string> = { "#id": "captureId", "#state": "state" };
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
            Key: captureKey(captureId),
            UpdateExpression: `SET ${sets.join(", ")}`,
            ConditionExpression: `attribute_exists(#id) AND #state IN (${fromValues.join(", ")})`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: "ALL_NEW",
          }),
        );
        return out.Attributes as CaptureItem;
      } catch (error) {
        if (isConditionalCheckFailed(error)) return undefined;
        throw new StorageError("captures.UpdateItem", error);
      }
    },
  };
}

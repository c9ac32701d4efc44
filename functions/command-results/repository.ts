import { type DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { CommandResult, CommandState } from "../../lib/contracts/commands.ts";
import { commandKey } from "../../lib/contracts/tables.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";
import { conditionFailureItem, rawString } from "../shared/raw-item.ts";
import type { CommandResultsRepository } from "./service.ts";

export function createCommandResultsRepository(
  config: { readonly commandsTable: string },
  deps: { documentClient: DynamoDBDocumentClient },
): CommandResultsRepository {
  return {
    async applyResult(result: CommandResult, now: string) {
      const sets = [
        "#state = :state",
        "#completedAt = :at",
        "#updatedAt = :now",
        "#agentId = :agentId",
      ];
      const values: Record<string, unknown> = {
        ":state": result.state,
        ":at": result.at,
        ":now": now,
        ":agentId": result.agentId,
        ":pending": "pending",
        ":sent": "sent",
        ":deviceId": result.deviceId,
      };
      const names: Record<string, string> = {
        "#state": "state",
        "#completedAt": "completedAt",
        "#updatedAt": "updatedAt",
        "#agentId": "agentId",
        "#commandId": "commandId",
        "#deviceId": "deviceId",
      };
      if (result.result !== undefined) {
        sets.push("#result = :result");
        names["#result"] = "result";
        values[":result"] = result.result;
      }
      if (result.error !== undefined) {
        sets.push("#error = :error");
        names["#error"] = "error";
        values[":error"] = result.error;
      }
      try {
        await deps.documentClient.send(
          new UpdateCommand({
            TableName: config.commandsTable,
            Key: commandKey(result.commandId),
            UpdateExpression: `SET ${sets.join(", ")}`,
            ConditionExpression:
              "attribute_exists(#commandId) AND #deviceId = :deviceId AND #state IN (:pending, :sent)",
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            // Why the condition failed comes back with the failure: no read, no read permission.
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        );
        return { applied: true as const };
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw new StorageError("commands.UpdateItem", error);
        const item = conditionFailureItem(error);
        const state = item && rawString(item, "state");
        const deviceId = item && rawString(item, "deviceId");
        return {
          applied: false as const,
          current: state && deviceId ? { state: state as CommandState, deviceId } : undefined,
        };
      }
    },
  };
}

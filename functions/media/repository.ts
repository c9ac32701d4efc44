import { type DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import {
  FINAL_STREAM_STATES,
  type StreamEvent,
  type StreamState,
} from "../../lib/contracts/media.ts";
import { streamKey } from "../../lib/contracts/tables.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";
import { conditionFailureItem, rawNumber, rawString } from "../shared/raw-item.ts";

/** What a failed condition tells about the stored stream record. */
export interface StoredStream {
  state: StreamState;
  deviceId: string;
  seq: number;
}

export interface MediaEventsRepository {
  /**
   * Applies the event to its stream record when the record exists, belongs to the event's
   * device, holds an older `seq` and is not in a final state. Returns `{applied: true}` or the
   * record as it was when the condition failed (absent when there is none).
   */
  applyEvent(
    event: StreamEvent,
    now: string,
  ): Promise<{ applied: true } | { applied: false; current: StoredStream | undefined }>;
}

export function createMediaEventsRepository(
  config: { readonly streamsTable: string },
  deps: { documentClient: DynamoDBDocumentClient },
): MediaEventsRepository {
  return {
    async applyEvent(event, now) {
      const names: Record<string, string> = {
        "#streamId": "streamId",
        "#deviceId": "deviceId",
        "#seq": "seq",
        "#state": "state",
        "#counters": "counters",
        "#updatedAt": "updatedAt",
      };
      const values: Record<string, unknown> = {
        ":deviceId": event.deviceId,
        ":seq": event.seq,
        ":state": event.state,
        ":counters": event.counters,
        ":now": now,
      };
      const sets = ["#seq = :seq", "#state = :state", "#counters = :counters", "#updatedAt = :now"];
      if (event.object !== undefined) {
        names["#object"] = "object";
        values[":object"] = event.object;
        sets.push("#object = :object");
      }
      if (event.reason !== undefined) {
        names["#reason"] = "reason";
        values[":reason"] = event.reason;
        sets.push("#reason = :reason");
      }
      const finals = FINAL_STREAM_STATES.map((state, i) => {
        values[`:final${i}`] = state;
        return `:final${i}`;
      });
      try {
        await deps.documentClient.send(
          new UpdateCommand({
            TableName: config.streamsTable,
            Key: streamKey(event.streamId),
            UpdateExpression: `SET ${sets.join(", ")}`,
            // Newer seq only, and a final state is never left (not even for another final one).
            ConditionExpression: `attribute_exists(#streamId) AND #deviceId = :deviceId AND #seq < :seq AND NOT (#state IN (${finals.join(", ")}))`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        );
        return { applied: true as const };
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw new StorageError("streams.UpdateItem", error);
        const item = conditionFailureItem(error);
        const state = item && rawString(item, "state");
        const deviceId = item && rawString(item, "deviceId");
        const seq = item && rawNumber(item, "seq");
        return {
          applied: false as const,
          current:
            state && deviceId && seq !== undefined
              ? { state: state as StreamState, deviceId, seq }
              : undefined,
        };
      }
    },
  };
}

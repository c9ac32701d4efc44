import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { StreamRecord, StreamState } from "../../lib/contracts/media.ts";
import { TABLES } from "../../lib/contracts/tables.ts";
import { createStateRecords } from "../shared/state-records.ts";

/** A stream as stored: `StreamRecord` plus what the API keeps for itself. */
export interface StreamItem extends StreamRecord {
  /** From `stream-start`: the pool port the device pushes to. */
  port?: number;
  /** Live: the stream whose device stream this one shares (`StreamStartResult.sharedWith`). */
  sharedWith?: string;
  /** The `stream-start` command. */
  commandId?: string;
  /** TTL, epoch seconds (`TABLES.streams.ttlAttribute`). */
  expiresAt: number;
}

/** The streams table as the API uses it (the media function applies the agents' events). */
export interface StreamsRepository {
  create(item: StreamItem): Promise<void>;
  /** Strongly consistent read. */
  get(streamId: string): Promise<StreamItem | undefined>;
  /**
   * Sets `changes` when the stream is in one of `from`; returns the item afterwards, or
   * `undefined` when it was not (nothing written).
   */
  update(
    streamId: string,
    from: readonly StreamState[],
    changes: Partial<Omit<StreamItem, "streamId">> & { updatedAt: string },
  ): Promise<StreamItem | undefined>;
}

export function createStreamsRepository(
  config: { readonly streamsTable: string },
  deps: { documentClient: DynamoDBDocumentClient },
): StreamsRepository {
  const records = createStateRecords<StreamItem>(
    {
      tableName: config.streamsTable,
      idAttribute: TABLES.streams.partitionKey.name,
      label: "streams",
    },
    deps,
  );
  return {
    create: (item) => records.create(item),
    get: (streamId) => records.get(streamId),
    update: (streamId, from, changes) => records.transition(streamId, from, changes),
  };
}

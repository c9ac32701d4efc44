import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { TABLES } from "../../lib/contracts/tables.ts";
import type { CaptureItem, CaptureState } from "../alarms/items.ts";
import { createStateRecords } from "../shared/state-records.ts";

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
  const records = createStateRecords<CaptureItem>(
    {
      tableName: config.capturesTable,
      idAttribute: TABLES.captures.partitionKey.name,
      label: "captures",
    },
    deps,
  );
  return {
    create: (item) => records.create(item),
    get: (captureId) => records.get(captureId),
    update: (captureId, from, changes) => records.transition(captureId, from, changes),
  };
}

import {
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import {
  ALARMS_OPEN_BY_DEADLINE_INDEX,
  ALARMS_OPEN_SHARD,
  alarmKey,
  captureKey,
} from "../../lib/contracts/tables.ts";
import { isConditionalCheckFailed, StorageError } from "../shared/errors.ts";
import type { AlarmItem, AlarmMediaItem, StoredObject } from "./items.ts";

/**
 * DynamoDB side of correlation. Every write is conditional or commutative, so any interleaving of
 * alarm and upload events, and any redelivery, converges on the same items (see service.ts).
 */

export interface AlarmsRepository {
  /** Writes a new alarm; false when it exists (a duplicate). */
  createAlarm(item: AlarmItem): Promise<boolean>;
  /**
   * Adds `alarmId` to the rendezvous item of one expected picture/video; returns the object when
   * the upload already stored it there.
   */
  expectMedia(
    deviceId: string,
    mediaKey: string,
    alarmId: string,
    expiresAt: number,
  ): Promise<StoredObject | undefined>;
  /**
   * Stores the object on its rendezvous item unless one is stored already (the first upload
   * wins); returns the stored object and the alarms that expect it.
   */
  recordMedia(
    deviceId: string,
    mediaKey: string,
    object: StoredObject,
    eventId: string,
    expiresAt: number,
  ): Promise<{ object: StoredObject; alarmIds: string[] }>;
  /**
   * Attaches the object to the alarm if the key is still missing there. `complete`: after this
   * write (or, when nothing was written, as stored) nothing is missing and the state is not yet
   * `complete`.
   */
  attach(
    alarmId: string,
    mediaKey: string,
    object: StoredObject,
    now: string,
  ): Promise<{ attached: boolean; complete: boolean }>;
  /** `open`/`partial` with nothing missing → `complete`. False when the condition failed. */
  complete(alarmId: string, now: string): Promise<boolean>;
  /** `open` past its deadline with something missing → `partial`. */
  expire(alarmId: string, nowMs: number, now: string): Promise<boolean>;
  /** Ids of `open` alarms whose deadline is ≤ `nowMs`, oldest deadline first. */
  overdue(nowMs: number, limit: number): Promise<string[]>;
  /** A pending capture of this device → `ready` with its picture. False when not applicable. */
  captureUploaded(
    captureId: string,
    deviceId: string,
    picture: StoredObject,
    now: string,
  ): Promise<boolean>;
}

async function call<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new StorageError(operation, error);
  }
}

/** Runs a conditional write: true when applied, false when the condition failed. */
async function conditional(operation: string, run: () => Promise<unknown>): Promise<boolean> {
  try {
    await run();
    return true;
  } catch (error) {
    if (isConditionalCheckFailed(error)) return false;
    throw new StorageError(operation, error);
  }
}

const OBJECT_FIELDS = [
  "bucket",
  "key",
  "size",
  "contentType",
  "uploadedAt",
  "sha256",
  "channel",
  "time",
] as const satisfies readonly (keyof StoredObject)[];

export function storedObjectOf(item: Partial<StoredObject>): StoredObject | undefined {
  if (item.bucket === undefined || item.key === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const field of OBJECT_FIELDS) if (item[field] !== undefined) out[field] = item[field];
  return out as unknown as StoredObject;
}

export function createAlarmsRepository(
  config: {
    readonly alarmsTable: string;
    readonly alarmMediaTable: string;
    readonly capturesTable: string;
  },
  deps: { documentClient: DynamoDBDocumentClient },
): AlarmsRepository {
  const db = deps.documentClient;

  return {
    createAlarm: (item) =>
      conditional("alarms.PutItem", () =>
        db.send(
          new PutCommand({
            TableName: config.alarmsTable,
            Item: item,
            ConditionExpression: "attribute_not_exists(#id)",
            ExpressionAttributeNames: { "#id": "alarmId" },
          }),
        ),
      ),

    async expectMedia(deviceId, mediaKey, alarmId, expiresAt) {
      const out = await call("alarmMedia.UpdateItem", () =>
        db.send(
          new UpdateCommand({
            TableName: config.alarmMediaTable,
            Key: { deviceId, mediaKey },
            UpdateExpression: "ADD #alarmIds :alarmIds SET #expiresAt = :expiresAt",
            ExpressionAttributeNames: { "#alarmIds": "alarmIds", "#expiresAt": "expiresAt" },
            ExpressionAttributeValues: { ":alarmIds": new Set([alarmId]), ":expiresAt": expiresAt },
            ReturnValues: "ALL_NEW",
          }),
        ),
      );
      return storedObjectOf((out.Attributes ?? {}) as AlarmMediaItem);
    },

    async recordMedia(deviceId, mediaKey, object, eventId, expiresAt) {
      const names: Record<string, string> = { "#expiresAt": "expiresAt", "#eventId": "eventId" };
      const values: Record<string, unknown> = { ":expiresAt": expiresAt, ":eventId": eventId };
      // if_not_exists on each field: the first upload's object stays, whole (all fields were
      // written together by that first write).
      const sets = ["#expiresAt = :expiresAt", "#eventId = if_not_exists(#eventId, :eventId)"];
      for (const field of OBJECT_FIELDS) {
        if (object[field] === undefined) continue;
        names[`#${field}`] = field;
        values[`:${field}`] = object[field];
        sets.push(`#${field} = if_not_exists(#${field}, :${field})`);
      }
      const out = await call("alarmMedia.UpdateItem", () =>
        db.send(
          new UpdateCommand({
            TableName: config.alarmMediaTable,
            Key: { deviceId, mediaKey },
            UpdateExpression: `SET ${sets.join(", ")}`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: "ALL_NEW",
          }),
        ),
      );
      const item = out.Attributes as AlarmMediaItem;
      return { object: storedObjectOf(item) ?? object, alarmIds: [...(item.alarmIds ?? [])] };
    },

    async attach(alarmId, mediaKey, object, now) {
      try {
        const out = await db.send(
          new UpdateCommand({
            TableName: config.alarmsTable,
            Key: alarmKey(alarmId),
            UpdateExpression: "SET #media.#k = :object, #updatedAt = :now DELETE #missing :keys",
            ConditionExpression: "contains(#missing, :key)",
            ExpressionAttributeNames: {
              "#media": "media",
              "#k": mediaKey,
              "#updatedAt": "updatedAt",
              "#missing": "missing",
            },
            ExpressionAttributeValues: {
              ":object": object,
              ":now": now,
              ":keys": new Set([mediaKey]),
              ":key": mediaKey,
            },
            ReturnValues: "ALL_NEW",
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        );
        const item = out.Attributes as AlarmItem;
        return {
          attached: true,
          complete: item.missing === undefined && item.state !== "complete",
        };
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw new StorageError("alarms.UpdateItem", error);
        // Already attached (a duplicate, or a retry after a crash between attach and complete):
        // the item as stored tells whether completion is still owed.
        const old = (error as { Item?: Record<string, { S?: string; SS?: string[] }> }).Item;
        const owed = old !== undefined && old.missing === undefined && old.state?.S !== "complete";
        return { attached: false, complete: owed };
      }
    },

    complete: (alarmId, now) =>
      conditional("alarms.UpdateItem", () =>
        db.send(
          new UpdateCommand({
            TableName: config.alarmsTable,
            Key: alarmKey(alarmId),
            UpdateExpression:
              "SET #state = :complete, #completedAt = :now, #updatedAt = :now REMOVE #openShard",
            ConditionExpression:
              "attribute_exists(#id) AND attribute_not_exists(#missing) AND #state IN (:open, :partial)",
            ExpressionAttributeNames: {
              "#id": "alarmId",
              "#state": "state",
              "#completedAt": "completedAt",
              "#updatedAt": "updatedAt",
              "#openShard": "openShard",
              "#missing": "missing",
            },
            ExpressionAttributeValues: {
              ":complete": "complete",
              ":open": "open",
              ":partial": "partial",
              ":now": now,
            },
          }),
        ),
      ),

    expire: (alarmId, nowMs, now) =>
      conditional("alarms.UpdateItem", () =>
        db.send(
          new UpdateCommand({
            TableName: config.alarmsTable,
            Key: alarmKey(alarmId),
            UpdateExpression:
              "SET #state = :partial, #partialAt = :now, #updatedAt = :now REMOVE #openShard",
            ConditionExpression:
              "#state = :open AND #deadline <= :nowMs AND attribute_exists(#missing)",
            ExpressionAttributeNames: {
              "#state": "state",
              "#partialAt": "partialAt",
              "#updatedAt": "updatedAt",
              "#openShard": "openShard",
              "#deadline": "deadline",
              "#missing": "missing",
            },
            ExpressionAttributeValues: {
              ":partial": "partial",
              ":open": "open",
              ":nowMs": nowMs,
              ":now": now,
            },
          }),
        ),
      ),

    async overdue(nowMs, limit) {
      const ids: string[] = [];
      let startKey: Record<string, unknown> | undefined;
      do {
        const out = await call("alarms.Query", () =>
          db.send(
            new QueryCommand({
              TableName: config.alarmsTable,
              IndexName: ALARMS_OPEN_BY_DEADLINE_INDEX,
              KeyConditionExpression: "#shard = :shard AND #deadline <= :nowMs",
              ExpressionAttributeNames: { "#shard": "openShard", "#deadline": "deadline" },
              ExpressionAttributeValues: { ":shard": ALARMS_OPEN_SHARD, ":nowMs": nowMs },
              Limit: Math.min(limit - ids.length, 500),
              ...(startKey ? { ExclusiveStartKey: startKey } : {}),
            }),
          ),
        );
        for (const item of out.Items ?? []) ids.push((item as { alarmId: string }).alarmId);
        startKey = out.LastEvaluatedKey;
      } while (startKey && ids.length < limit);
      return ids;
    },

    captureUploaded: (captureId, deviceId, picture, now) =>
      conditional("captures.UpdateItem", () =>
        db.send(
          new UpdateCommand({
            TableName: config.capturesTable,
            Key: captureKey(captureId),
            UpdateExpression:
              "SET #state = :ready, #picture = :picture, #completedAt = :now, #updatedAt = :now",
            ConditionExpression: "#deviceId = :deviceId AND #state = :pending",
            ExpressionAttributeNames: {
              "#state": "state",
              "#picture": "picture",
              "#completedAt": "completedAt",
              "#updatedAt": "updatedAt",
              "#deviceId": "deviceId",
            },
            ExpressionAttributeValues: {
              ":ready": "ready",
              ":pending": "pending",
              ":picture": picture,
              ":now": now,
              ":deviceId": deviceId,
            },
          }),
        ),
      ),
  };
}

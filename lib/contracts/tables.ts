import type {
  CreateTableCommandInput,
  QueryCommandInput,
  UpdateTimeToLiveCommandInput,
} from "@aws-sdk/client-dynamodb";
import { ENV, type EnvName } from "./env.ts";

/**
 * Every DynamoDB table, as plain data. The CDK data stack and the local runner (DynamoDB Local,
 * through `createTableInput`) both derive their tables from this, so keys, indexes and TTL cannot
 * drift apart. To add a table: add an entry to `TABLES` (and its env var to `ENV`); the stack,
 * the grants helper and the local runner pick it up.
 */

export type AttributeType = "S" | "N" | "B";

export interface KeyAttribute {
  readonly name: string;
  readonly type: AttributeType;
}

export interface IndexDefinition {
  readonly indexName: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  /**
   * `ALL`, `KEYS_ONLY`, or the non-key attributes to copy. Every write that changes a projected
   * attribute is also a write to the index, so hot attributes (`lastSeen`) stay out of indexes and
   * readers fetch whole items from the table.
   */
  readonly projection: "ALL" | "KEYS_ONLY" | { readonly include: readonly string[] };
}

/** DynamoDB's `Projection` for an index definition. */
export function projectionOf(index: IndexDefinition): {
  ProjectionType: "ALL" | "KEYS_ONLY" | "INCLUDE";
  NonKeyAttributes?: string[];
} {
  return typeof index.projection === "string"
    ? { ProjectionType: index.projection }
    : { ProjectionType: "INCLUDE", NonKeyAttributes: [...index.projection.include] };
}

export interface TableDefinition {
  /** Construct id in the CDK data stack; physical names are generated, never hard-coded. */
  readonly logicalId: string;
  /** Environment variable through which functions and the agent receive the physical name. */
  readonly envVar: EnvName;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  readonly indexes: readonly IndexDefinition[];
  /**
   * Number attribute (epoch seconds) DynamoDB expires items by. Expiry is lazy (it can lag by
   * days), so readers must still compare it with the clock.
   */
  readonly ttlAttribute?: string;
  /** How long writers keep an item by default (sets `ttlAttribute`). */
  readonly defaultTtlSeconds?: number;
}

const DAY = 24 * 60 * 60;

export const TABLES = {
  /** Registry + provisioning: `provisioned`, `passwordHash`, `labels`, status, owning agent. */
  devices: {
    logicalId: "Devices",
    envVar: ENV.DEVICES_TABLE,
    partitionKey: { name: "deviceId", type: "S" },
    indexes: [
      {
        indexName: "byStatus",
        partitionKey: { name: "status", type: "S" },
        sortKey: { name: "deviceId", type: "S" },
        // Only what list filters read: a last-seen update (144 per device-day) then costs one
        // write unit instead of two (docs/BENCHMARKS.md, cloud writes per device).
        projection: { include: ["devType", "firmwareVersion"] },
      },
      {
        // The devices an agent holds (or last held), for the agent-lost sweep
        // (functions/registry/agent-sweep.ts). Keys only: `agentId` changes when a device
        // registers on another agent, so this index costs a write per move, not per transition.
        indexName: "byAgent",
        partitionKey: { name: "agentId", type: "S" },
        sortKey: { name: "deviceId", type: "S" },
        projection: "KEYS_ONLY",
      },
    ],
  },
  /** Presence history: one item per online/offline/address change, sorted by `at#version`. */
  presence: {
    logicalId: "Presence",
    envVar: ENV.PRESENCE_TABLE,
    partitionKey: { name: "deviceId", type: "S" },
    sortKey: { name: "at", type: "S" },
    indexes: [],
    ttlAttribute: "expiresAt",
    defaultTtlSeconds: 30 * DAY,
  },
  /** Command records; every accepted command reaches a final state here. */
  commands: {
    logicalId: "Commands",
    envVar: ENV.COMMANDS_TABLE,
    partitionKey: { name: "commandId", type: "S" },
    indexes: [
      {
        indexName: "byDevice",
        partitionKey: { name: "deviceId", type: "S" },
        sortKey: { name: "createdAt", type: "S" },
        projection: "ALL",
      },
    ],
    ttlAttribute: "expiresAt",
    defaultTtlSeconds: 30 * DAY,
  },
  /** Agent heartbeats: command queue URL, public host, last heartbeat. */
  agents: {
    logicalId: "Agents",
    envVar: ENV.AGENTS_TABLE,
    partitionKey: { name: "agentId", type: "S" },
    indexes: [],
    ttlAttribute: "expiresAt",
    defaultTtlSeconds: 5 * 60,
  },
  /**
   * One item per alarm (`functions/alarms/`), keyed by an id derived from deviceId + Sequence +
   * AlarmTime (`alarmId`), so a redelivered or retransmitted alarm maps to the same item. Lists
   * read keys from an index and whole items from the table (BatchGetItem): the indexes project
   * only `alarmType`, which never changes, so attaching media to an alarm writes no index.
   */
  alarms: {
    logicalId: "Alarms",
    envVar: ENV.ALARMS_TABLE,
    partitionKey: { name: "alarmId", type: "S" },
    indexes: [
      {
        // "All alarms, newest first": one constant partition (`listShard`). Alarm creation is
        // the only write to it (about one write unit per alarm), far below a partition's
        // 1,000 WCU/s; beyond that, shard by day.
        indexName: "byReceived",
        partitionKey: { name: "listShard", type: "S" },
        sortKey: { name: "receivedAt", type: "S" },
        projection: { include: ["alarmType"] },
      },
      {
        indexName: "byDevice",
        partitionKey: { name: "deviceId", type: "S" },
        sortKey: { name: "receivedAt", type: "S" },
        projection: { include: ["alarmType"] },
      },
      {
        // Sparse: `openShard` exists only while the alarm is `open`, so the deadline sweep reads
        // just the open alarms, oldest deadline first.
        indexName: "openByDeadline",
        partitionKey: { name: "openShard", type: "S" },
        sortKey: { name: "deadline", type: "N" },
        projection: "KEYS_ONLY",
      },
    ],
    ttlAttribute: "expiresAt",
    defaultTtlSeconds: 90 * DAY,
  },
  /**
   * Rendezvous of alarms and uploaded media, one item per (deviceId, `p#<PicID>` | `v#<VideoId>`):
   * the upload writes the object's location, the alarm adds its id to `alarmIds`; whichever
   * write comes second sees both halves and attaches the object. Media that arrives before its
   * alarm waits here until the TTL.
   */
  alarmMedia: {
    logicalId: "AlarmMedia",
    envVar: ENV.ALARM_MEDIA_TABLE,
    partitionKey: { name: "deviceId", type: "S" },
    sortKey: { name: "mediaKey", type: "S" },
    indexes: [],
    ttlAttribute: "expiresAt",
    defaultTtlSeconds: 7 * DAY,
  },
  /** Captures (`POST /devices/{id}/captures`): MANUALSNAP with a platform-chosen PicID. */
  captures: {
    logicalId: "Captures",
    envVar: ENV.CAPTURES_TABLE,
    partitionKey: { name: "captureId", type: "S" },
    indexes: [],
    ttlAttribute: "expiresAt",
    defaultTtlSeconds: 30 * DAY,
  },
  /** Firmware images: version, models, size, SHA-256/MD5, `uploading | available | rejected`. */
  firmware: {
    logicalId: "Firmware",
    envVar: ENV.FIRMWARE_TABLE,
    partitionKey: { name: "firmwareId", type: "S" },
    indexes: [],
  },
  /**
   * Upgrade campaigns: targets snapshot size, rollout, retries, abort criteria, the persisted
   * token bucket. `active` is set ("1") only while the campaign still has work, so the sparse
   * `byActive` index is exactly what the engine's tick must look at.
   */
  campaigns: {
    logicalId: "Campaigns",
    envVar: ENV.CAMPAIGNS_TABLE,
    partitionKey: { name: "campaignId", type: "S" },
    indexes: [
      {
        indexName: "byActive",
        partitionKey: { name: "active", type: "S" },
        sortKey: { name: "createdAt", type: "S" },
        projection: { include: ["firmwareId", "state"] },
      },
    ],
  },
  /** One item per (campaign, device): state, attempt, command, deadline, bytes served. */
  executions: {
    logicalId: "Executions",
    envVar: ENV.EXECUTIONS_TABLE,
    partitionKey: { name: "campaignId", type: "S" },
    sortKey: { name: "deviceId", type: "S" },
    indexes: [],
  },
  /**
   * GPS positions (ehome-2.0 §2.9; `functions/device-data/`): one item per fix, sorted by
   * `<time>#<sequence>` (`positionSortKey`), so a track reads in time order and a resent report
   * (RetransFlag 1, same Time and Sequence) or a redelivered message writes the same item again.
   */
  positions: {
    logicalId: "Positions",
    envVar: ENV.POSITIONS_TABLE,
    partitionKey: { name: "deviceId", type: "S" },
    sortKey: { name: "at", type: "S" },
    indexes: [],
    ttlAttribute: "expiresAt",
    defaultTtlSeconds: 30 * DAY,
  },
  /** Device-initiated TRANSPARENT messages (ehome-2.0 §8), sorted by `<receivedAt>#<sequence>`. */
  passthrough: {
    logicalId: "Passthrough",
    envVar: ENV.PASSTHROUGH_TABLE,
    partitionKey: { name: "deviceId", type: "S" },
    sortKey: { name: "at", type: "S" },
    indexes: [],
    ttlAttribute: "expiresAt",
    defaultTtlSeconds: 7 * DAY,
  },
  /** Streams (`POST /devices/{id}/streams`; `StreamRecord` in media.ts): spec, state, counters. */
  streams: {
    logicalId: "Streams",
    envVar: ENV.STREAMS_TABLE,
    partitionKey: { name: "streamId", type: "S" },
    indexes: [],
    ttlAttribute: "expiresAt",
    defaultTtlSeconds: 7 * DAY,
  },
} as const satisfies Record<string, TableDefinition>;

export type TableKey = keyof typeof TABLES;
export const TABLE_KEYS = Object.keys(TABLES) as TableKey[];

export const DEVICES_BY_STATUS_INDEX = TABLES.devices.indexes[0].indexName;
export const DEVICES_BY_AGENT_INDEX = TABLES.devices.indexes[1].indexName;
export const COMMANDS_BY_DEVICE_INDEX = TABLES.commands.indexes[0].indexName;
export const ALARMS_BY_RECEIVED_INDEX = TABLES.alarms.indexes[0].indexName;
export const ALARMS_BY_DEVICE_INDEX = TABLES.alarms.indexes[1].indexName;
export const ALARMS_OPEN_BY_DEADLINE_INDEX = TABLES.alarms.indexes[2].indexName;
/** The one value of `listShard` (see `ALARMS_BY_RECEIVED_INDEX`). */
export const ALARMS_LIST_SHARD = "all";
/** The one value of `openShard`, present only while an alarm is `open`. */
export const ALARMS_OPEN_SHARD = "open";
export const CAMPAIGNS_BY_ACTIVE_INDEX = TABLES.campaigns.indexes[0].indexName;

// Key builders -------------------------------------------------------------------------------

export function deviceKey(deviceId: string): { deviceId: string } {
  return { deviceId };
}

export function commandKey(commandId: string): { commandId: string } {
  return { commandId };
}

export function agentKey(agentId: string): { agentId: string } {
  return { agentId };
}

export function alarmKey(alarmId: string): { alarmId: string } {
  return { alarmId };
}

export function streamKey(streamId: string): { streamId: string } {
  return { streamId };
}

export function captureKey(captureId: string): { captureId: string } {
  return { captureId };
}

/** Sort key of the alarm-media table: `p#<PicID>` or `v#<VideoId>`. */
export function alarmMediaKey(
  deviceId: string,
  kind: "picture" | "video",
  mediaId: string,
): { deviceId: string; mediaKey: string } {
  return { deviceId, mediaKey: `${kind === "picture" ? "p" : "v"}#${mediaId}` };
}

/** Versions are padded to 16 digits: every safe integer then sorts as text in numeric order. */
const VERSION_DIGITS = 16;

/**
 * Presence sort key `<ISO time>#<zero-padded version>`. ISO-8601 in UTC with milliseconds has a
 * fixed width, so text order is time order; the version breaks ties between events of the same
 * millisecond (events carry a per-device monotonic version).
 */
export function presenceSortKey(at: Date | string | number, version: number): string {
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new RangeError(`presence version must be a non-negative safe integer, got ${version}`);
  }
  const iso = new Date(at).toISOString();
  return `${iso}#${String(version).padStart(VERSION_DIGITS, "0")}`;
}

export function parsePresenceSortKey(sortKey: string): { at: string; version: number } | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)#(\d{16})$/.exec(sortKey);
  if (!match) return undefined;
  return { at: match[1]!, version: Number(match[2]) };
}

export function presenceKey(
  deviceId: string,
  at: Date | string | number,
  version: number,
): { deviceId: string; at: string } {
  return { deviceId, at: presenceSortKey(at, version) };
}

/** TTL value (epoch seconds) `ttlSeconds` after `now`. */
export function expiresAt(now: Date | number, ttlSeconds: number): number {
  const ms = typeof now === "number" ? now : now.getTime();
  return Math.floor(ms / 1000) + Math.ceil(ttlSeconds);
}

/**
 * Key condition for "all items with this partition key" on the table or one of its indexes, e.g.
 * `queryByPartition(TABLES.commands, "dev-1", COMMANDS_BY_DEVICE_INDEX)`. Values are in the
 * low-level attribute-value form; add `TableName` before sending.
 */
export function queryByPartition(
  table: TableDefinition,
  partitionValue: string,
  indexName?: string,
): Pick<
  QueryCommandInput,
  "IndexName" | "KeyConditionExpression" | "ExpressionAttributeNames" | "ExpressionAttributeValues"
> {
  let partitionKey = table.partitionKey;
  if (indexName !== undefined) {
    const index = table.indexes.find((i) => i.indexName === indexName);
    if (!index) throw new Error(`table ${table.logicalId} has no index ${indexName}`);
    partitionKey = index.partitionKey;
  }
  if (partitionKey.type !== "S") {
    throw new Error(`queryByPartition supports string partition keys, not ${partitionKey.type}`);
  }
  return {
    ...(indexName === undefined ? {} : { IndexName: indexName }),
    KeyConditionExpression: "#pk = :pk",
    ExpressionAttributeNames: { "#pk": partitionKey.name },
    ExpressionAttributeValues: { ":pk": { S: partitionValue } },
  };
}

// Derivations for the local runner -------------------------------------------------------------

/** All attributes that appear in a key of the table or of one of its indexes, once each. */
export function keyAttributes(table: TableDefinition): KeyAttribute[] {
  const all = [table.partitionKey, table.sortKey];
  for (const index of table.indexes) all.push(index.partitionKey, index.sortKey);
  const byName = new Map<string, KeyAttribute>();
  for (const attribute of all) {
    if (!attribute) continue;
    const seen = byName.get(attribute.name);
    if (seen && seen.type !== attribute.type) {
      throw new Error(
        `table ${table.logicalId}: attribute ${attribute.name} is both ${seen.type} and ${attribute.type}`,
      );
    }
    byName.set(attribute.name, attribute);
  }
  return [...byName.values()];
}

function keySchema(partitionKey: KeyAttribute, sortKey?: KeyAttribute) {
  return [
    { AttributeName: partitionKey.name, KeyType: "HASH" as const },
    ...(sortKey ? [{ AttributeName: sortKey.name, KeyType: "RANGE" as const }] : []),
  ];
}

/** The `CreateTable` input that reproduces `table` (on-demand billing, like the CDK stack). */
export function createTableInput(
  table: TableDefinition,
  tableName: string,
): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: keyAttributes(table).map((a) => ({
      AttributeName: a.name,
      AttributeType: a.type,
    })),
    KeySchema: keySchema(table.partitionKey, table.sortKey),
    ...(table.indexes.length === 0
      ? {}
      : {
          GlobalSecondaryIndexes: table.indexes.map((index) => ({
            IndexName: index.indexName,
            KeySchema: keySchema(index.partitionKey, index.sortKey),
            Projection: projectionOf(index),
          })),
        }),
  };
}

/** The `UpdateTimeToLive` input for `table`, or `undefined` when it has no TTL attribute. */
export function timeToLiveInput(
  table: TableDefinition,
  tableName: string,
): UpdateTimeToLiveCommandInput | undefined {
  if (table.ttlAttribute === undefined) return undefined;
  return {
    TableName: tableName,
    TimeToLiveSpecification: { AttributeName: table.ttlAttribute, Enabled: true },
  };
}

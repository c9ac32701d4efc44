import { describe, expect, it } from "vitest";
import { ENV } from "../../../lib/contracts/env.ts";
import {
  COMMANDS_BY_DEVICE_INDEX,
  createTableInput,
  DEVICES_BY_AGENT_INDEX,
  DEVICES_BY_STATUS_INDEX,
  expiresAt,
  keyAttributes,
  parsePresenceSortKey,
  presenceKey,
  presenceSortKey,
  queryByPartition,
  TABLE_KEYS,
  TABLES,
  type TableDefinition,
  timeToLiveInput,
} from "../../../lib/contracts/tables.ts";

describe("table definitions", () => {
  it("define the tables the platform needs, each with a distinct logical id and env var", () => {
    expect(TABLE_KEYS).toEqual([
      "devices",
      "presence",
      "commands",
      "agents",
      "alarms",
      "alarmMedia",
      "captures",
      "firmware",
      "campaigns",
      "executions",
      "positions",
      "passthrough",
      "streams",
    ]);
    const ids = TABLE_KEYS.map((k) => TABLES[k].logicalId);
    const envVars = TABLE_KEYS.map((k) => TABLES[k].envVar);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(envVars).size).toBe(envVars.length);
    for (const envVar of envVars) expect(Object.values(ENV)).toContain(envVar);
  });

  it("key the devices table by deviceId with byStatus and byAgent (keys only) indexes sorted by deviceId", () => {
    expect(TABLES.devices.partitionKey).toEqual({ name: "deviceId", type: "S" });
    expect(TABLES.devices.indexes).toEqual([
      {
        indexName: DEVICES_BY_STATUS_INDEX,
        partitionKey: { name: "status", type: "S" },
        sortKey: { name: "deviceId", type: "S" },
        projection: { include: ["devType", "firmwareVersion"] },
      },
      {
        indexName: DEVICES_BY_AGENT_INDEX,
        partitionKey: { name: "agentId", type: "S" },
        sortKey: { name: "deviceId", type: "S" },
        projection: "KEYS_ONLY",
      },
    ]);
    // lastSeen is written 144 times per device-day: it must not be copied into the index.
    expect(JSON.stringify(TABLES.devices.indexes)).not.toContain("lastSeen");
    expect("ttlAttribute" in TABLES.devices).toBe(false);
  });

  it("expire transient data (presence, commands, agent heartbeats) through expiresAt", () => {
    for (const key of [
      "presence",
      "commands",
      "agents",
      "alarms",
      "alarmMedia",
      "captures",
    ] as const) {
      expect(TABLES[key].ttlAttribute).toBe("expiresAt");
      expect(TABLES[key].defaultTtlSeconds).toBeGreaterThan(0);
    }
  });

  it("list each key attribute once with one type", () => {
    expect(keyAttributes(TABLES.commands)).toEqual([
      { name: "commandId", type: "S" },
      { name: "deviceId", type: "S" },
      { name: "createdAt", type: "S" },
    ]);
    const clash: TableDefinition = {
      logicalId: "Clash",
      envVar: ENV.DEVICES_TABLE,
      partitionKey: { name: "id", type: "S" },
      indexes: [{ indexName: "i", partitionKey: { name: "id", type: "N" }, projection: "ALL" }],
    };
    expect(() => keyAttributes(clash)).toThrow(/both S and N/);
  });
});

describe("presence sort key", () => {
  it("is ISO time, '#', then the version padded so text order is (time, version) order", () => {
    expect(presenceSortKey("2024-01-02T03:04:05Z", 42)).toBe(
      "2024-01-02T03:04:05.000Z#0000000000000042",
    );
    const keys = [
      presenceSortKey("2024-01-02T03:04:05.000Z", 10),
      presenceSortKey("2024-01-02T03:04:05.000Z", 9),
      presenceSortKey("2023-12-31T23:59:59.999Z", Number.MAX_SAFE_INTEGER),
      presenceSortKey("2024-01-02T03:04:05.001Z", 0),
    ];
    expect([...keys].sort()).toEqual([keys[2], keys[1], keys[0], keys[3]]);
  });

  it("round-trips through parsePresenceSortKey and rejects anything else", () => {
    const at = new Date(Date.UTC(2025, 5, 1, 12, 0, 0, 123));
    expect(parsePresenceSortKey(presenceSortKey(at, 1_717_243_200_123_456))).toEqual({
      at: "2025-06-01T12:00:00.123Z",
      version: 1_717_243_200_123_456,
    });
    expect(parsePresenceSortKey("2025-06-01T12:00:00Z#1")).toBeUndefined();
  });

  it("refuses negative or unsafe versions", () => {
    expect(() => presenceSortKey(0, -1)).toThrow(RangeError);
    expect(() => presenceSortKey(0, 1.5)).toThrow(RangeError);
    expect(() => presenceSortKey(0, 2 ** 53)).toThrow(RangeError);
  });

  it("builds the full presence key", () => {
    expect(presenceKey("dev-1", 0, 3)).toEqual({
      deviceId: "dev-1",
      at: "1970-01-01T00:00:00.000Z#0000000000000003",
    });
  });
});

describe("derived inputs", () => {
  it("expiresAt is epoch seconds ttl after now", () => {
    expect(expiresAt(new Date("2024-01-01T00:00:00.900Z"), 60)).toBe(1_704_067_260);
    expect(expiresAt(1_704_067_200_000, 0.5)).toBe(1_704_067_201);
  });

  it("queryByPartition targets the index partition key when given an index", () => {
    expect(queryByPartition(TABLES.commands, "dev-1", COMMANDS_BY_DEVICE_INDEX)).toEqual({
      IndexName: "byDevice",
      KeyConditionExpression: "#pk = :pk",
      ExpressionAttributeNames: { "#pk": "deviceId" },
      ExpressionAttributeValues: { ":pk": { S: "dev-1" } },
    });
    expect(queryByPartition(TABLES.presence, "dev-1")).not.toHaveProperty("IndexName");
    expect(() => queryByPartition(TABLES.presence, "x", "nope")).toThrow(/no index nope/);
  });

  it("createTableInput reproduces keys and indexes for the local runner", () => {
    expect(createTableInput(TABLES.presence, "presence")).toEqual({
      TableName: "presence",
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "deviceId", AttributeType: "S" },
        { AttributeName: "at", AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "deviceId", KeyType: "HASH" },
        { AttributeName: "at", KeyType: "RANGE" },
      ],
    });
    expect(createTableInput(TABLES.devices, "devices").GlobalSecondaryIndexes).toEqual([
      {
        IndexName: "byStatus",
        KeySchema: [
          { AttributeName: "status", KeyType: "HASH" },
          { AttributeName: "deviceId", KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: ["devType", "firmwareVersion"] },
      },
      {
        IndexName: "byAgent",
        KeySchema: [
          { AttributeName: "agentId", KeyType: "HASH" },
          { AttributeName: "deviceId", KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "KEYS_ONLY" },
      },
    ]);
  });

  it("timeToLiveInput enables TTL only for tables that have a TTL attribute", () => {
    expect(timeToLiveInput(TABLES.agents, "agents")).toEqual({
      TableName: "agents",
      TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
    });
    expect(timeToLiveInput(TABLES.devices, "devices")).toBeUndefined();
  });
});

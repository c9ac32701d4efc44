import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import { HeadBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { ENV } from "../../../lib/contracts/env.ts";
import { agentCommandQueuePrefix, QUEUE_KEYS, QUEUES } from "../../../lib/contracts/queues.ts";
import { projectionOf, TABLE_KEYS, TABLES } from "../../../lib/contracts/tables.ts";
import {
  ensureLocalResources,
  ensureLocalTables,
  LocalResourceError,
  localTableName,
} from "../../../lib/local/resources.ts";
import { uniquePrefix, useLocalBackends } from "../../helpers/local-backends.ts";

const backends = useLocalBackends();

function sortedKeys(schema: { AttributeName?: string; KeyType?: string }[] = []) {
  return schema.map((k) => ({ name: k.AttributeName, type: k.KeyType }));
}

describe("local resources are derived from the contracts", () => {
  it.each(TABLE_KEYS)("table %s has the contract's keys, indexes and TTL", async (key) => {
    const { clients, resources } = backends();
    const def = TABLES[key];
    const name = resources.tables[key];

    const { Table } = await clients.dynamodb.send(new DescribeTableCommand({ TableName: name }));
    const ttl = await clients.dynamodb.send(new DescribeTimeToLiveCommand({ TableName: name }));

    expect(sortedKeys(Table?.KeySchema)).toEqual([
      { name: def.partitionKey.name, type: "HASH" },
      ...("sortKey" in def ? [{ name: def.sortKey.name, type: "RANGE" }] : []),
    ]);
    expect(Table?.BillingModeSummary?.BillingMode).toBe("PAY_PER_REQUEST");
    // DynamoDB does not keep the order indexes were declared in: compare by name.
    const byName = (a: { name?: string }, b: { name?: string }) =>
      String(a.name).localeCompare(String(b.name));
    const indexes = (Table?.GlobalSecondaryIndexes ?? [])
      .map((i) => ({
        name: i.IndexName,
        keys: sortedKeys(i.KeySchema),
        projection: i.Projection,
      }))
      .sort(byName);
    expect(indexes).toEqual(
      [...def.indexes]
        .map((i) => ({
          name: i.indexName,
          keys: [
            { name: i.partitionKey.name, type: "HASH" },
            ...("sortKey" in i ? [{ name: i.sortKey.name, type: "RANGE" }] : []),
          ],
          projection: projectionOf(i),
        }))
        .sort(byName),
    );
    if ("ttlAttribute" in def) {
      expect(ttl.TimeToLiveDescription).toMatchObject({
        TimeToLiveStatus: "ENABLED",
        AttributeName: def.ttlAttribute,
      });
    } else {
      expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).toBe("DISABLED");
    }
  });

  it.each(QUEUE_KEYS)("queue %s has the contract's DLQ, redrive and retention", async (key) => {
    const { clients, resources } = backends();
    const def = QUEUES[key];
    const queue = resources.queues[key];

    const main = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queue.url, AttributeNames: ["All"] }),
    );
    const dlq = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queue.deadLetter.url, AttributeNames: ["All"] }),
    );

    expect(main.Attributes?.VisibilityTimeout).toBe(String(def.visibilityTimeoutSeconds));
    expect(main.Attributes?.MessageRetentionPeriod).toBe(String(def.retentionSeconds));
    expect(JSON.parse(main.Attributes?.RedrivePolicy ?? "{}")).toEqual({
      deadLetterTargetArn: dlq.Attributes?.QueueArn,
      maxReceiveCount: def.deadLetter.maxReceiveCount,
    });
    expect(dlq.Attributes?.MessageRetentionPeriod).toBe(String(def.deadLetter.retentionSeconds));
    expect(main.Attributes?.QueueArn).toBe(queue.arn);
  });

  it("exports every resource under the env name the stacks use", async () => {
    const { clients, resources } = backends();

    await clients.s3.send(new HeadBucketCommand({ Bucket: resources.bucket }));

    for (const key of TABLE_KEYS) {
      expect(resources.env[TABLES[key].envVar]).toBe(resources.tables[key]);
    }
    for (const key of QUEUE_KEYS) {
      expect(resources.env[QUEUES[key].envVar]).toBe(resources.queues[key].url);
    }
    expect(resources.env[ENV.MEDIA_BUCKET]).toBe(resources.bucket);
    expect(resources.env[ENV.AGENT_QUEUE_PREFIX]).toBe(agentCommandQueuePrefix(resources.prefix));
  });
});

describe("local resources are idempotent", () => {
  it("a second run finds the same resources and leaves their data alone", async () => {
    const { clients, resources } = backends();
    const table = resources.tables.devices;
    await clients.dynamodb.send(
      new PutItemCommand({ TableName: table, Item: { deviceId: { S: "dev-keep" } } }),
    );
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: resources.queues.deviceEvents.url, MessageBody: "keep" }),
    );
    await clients.s3.send(
      new PutObjectCommand({ Bucket: resources.bucket, Key: "pictures/keep.jpg", Body: "x" }),
    );

    const again = await ensureLocalResources({ prefix: resources.prefix }, clients);

    expect(again.env).toEqual(resources.env);
    const item = await clients.dynamodb.send(
      new GetItemCommand({ TableName: table, Key: { deviceId: { S: "dev-keep" } } }),
    );
    expect(item.Item?.deviceId?.S).toBe("dev-keep");
    const received = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: again.queues.deviceEvents.url, WaitTimeSeconds: 1 }),
    );
    expect(received.Messages?.map((m) => m.Body)).toEqual(["keep"]);
  });

  it("adds an index the contract gained to an existing table, keeping its items", async () => {
    const { clients } = backends();
    const prefix = uniquePrefix();
    const name = localTableName(prefix, "devices");
    // The devices table as it was created before the byAgent index existed (with byStatus only;
    // DynamoDB builds one index at a time, which ensureLocalTables waits for when several are
    // missing).
    const [byStatus] = TABLES.devices.indexes;
    await clients.dynamodb.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: "deviceId", AttributeType: "S" },
          { AttributeName: "status", AttributeType: "S" },
        ],
        KeySchema: [{ AttributeName: "deviceId", KeyType: "HASH" }],
        GlobalSecondaryIndexes: [
          {
            IndexName: byStatus.indexName,
            KeySchema: [
              { AttributeName: "status", KeyType: "HASH" },
              { AttributeName: "deviceId", KeyType: "RANGE" },
            ],
            Projection: projectionOf(byStatus),
          },
        ],
      }),
    );
    await clients.dynamodb.send(
      new PutItemCommand({ TableName: name, Item: { deviceId: { S: "dev-old" } } }),
    );

    await ensureLocalTables(prefix, clients.dynamodb);

    const { Table } = await clients.dynamodb.send(new DescribeTableCommand({ TableName: name }));
    expect(Table?.GlobalSecondaryIndexes?.map((i) => i.IndexName)).toEqual(
      TABLES.devices.indexes.map((i) => i.indexName),
    );
    expect(Table?.ItemCount).toBe(1);
  });

  it("refuses a table whose key differs from the contract instead of guessing", async () => {
    const { clients } = backends();
    const prefix = uniquePrefix();
    await clients.dynamodb.send(
      new CreateTableCommand({
        TableName: localTableName(prefix, "devices"),
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      }),
    );

    await expect(ensureLocalTables(prefix, clients.dynamodb)).rejects.toBeInstanceOf(
      LocalResourceError,
    );
  });
});

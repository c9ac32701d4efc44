import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterEach, describe, expect, it } from "vitest";
import { type LocalBackends, startLocalBackends } from "../../../lib/local/backends.ts";
import { uniquePrefix } from "../../helpers/local-backends.ts";

let dataDir: string | undefined;
let backends: LocalBackends | undefined;

afterEach(async () => {
  await backends?.close();
  backends = undefined;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

describe("embedded backends with a data folder (npm start)", () => {
  it("keep table items, queued messages and objects across a restart", async () => {
    dataDir = await mkdtemp(join(tmpdir(), "ehome-local-"));
    const prefix = uniquePrefix();
    backends = await startLocalBackends({ dataDir, prefix, snapshotIntervalMs: 0 });
    const { clients, resources } = backends;
    await clients.dynamodb.send(
      new PutItemCommand({
        TableName: resources.tables.devices,
        Item: { deviceId: { S: "dev-1" }, status: { S: "online" } },
      }),
    );
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: resources.queues.deviceEvents.url, MessageBody: "ev" }),
    );
    await clients.s3.send(
      new PutObjectCommand({ Bucket: resources.bucket, Key: "firmware/v1.bin", Body: "fw" }),
    );
    const firstEnv = backends.env;
    await backends.close();

    backends = await startLocalBackends({ dataDir, prefix, snapshotIntervalMs: 0 });
    const again = backends;

    const item = await again.clients.dynamodb.send(
      new GetItemCommand({
        TableName: again.resources.tables.devices,
        Key: { deviceId: { S: "dev-1" } },
      }),
    );
    const message = await again.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: again.resources.queues.deviceEvents.url,
        WaitTimeSeconds: 1,
      }),
    );
    const object = await again.clients.s3.send(
      new GetObjectCommand({ Bucket: again.resources.bucket, Key: "firmware/v1.bin" }),
    );

    expect(item.Item?.status?.S).toBe("online");
    expect(message.Messages?.map((m) => m.Body)).toEqual(["ev"]);
    expect(await object.Body?.transformToString()).toBe("fw");
    expect(again.resources.tables).toEqual(
      Object.fromEntries(Object.keys(again.resources.tables).map((k) => [k, `${prefix}-${k}`])),
    );
    // Names are stable; only the engines' ports (free ones here) may differ.
    expect(again.env.DEVICES_TABLE).toBe(firstEnv.DEVICES_TABLE);
    expect(again.env.MEDIA_BUCKET).toBe(firstEnv.MEDIA_BUCKET);
  }, 60_000);
});

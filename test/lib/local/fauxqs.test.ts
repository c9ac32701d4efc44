import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";

let dataDir: string;
const running: LocalFauxqs[] = [];
const clients: { destroy(): void }[] = [];

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "ehome-fauxqs-"));
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(running.splice(0).map((f) => f.close()));
  await rm(dataDir, { recursive: true, force: true });
});

async function start(): Promise<{ fauxqs: LocalFauxqs; sqs: SQSClient; s3: S3Client }> {
  const fauxqs = await startFauxqs({ dataDir, snapshotIntervalMs: 0 });
  running.push(fauxqs);
  const common = {
    region: LOCAL_REGION,
    endpoint: fauxqs.endpoint,
    credentials: LOCAL_CREDENTIALS,
  };
  const sqs = new SQSClient(common);
  const s3 = new S3Client({ ...common, forcePathStyle: true });
  clients.push(sqs, s3);
  return { fauxqs, sqs, s3 };
}

describe("fauxqs state survives a restart with a data folder", () => {
  it("restores queues with their redrive policy, and their pending messages", async () => {
    const first = await start();
    const dlq = await first.sqs.send(new CreateQueueCommand({ QueueName: "work-dlq" }));
    const dlqArn = (
      await first.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }),
      )
    ).Attributes?.QueueArn;
    const redrive = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 });
    const work = await first.sqs.send(
      new CreateQueueCommand({
        QueueName: "work",
        Attributes: { VisibilityTimeout: "7", RedrivePolicy: redrive },
      }),
    );
    await first.sqs.send(
      new SendMessageCommand({
        QueueUrl: work.QueueUrl,
        MessageBody: "event-1",
        MessageAttributes: { kind: { DataType: "String", StringValue: "online" } },
      }),
    );
    await first.fauxqs.close();

    const second = await start();
    const url = (await second.sqs.send(new GetQueueUrlCommand({ QueueName: "work" }))).QueueUrl;
    const attrs = await second.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }),
    );
    const received = await second.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ["All"],
      }),
    );

    expect(attrs.Attributes).toMatchObject({ VisibilityTimeout: "7", RedrivePolicy: redrive });
    expect(received.Messages?.map((m) => m.Body)).toEqual(["event-1"]);
    expect(received.Messages?.[0]?.MessageAttributes?.kind?.StringValue).toBe("online");
  });

  it("restores buckets and objects with content type and metadata, and forgets deleted ones", async () => {
    const first = await start();
    await first.s3.send(new CreateBucketCommand({ Bucket: "media" }));
    await first.s3.send(
      new PutObjectCommand({
        Bucket: "media",
        Key: "pictures/dev-1/../a b.jpg",
        Body: Buffer.from([0xff, 0xd8, 0xff, 0x00]),
        ContentType: "image/jpeg",
        Metadata: { deviceid: "dev-1" },
      }),
    );
    await first.s3.send(new PutObjectCommand({ Bucket: "media", Key: "gone.txt", Body: "x" }));
    await first.fauxqs.snapshot();
    await first.s3.send(new DeleteObjectCommand({ Bucket: "media", Key: "gone.txt" }));
    await first.fauxqs.close();

    const second = await start();
    const listed = await second.s3.send(new ListObjectsV2Command({ Bucket: "media" }));
    const object = await second.s3.send(
      new GetObjectCommand({ Bucket: "media", Key: "pictures/dev-1/../a b.jpg" }),
    );

    expect(listed.Contents?.map((o) => o.Key)).toEqual(["pictures/dev-1/../a b.jpg"]);
    expect([...((await object.Body?.transformToByteArray()) ?? [])]).toEqual([0xff, 0xd8, 0xff, 0]);
    expect(object.ContentType).toBe("image/jpeg");
    expect(object.Metadata).toEqual({ deviceid: "dev-1" });
    // Object files are named by hash, never by key: nothing escapes the data folder.
    expect(await readdir(join(dataDir, "s3"))).toHaveLength(1);
  });

  it("keeps nothing without a data folder", async () => {
    const fauxqs = await startFauxqs();
    running.push(fauxqs);

    await fauxqs.snapshot();

    expect(await readdir(dataDir)).toEqual([]);
  });
});

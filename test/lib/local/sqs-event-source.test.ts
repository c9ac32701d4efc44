import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "../../../lib/local/clients.ts";
import { type LocalFauxqs, startFauxqs } from "../../../lib/local/fauxqs.ts";
import { ensureLocalQueues, type LocalQueue } from "../../../lib/local/resources.ts";
import {
  createSqsEventSource,
  eventSourceConfigFor,
  type SqsEventSource,
  type SqsHandler,
  type SqsRecord,
} from "../../../lib/local/sqs-event-source.ts";
import { eventually, uniquePrefix } from "../../helpers/local-backends.ts";

// Queues come from the contract, with a 1 s visibility timeout so redelivery takes a second
// rather than the contract's minutes.
const VISIBILITY_SECONDS = 1;

let fauxqs: LocalFauxqs;
let sqs: SQSClient;
const sources: SqsEventSource[] = [];

beforeAll(async () => {
  fauxqs = await startFauxqs();
  sqs = new SQSClient({
    region: LOCAL_REGION,
    endpoint: fauxqs.endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
});

afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  sqs.destroy();
  await fauxqs.close();
});

async function freshQueues(): Promise<Record<"deviceEvents" | "commandResults", LocalQueue>> {
  return ensureLocalQueues(uniquePrefix(), sqs, { visibilityTimeoutSeconds: VISIBILITY_SECONDS });
}

function start(queue: LocalQueue, handler: SqsHandler, waitTimeSeconds = 1): SqsEventSource {
  const source = createSqsEventSource(
    { ...eventSourceConfigFor(queue, LOCAL_REGION), waitTimeSeconds },
    { sqs, handler },
  );
  sources.push(source);
  return source;
}

async function depth(url: string): Promise<number> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return (
    Number(Attributes?.ApproximateNumberOfMessages) +
    Number(Attributes?.ApproximateNumberOfMessagesNotVisible)
  );
}

describe("SQS event source (Lambda event source mapping, locally)", () => {
  it("invokes the handler with a Lambda-shaped SQS event and deletes what succeeded", async () => {
    const { commandResults: queue } = await freshQueues();
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: '{"hello":"world"}',
        MessageAttributes: { kind: { DataType: "String", StringValue: "result" } },
      }),
    );
    const seen: SqsRecord[] = [];
    start(queue, async (event) => {
      seen.push(...event.Records);
    });

    await eventually(async () => (seen.length > 0 ? true : undefined));
    await eventually(async () => ((await depth(queue.url)) === 0 ? true : undefined));

    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      messageId: sent.MessageId,
      body: '{"hello":"world"}',
      eventSource: "aws:sqs",
      eventSourceARN: queue.arn,
      awsRegion: LOCAL_REGION,
      md5OfBody: sent.MD5OfMessageBody,
      attributes: { ApproximateReceiveCount: "1" },
      messageAttributes: {
        kind: {
          dataType: "String",
          stringValue: "result",
          stringListValues: [],
          binaryListValues: [],
        },
      },
    });
    expect(seen[0]?.receiptHandle).toEqual(expect.any(String));
    expect(Number(seen[0]?.attributes.SentTimestamp)).toBeGreaterThan(0);
  });

  it("batches up to batchSize messages within the batching window", async () => {
    const { deviceEvents: queue } = await freshQueues();
    const batchSize = queue.definition.consumer.batchSize;
    // More than one ReceiveMessage can return (10): the poller must gather several receives.
    const bodies = Array.from({ length: batchSize }, (_, i) => `e${i}`);
    for (let i = 0; i < bodies.length; i += 10) {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: bodies.slice(i, i + 10).map((b, j) => ({ Id: `m${j}`, MessageBody: b })),
        }),
      );
    }
    const sizes: number[] = [];
    start(queue, async (event) => {
      sizes.push(event.Records.length);
    });

    await eventually(async () =>
      sizes.reduce((a, b) => a + b, 0) === batchSize ? true : undefined,
    );

    expect(sizes).toEqual([batchSize]);
  });

  it("a partial batch failure redelivers only the failed record", async () => {
    // No batching window here: with a 1 s visibility timeout, a 1 s window would see its own
    // messages come back (the contract keeps visibility far above the window for that reason).
    const { commandResults: queue } = await freshQueues();
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: ["a", "b", "c"].map((b) => ({ Id: b, MessageBody: b })),
      }),
    );
    const deliveries: { body: string; receiveCount: string }[] = [];
    let failedOnce = false;
    const source = start(queue, async (event) => {
      const failures: { itemIdentifier: string }[] = [];
      for (const record of event.Records) {
        deliveries.push({
          body: record.body,
          receiveCount: record.attributes.ApproximateReceiveCount,
        });
        if (record.body === "b" && !failedOnce) {
          failedOnce = true;
          failures.push({ itemIdentifier: record.messageId });
        }
      }
      return { batchItemFailures: failures };
    });

    await eventually(async () =>
      deliveries.filter((d) => d.body === "b").length === 2 ? true : undefined,
    );
    await eventually(async () => ((await depth(queue.url)) === 0 ? true : undefined));

    expect(deliveries.filter((d) => d.body === "a")).toHaveLength(1);
    expect(deliveries.filter((d) => d.body === "c")).toHaveLength(1);
    expect(deliveries.filter((d) => d.body === "b").map((d) => d.receiveCount)).toEqual(["1", "2"]);
    expect(source.stats).toMatchObject({ succeeded: 3, failed: 1, batchErrors: 0 });
  });

  it("a handler that throws leaves the whole batch for redelivery", async () => {
    const { commandResults: queue } = await freshQueues();
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "x" }));
    let calls = 0;
    const source = start(queue, async () => {
      calls++;
      if (calls === 1) throw new Error("database unavailable");
    });

    await eventually(async () => (calls === 2 ? true : undefined));
    await eventually(async () => ((await depth(queue.url)) === 0 ? true : undefined));

    expect(source.stats).toMatchObject({ batches: 2, succeeded: 1, failed: 1, batchErrors: 1 });
  });

  it("a batch response naming an unknown record fails the whole batch, as Lambda does", async () => {
    const { commandResults: queue } = await freshQueues();
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "x" }));
    let calls = 0;
    const source = start(queue, async () => {
      calls++;
      return calls === 1 ? { batchItemFailures: [{ itemIdentifier: "not-in-batch" }] } : undefined;
    });

    await eventually(async () => (calls === 2 ? true : undefined));

    expect(source.stats.batchErrors).toBe(1);
  });

  it("a poison message lands in the DLQ after maxReceiveCount receives", async () => {
    const { commandResults: queue } = await freshQueues();
    const maxReceiveCount = queue.definition.deadLetter.maxReceiveCount;
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "poison" }));
    const receiveCounts: string[] = [];
    start(queue, async (event) => ({
      batchItemFailures: event.Records.map((r) => {
        receiveCounts.push(r.attributes.ApproximateReceiveCount);
        return { itemIdentifier: r.messageId };
      }),
    }));

    const dead = await eventually(
      async () => {
        const out = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queue.deadLetter.url, WaitTimeSeconds: 1 }),
        );
        return out.Messages?.[0];
      },
      { timeoutMs: (maxReceiveCount + 3) * (VISIBILITY_SECONDS + 1) * 1000 },
    );

    expect(dead.Body).toBe("poison");
    expect(receiveCounts).toEqual(Array.from({ length: maxReceiveCount }, (_, i) => String(i + 1)));
    expect(await depth(queue.url)).toBe(0);
  }, 30_000);

  it("close() ends a long poll at once and waits for the batch in flight", async () => {
    const { commandResults: queue } = await freshQueues();
    let release: () => void = () => {};
    const handlerDone = new Promise<void>((r) => {
      release = r;
    });
    let entered = false;
    const source = start(
      queue,
      async () => {
        entered = true;
        await handlerDone;
      },
      20,
    );
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "slow" }));
    await eventually(async () => (entered ? true : undefined));

    let closed = false;
    const closing = source.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    release();
    await closing;

    expect(source.stats.succeeded).toBe(1);
    expect(await depth(queue.url)).toBe(0);

    // An idle source blocked in a 20 s long poll stops promptly.
    const idle = start(queue, async () => {}, 20);
    await new Promise((r) => setTimeout(r, 100));
    const startedAt = Date.now();
    await idle.close();
    expect(Date.now() - startedAt).toBeLessThan(1_000);
  });
});

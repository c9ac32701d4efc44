import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import {
  CreateQueueCommand,
  type MessageAttributeValue,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { LocalLog } from "./log.ts";

/**
 * Persistence for fauxqs, which has none: a snapshot of every queue (attributes and messages)
 * and every bucket (objects, content type, user metadata) in a folder, restored at start.
 *
 * Objects are written incrementally (only keys whose ETag changed), so a periodic snapshot of a
 * bucket full of videos costs one listing. Restored messages are new sends: they get new message
 * ids and a receive count of zero, and messages that were in flight become visible again; every
 * consumer is idempotent (architecture §2), so redelivery is safe. Delays are not restored.
 */

export interface FauxqsSnapshotConfig {
  dataDir: string;
  /** fauxqs base URL, for its inspection endpoint (`/_fauxqs/queues`). */
  endpoint: string;
}

export interface FauxqsSnapshotDeps {
  sqs: SQSClient;
  s3: S3Client;
  log: LocalLog;
}

export interface FauxqsSnapshots {
  restore(): Promise<void>;
  save(): Promise<void>;
}

const FORMAT = 1;

/** Queue attributes fauxqs lets CreateQueue set (the rest are computed). */
const RESTORABLE_ATTRIBUTES = [
  "VisibilityTimeout",
  "DelaySeconds",
  "MaximumMessageSize",
  "MessageRetentionPeriod",
  "ReceiveMessageWaitTimeSeconds",
  "RedrivePolicy",
  "Policy",
  "KmsMasterKeyId",
  "KmsDataKeyReusePeriodSeconds",
  "FifoQueue",
  "ContentBasedDeduplication",
];

interface InspectedMessage {
  body: string;
  sentTimestamp: number;
  messageAttributes: Record<
    string,
    { DataType: string; StringValue?: string; BinaryValue?: string }
  >;
  messageGroupId?: string;
  messageDeduplicationId?: string;
}

interface InspectedQueue {
  name: string;
  attributes: Record<string, string>;
  messages: {
    ready: InspectedMessage[];
    delayed: InspectedMessage[];
    inflight: { message: InspectedMessage }[];
  };
}

interface QueueSnapshot {
  name: string;
  attributes: Record<string, string>;
  messages: InspectedMessage[];
}

interface ObjectEntry {
  etag: string;
  file: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

interface Manifest {
  format: number;
  buckets: Record<string, Record<string, ObjectEntry>>;
}

export function createFauxqsSnapshots(
  config: FauxqsSnapshotConfig,
  deps: FauxqsSnapshotDeps,
): FauxqsSnapshots {
  const queuesFile = join(config.dataDir, "sqs.json");
  const objectsDir = join(config.dataDir, "s3");
  const manifestFile = join(config.dataDir, "s3-manifest.json");
  let manifest: Manifest = { format: FORMAT, buckets: {} };
  let lastQueuesJson = "";
  // Saves never overlap: the interval and close() may both ask for one.
  let chain: Promise<void> = Promise.resolve();

  async function restore(): Promise<void> {
    await mkdir(objectsDir, { recursive: true });
    const queues = await readJson<{ format: number; queues: QueueSnapshot[] }>(queuesFile);
    const stored = await readJson<Manifest>(manifestFile);
    if (stored?.format === FORMAT) manifest = stored;
    let messages = 0;
    let objects = 0;
    if (queues?.format === FORMAT) {
      // Dead-letter queues first: a redrive policy names its DLQ by ARN.
      const ordered = [...queues.queues].sort(
        (a, b) => Number("RedrivePolicy" in a.attributes) - Number("RedrivePolicy" in b.attributes),
      );
      for (const queue of ordered) {
        const { QueueUrl } = await deps.sqs.send(
          new CreateQueueCommand({ QueueName: queue.name, Attributes: queue.attributes }),
        );
        for (let i = 0; i < queue.messages.length; i += 10) {
          const batch = queue.messages.slice(i, i + 10);
          await deps.sqs.send(
            new SendMessageBatchCommand({
              QueueUrl,
              Entries: batch.map((m, j) => ({
                Id: `m${j}`,
                MessageBody: m.body,
                MessageAttributes: toSdkAttributes(m.messageAttributes),
                MessageGroupId: m.messageGroupId,
                MessageDeduplicationId: m.messageDeduplicationId,
              })),
            }),
          );
          messages += batch.length;
        }
      }
      lastQueuesJson = JSON.stringify(queues);
    }
    for (const [bucket, entries] of Object.entries(manifest.buckets)) {
      await deps.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      for (const [key, entry] of Object.entries(entries)) {
        const body = await readFile(join(objectsDir, entry.file));
        await deps.s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: body,
            ContentType: entry.contentType,
            Metadata: entry.metadata,
          }),
        );
        objects++;
      }
    }
    deps.log.info("fauxqs state restored", {
      dataDir: config.dataDir,
      queues: queues?.queues.length ?? 0,
      messages,
      objects,
    });
  }

  async function saveQueues(): Promise<void> {
    const list = (await inspect<{ name: string }[]>("/_fauxqs/queues")) ?? [];
    const queues: QueueSnapshot[] = [];
    for (const { name } of list) {
      const queue = await inspect<InspectedQueue>(`/_fauxqs/queues/${encodeURIComponent(name)}`);
      if (!queue) continue;
      const attributes: Record<string, string> = {};
      for (const key of RESTORABLE_ATTRIBUTES) {
        const value = queue.attributes[key];
        if (value !== undefined) attributes[key] = value;
      }
      const messages = [
        ...queue.messages.ready,
        ...queue.messages.delayed,
        ...queue.messages.inflight.map((entry) => entry.message),
      ]
        .sort((a, b) => a.sentTimestamp - b.sentTimestamp)
        .map((m) => ({
          body: m.body,
          sentTimestamp: m.sentTimestamp,
          messageAttributes: m.messageAttributes,
          ...(m.messageGroupId === undefined ? {} : { messageGroupId: m.messageGroupId }),
          ...(m.messageDeduplicationId === undefined
            ? {}
            : { messageDeduplicationId: m.messageDeduplicationId }),
        }));
      queues.push({ name: queue.name, attributes, messages });
    }
    const json = JSON.stringify({ format: FORMAT, queues });
    if (json === lastQueuesJson) return;
    await writeAtomically(queuesFile, json);
    lastQueuesJson = json;
  }

  async function saveObjects(): Promise<void> {
    const next: Manifest = { format: FORMAT, buckets: {} };
    const { Buckets = [] } = await deps.s3.send(new ListBucketsCommand({}));
    let changed = false;
    for (const { Name: bucket } of Buckets) {
      if (!bucket) continue;
      const previous = manifest.buckets[bucket] ?? {};
      const entries: Record<string, ObjectEntry> = {};
      if (manifest.buckets[bucket] === undefined) changed = true;
      let token: string | undefined;
      do {
        const page = await deps.s3.send(
          new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
        );
        for (const item of page.Contents ?? []) {
          if (item.Key === undefined || item.ETag === undefined) continue;
          const known = previous[item.Key];
          if (known?.etag === item.ETag) {
            entries[item.Key] = known;
            continue;
          }
          const object = await deps.s3.send(
            new GetObjectCommand({ Bucket: bucket, Key: item.Key }),
          );
          const body = await object.Body?.transformToByteArray();
          const file = objectFileName(bucket, item.Key);
          await writeAtomically(join(objectsDir, file), body ?? new Uint8Array());
          entries[item.Key] = {
            etag: item.ETag,
            file,
            ...(object.ContentType ? { contentType: object.ContentType } : {}),
            ...(object.Metadata && Object.keys(object.Metadata).length > 0
              ? { metadata: object.Metadata }
              : {}),
          };
          changed = true;
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      next.buckets[bucket] = entries;
    }
    const removed: ObjectEntry[] = [];
    for (const [bucket, entries] of Object.entries(manifest.buckets)) {
      for (const [key, entry] of Object.entries(entries)) {
        if (next.buckets[bucket]?.[key] === undefined) removed.push(entry);
      }
      if (next.buckets[bucket] === undefined) changed = true;
    }
    if (!changed && removed.length === 0) return;
    // Manifest first: a crash between the two steps leaves unreferenced files, never missing ones.
    await writeAtomically(manifestFile, JSON.stringify(next));
    manifest = next;
    for (const entry of removed) await rm(join(objectsDir, entry.file), { force: true });
  }

  async function inspect<T>(path: string): Promise<T | undefined> {
    const res = await fetch(`${config.endpoint}${path}`, { signal: AbortSignal.timeout(10_000) });
    if (res.status === 404) {
      await res.arrayBuffer();
      return undefined;
    }
    if (!res.ok) throw new Error(`fauxqs inspection ${path} answered ${res.status}`);
    return (await res.json()) as T;
  }

  return {
    restore,
    save() {
      const run = chain.then(async () => {
        await mkdir(objectsDir, { recursive: true });
        await saveQueues();
        await saveObjects();
      });
      chain = run.catch(() => {});
      return run;
    },
  };
}

function objectFileName(bucket: string, key: string): string {
  // Keys may hold any character, including `/` and `..`: never use them as paths.
  return createHash("sha256").update(bucket).update("\0").update(key).digest("hex");
}

function toSdkAttributes(
  attributes: InspectedMessage["messageAttributes"],
): Record<string, MessageAttributeValue> | undefined {
  const entries = Object.entries(attributes ?? {});
  if (entries.length === 0) return undefined;
  return Object.fromEntries(
    entries.map(([name, value]) => [
      name,
      {
        DataType: value.DataType,
        ...(value.StringValue === undefined ? {} : { StringValue: value.StringValue }),
        ...(value.BinaryValue === undefined
          ? {}
          : { BinaryValue: Buffer.from(value.BinaryValue, "base64") }),
      },
    ]),
  );
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read snapshot ${file}: ${(err as Error).message}`);
  }
}

async function writeAtomically(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

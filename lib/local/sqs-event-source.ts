import { randomUUID } from "node:crypto";
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { type LocalLog, silentLog } from "./log.ts";
import type { LocalQueue } from "./resources.ts";
import {
  type LocalLambdaContext,
  type SqsBatchResponse,
  type SqsEvent,
  type SqsHandler,
  type SqsRecord,
  toSqsRecord,
} from "./sqs-event.ts";

export type {
  LocalLambdaContext,
  SqsBatchResponse,
  SqsEvent,
  SqsHandler,
  SqsMessageAttribute,
  SqsRecord,
} from "./sqs-event.ts";

/**
 * What Lambda's SQS event source mapping does, for a handler running in this process: long-poll
 * the queue, gather up to `batchSize` messages for at most the batching window, invoke the
 * handler with a real-shaped SQS event, delete the records that succeeded, and leave the ones in
 * `batchItemFailures` (or the whole batch, if the handler throws) to reappear after the
 * visibility timeout. The dead-letter move after `maxReceiveCount` receives is done by fauxqs
 * itself from the queue's RedrivePolicy, as SQS does on AWS.
 */

export interface SqsEventSourceConfig {
  /** Function name, for logs and `context.functionName`. */
  name: string;
  queueUrl: string;
  queueArn: string;
  region: string;
  batchSize: number;
  maxBatchingWindowSeconds: number;
  /** Lambda timeout; a batch that runs longer is reported (it cannot be interrupted). */
  functionTimeoutSeconds: number;
  /** Long-poll wait per ReceiveMessage, 1–20 s. Default 20, like Lambda's pollers. */
  waitTimeSeconds?: number;
}

export interface SqsEventSourceDeps {
  sqs: SQSClient;
  handler: SqsHandler;
  log?: LocalLog;
}

export interface SqsEventSourceStats {
  batches: number;
  succeeded: number;
  failed: number;
  /** Batches whose handler threw or answered with an invalid batch response. */
  batchErrors: number;
}

export interface SqsEventSource {
  readonly stats: Readonly<SqsEventSourceStats>;
  /** Stops polling, waits for the batch in flight (and its deletes); idempotent. */
  close(): Promise<void>;
}

/** The event source settings of a contract queue (`lib/contracts/queues.ts`). */
export function eventSourceConfigFor(
  queue: LocalQueue,
  region: string,
): Omit<SqsEventSourceConfig, "waitTimeSeconds"> {
  const consumer = queue.definition.consumer;
  return {
    name: consumer.handler,
    queueUrl: queue.url,
    queueArn: queue.arn,
    region,
    batchSize: consumer.batchSize,
    maxBatchingWindowSeconds: consumer.maxBatchingWindowSeconds,
    functionTimeoutSeconds: consumer.timeoutSeconds,
  };
}

const SQS_MAX_RECEIVE = 10;
const SHORT_POLL_PAUSE_MS = 50;
const MAX_BACKOFF_MS = 5_000;

export function createSqsEventSource(
  config: SqsEventSourceConfig,
  deps: SqsEventSourceDeps,
): SqsEventSource {
  const log = deps.log ?? silentLog;
  const waitTimeSeconds = Math.min(20, Math.max(1, config.waitTimeSeconds ?? 20));
  const stats: SqsEventSourceStats = { batches: 0, succeeded: 0, failed: 0, batchErrors: 0 };
  const abort = new AbortController();
  let closed = false;

  const receive = async (max: number, wait: number): Promise<Message[]> => {
    const out = await deps.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: config.queueUrl,
        MaxNumberOfMessages: Math.min(SQS_MAX_RECEIVE, max),
        WaitTimeSeconds: wait,
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
      { abortSignal: abort.signal },
    );
    return out.Messages ?? [];
  };

  /** One batch: the first long poll, then more receives until full or the window closes. */
  const collect = async (): Promise<Message[]> => {
    const batch = await receive(config.batchSize, waitTimeSeconds);
    if (batch.length === 0) return batch;
    const deadline = Date.now() + config.maxBatchingWindowSeconds * 1000;
    while (!closed && batch.length < config.batchSize && Date.now() < deadline) {
      const remaining = deadline - Date.now();
      const wait = remaining >= 1000 ? Math.min(20, Math.floor(remaining / 1000)) : 0;
      let more: Message[];
      try {
        more = await receive(config.batchSize - batch.length, wait);
      } catch (err) {
        // Already holding messages: hand them over rather than let them time out.
        if (!closed) log.warn("sqs receive failed while batching", { function: config.name, err });
        break;
      }
      batch.push(...more);
      if (more.length === 0 && wait === 0) {
        await sleep(Math.min(remaining, SHORT_POLL_PAUSE_MS), abort.signal);
      }
    }
    return batch;
  };

  const invoke = async (messages: Message[]): Promise<void> => {
    const event: SqsEvent = { Records: messages.map((m) => toSqsRecord(m, config)) };
    const ids = new Set(event.Records.map((r) => r.messageId));
    const startedAt = Date.now();
    const deadline = startedAt + config.functionTimeoutSeconds * 1000;
    const context: LocalLambdaContext = {
      functionName: config.name,
      awsRequestId: randomUUID(),
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    stats.batches++;
    let failedIds: Set<string>;
    try {
      const response = await deps.handler(event, context);
      failedIds = failuresOf(response, ids);
    } catch (err) {
      // A thrown handler (or an invalid response) fails the whole batch, as on Lambda.
      stats.batchErrors++;
      failedIds = ids;
      log.error("sqs handler failed the whole batch", {
        function: config.name,
        records: ids.size,
        err,
      });
    }
    const elapsed = Date.now() - startedAt;
    if (elapsed > config.functionTimeoutSeconds * 1000) {
      log.warn("sqs handler ran past its Lambda timeout", {
        function: config.name,
        elapsedMs: elapsed,
        timeoutSeconds: config.functionTimeoutSeconds,
      });
    }
    const done = event.Records.filter((r) => !failedIds.has(r.messageId));
    stats.failed += event.Records.length - done.length;
    stats.succeeded += done.length;
    await deleteRecords(done);
  };

  const deleteRecords = async (records: SqsRecord[]): Promise<void> => {
    for (let i = 0; i < records.length; i += SQS_MAX_RECEIVE) {
      const chunk = records.slice(i, i + SQS_MAX_RECEIVE);
      try {
        const out = await deps.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: config.queueUrl,
            Entries: chunk.map((r, j) => ({ Id: String(j), ReceiptHandle: r.receiptHandle })),
          }),
        );
        if (out.Failed && out.Failed.length > 0) {
          log.warn("sqs delete failed; the records will be redelivered", {
            function: config.name,
            failed: out.Failed.length,
          });
        }
      } catch (err) {
        log.warn("sqs delete failed; the records will be redelivered", {
          function: config.name,
          err,
        });
      }
    }
  };

  const loop = async (): Promise<void> => {
    let backoff = 0;
    while (!closed) {
      let messages: Message[];
      try {
        messages = await collect();
        backoff = 0;
      } catch (err) {
        if (closed) break;
        backoff = Math.min(MAX_BACKOFF_MS, backoff === 0 ? 100 : backoff * 2);
        log.warn("sqs receive failed; retrying", {
          function: config.name,
          backoffMs: backoff,
          err,
        });
        await sleep(backoff, abort.signal);
        continue;
      }
      // Messages received while closing are still handled: they are already invisible.
      if (messages.length > 0) await invoke(messages);
    }
  };

  const running = loop();
  let closing: Promise<void> | undefined;
  return {
    stats,
    close() {
      closing ??= (async () => {
        closed = true;
        abort.abort();
        await running;
      })();
      return closing;
    },
  };
}

/** Lambda's rules for a partial batch response: anything malformed fails the whole batch. */
function failuresOf(response: unknown, ids: Set<string>): Set<string> {
  if (response === undefined || response === null) return new Set();
  const failures = (response as Partial<SqsBatchResponse>).batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) throw new Error("batchItemFailures is not an array");
  const failed = new Set<string>();
  for (const failure of failures) {
    const id = failure?.itemIdentifier;
    if (typeof id !== "string" || !ids.has(id)) {
      throw new Error(`batchItemFailures names ${JSON.stringify(id)}, not a record of the batch`);
    }
    failed.add(id);
  }
  return failed;
}

/** Resolves after `ms`, or at once when `signal` aborts (close() must not wait out a backoff). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

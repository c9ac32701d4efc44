import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SqsSender } from "../../../edge-agent/cloud/aws.ts";
import { eventually } from "../../helpers/local-backends.ts";

/**
 * Test-side SQS helpers: a reader that drains a queue into memory (consumers are not running in
 * these tests, so everything the agent sends stays there), and a client wrapper that counts
 * SendMessageBatch calls and can fail the first few on purpose.
 */

export interface QueueReader {
  /** Every message body received so far (parsed JSON), in receive order. */
  readonly messages: unknown[];
  /** Drains until `probe(messages)` returns a value, or fails after `timeoutMs`. */
  until<T>(probe: (messages: unknown[]) => T | undefined, timeoutMs?: number): Promise<T>;
  /** Drains what is there now. */
  drain(): Promise<unknown[]>;
}

export function queueReader(sqs: SQSClient, queueUrl: string): QueueReader {
  const messages: unknown[] = [];
  const drain = async () => {
    for (;;) {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
        }),
      );
      const batch = out.Messages ?? [];
      if (batch.length === 0) return messages;
      for (const m of batch) messages.push(JSON.parse(m.Body ?? "null"));
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
  };
  return {
    messages,
    drain,
    until: (probe, timeoutMs = 5_000) =>
      eventually(
        async () => {
          await drain();
          return probe(messages) ?? undefined;
        },
        { timeoutMs, intervalMs: 25 },
      ),
  };
}

/** Messages visible plus in flight (received, not deleted) on a queue. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  const a = out.Attributes ?? {};
  return (
    Number(a.ApproximateNumberOfMessages ?? 0) +
    Number(a.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

export interface SpySqs {
  readonly sender: SqsSender;
  /** Entry count of every SendMessageBatch call (failed ones included). */
  readonly batchCalls: number[];
  /** Total entries offered in SendMessageBatch calls. */
  entries(): number;
  /** Number of calls of one command, e.g. `ReceiveMessageCommand`. */
  count(commandName: string): number;
}

/** Wraps a real client; the first `failBatchCalls` SendMessageBatch calls reject like a 500. */
export function spySqs(real: SQSClient, options: { failBatchCalls?: number } = {}): SpySqs {
  const batchCalls: number[] = [];
  const names: string[] = [];
  let failuresLeft = options.failBatchCalls ?? 0;
  const send = (command: object, opts?: unknown) => {
    names.push(command.constructor.name);
    if (command instanceof SendMessageBatchCommand) {
      batchCalls.push(command.input.Entries?.length ?? 0);
      if (failuresLeft > 0) {
        failuresLeft--;
        return Promise.reject(
          Object.assign(new Error("injected failure"), { name: "InternalError" }),
        );
      }
    }
    return (real.send as (c: unknown, o?: unknown) => Promise<unknown>)(command, opts);
  };
  return {
    sender: { send } as unknown as SqsSender,
    batchCalls,
    entries: () => batchCalls.reduce((a, b) => a + b, 0),
    count: (name) => names.filter((n) => n === name).length,
  };
}

import type { Logger } from "./logger.ts";

/**
 * SQS event source with `ReportBatchItemFailures` (Powertools `processPartialResponse`): each
 * record is handled on its own; the ids of the ones that threw go back to the poller, which makes
 * only those visible again. After the queue's maxReceiveCount they move to the DLQ, which is how a
 * poison message stops retrying.
 */

/** The parts of an SQS Lambda event record we use. */
export interface SqsRecord {
  readonly messageId: string;
  readonly body: string;
  readonly receiptHandle?: string;
  readonly attributes?: Readonly<Record<string, string | undefined>>;
  readonly messageAttributes?: Readonly<Record<string, unknown>>;
  readonly eventSourceARN?: string;
}

export interface SqsEvent {
  readonly Records: readonly SqsRecord[];
}

export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** A record that can never succeed (bad JSON, schema mismatch). Logged, then left to the DLQ. */
export class PoisonMessageError extends Error {
  readonly code = "POISON_MESSAGE";
  readonly issues: unknown;
  constructor(message: string, issues?: unknown) {
    super(message);
    this.name = "PoisonMessageError";
    this.issues = issues;
  }
}

/** Parse a record body as JSON, then with `schema`; throws `PoisonMessageError`. */
export function parseRecord<T>(
  record: SqsRecord,
  schema: {
    safeParse(value: unknown): { success: true; data: T } | { success: false; error: unknown };
  },
): T {
  let json: unknown;
  try {
    json = JSON.parse(record.body);
  } catch {
    throw new PoisonMessageError("record body is not JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = (parsed.error as { issues?: unknown }).issues ?? parsed.error;
    throw new PoisonMessageError("record body does not match the schema", issues);
  }
  return parsed.data;
}

/**
 * Run `handle` for every record. Records that share a `groupKey` run one after another in batch
 * order (fewer conditional-write conflicts on one item); different groups run concurrently.
 */
export async function processPartialBatch(
  event: SqsEvent,
  handle: (record: SqsRecord) => Promise<void>,
  options: { logger: Logger; groupKey?: (record: SqsRecord) => string },
): Promise<SqsBatchResponse> {
  const groups = new Map<string, SqsRecord[]>();
  for (const record of event.Records) {
    const key = options.groupKey?.(record) ?? record.messageId;
    const group = groups.get(key);
    if (group) group.push(record);
    else groups.set(key, [record]);
  }
  const failed = new Set<string>();
  await Promise.all(
    [...groups.values()].map(async (records) => {
      for (const record of records) {
        try {
          await handle(record);
        } catch (error) {
          failed.add(record.messageId);
          const poison = error instanceof PoisonMessageError;
          options.logger[poison ? "error" : "warn"](
            poison ? "poison message; it will reach the DLQ" : "record failed; it will be retried",
            {
              messageId: record.messageId,
              receiveCount: record.attributes?.ApproximateReceiveCount,
              error,
              ...(poison ? { issues: error.issues, body: record.body.slice(0, 2048) } : {}),
            },
          );
        }
      }
    }),
  );
  // Keep the batch order so the poller's view matches the input.
  return {
    batchItemFailures: event.Records.filter((r) => failed.has(r.messageId)).map((r) => ({
      itemIdentifier: r.messageId,
    })),
  };
}

/** Best-effort grouping key: the `deviceId` of a JSON body, or the message id. */
export function deviceIdGroupKey(record: SqsRecord): string {
  try {
    const body = JSON.parse(record.body) as { deviceId?: unknown };
    if (typeof body.deviceId === "string") return `device:${body.deviceId}`;
  } catch {
    // Poison; handled (and reported) by the record handler.
  }
  return `message:${record.messageId}`;
}

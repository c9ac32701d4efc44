import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";

/**
 * The slice of the AWS SDK v3 clients the cloud adapters use, and how they receive them: always a
 * getter, so a client is built on first use (never at import or construction time) and tests can
 * hand in a wrapper that fails on purpose.
 */

/** Anything with the SQS client's `send` (the real client, or a test wrapper around one). */
export type SqsSender = Pick<SQSClient, "send">;
/** Anything with the DynamoDB client's `send`. */
export type DynamoSender = Pick<DynamoDBClient, "send">;

/** A client, or a function that builds (or returns) it on first use. */
export type ClientSource<T> = T | (() => T);

/** Memoised getter: the factory runs at most once, on the first call. */
export function lazy<T>(factory: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: factory() };
    return built.value;
  };
}

export function asGetter<T extends object>(source: ClientSource<T>): () => T {
  return typeof source === "function" ? lazy(source as () => T) : () => source;
}

/** True for the error an aborted SDK call rejects with (our close() aborting a long poll). */
export function isAbortError(err: unknown): boolean {
  const name = (err as { name?: unknown } | undefined)?.name;
  return name === "AbortError" || name === "RequestAbortedError";
}

/**
 * Exponential backoff with jitter: the ceiling doubles per attempt up to `maxMs`, and the delay is
 * drawn from the upper half of it ("equal jitter"), so retries of many entries spread out but
 * never collapse to an immediate retry.
 */
export function backoffMs(
  attempt: number,
  options: { baseMs: number; maxMs: number },
  random: () => number,
): number {
  const ceiling = Math.min(
    options.maxMs,
    options.baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 30),
  );
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** A timer-based sleep that ends early (resolving) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

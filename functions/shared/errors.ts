export { ApiError, ERROR_CODES, type ErrorCode } from "../../lib/contracts/errors.ts";

/**
 * A storage call failed for a reason other than a condition we asked for (throttling, network,
 * missing table). Repositories translate SDK errors into this at their boundary; services let it
 * propagate, so an SQS record is retried and an API request answers 500.
 */
export class StorageError extends Error {
  readonly code = "STORAGE_ERROR";
  readonly operation: string;
  constructor(operation: string, cause: unknown) {
    super(`${operation} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = "StorageError";
    this.operation = operation;
  }
}

/** A message could not be sent to a queue. */
export class QueueSendError extends Error {
  readonly code = "QUEUE_SEND_FAILED";
  constructor(queueUrl: string, cause: unknown) {
    super(`send to ${queueUrl} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = "QueueSendError";
  }
}

/** True for the SDK error a failed `ConditionExpression` raises (a normal outcome for us). */
export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === "ConditionalCheckFailedException";
}

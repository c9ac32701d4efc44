import type { SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import {
  awsClientConfigFromEnv,
  createDocumentClient,
  createSqsClient,
} from "../../functions/shared/clients.ts";
import { createLogger, type Logger } from "../../functions/shared/logger.ts";
import type { SqsEvent } from "../../functions/shared/sqs-batch.ts";
import type { LocalBackends } from "../../lib/local/backends.ts";

/** Shared fixtures of the functions' storage tests (real DynamoDB Local and fauxqs). */

export const silentLogger: Logger = createLogger({ service: "test", level: "silent" });

/** Logger that keeps its lines, for asserting on what was logged. */
export function recordingLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  return {
    logger: createLogger({ service: "test", level: "debug", sink: (l) => lines.push(l) }),
    lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface FunctionClients {
  documentClient: DynamoDBDocumentClient;
  sqs: SQSClient;
  /** DynamoDB operations sent through `documentClient`, by command name. */
  operations: string[];
  close(): void;
}

/** Clients built the way the handlers build theirs: from the backends' environment. */
export function functionClients(backends: LocalBackends): FunctionClients {
  const config = awsClientConfigFromEnv(backends.env);
  const documentClient = createDocumentClient(config);
  const sqs = createSqsClient(config);
  const operations: string[] = [];
  documentClient.middlewareStack.add(
    (next, context) => (args) => {
      operations.push(String(context.commandName));
      return next(args);
    },
    { step: "initialize", name: "countOperations" },
  );
  return {
    documentClient,
    sqs,
    operations,
    close() {
      documentClient.destroy();
      sqs.destroy();
    },
  };
}

let messageCounter = 0;

/** An SQS event as Lambda delivers it, one record per body. */
export function sqsEvent(...bodies: unknown[]): SqsEvent {
  return {
    Records: bodies.map((body) => ({
      messageId: `m-${++messageCounter}`,
      body: typeof body === "string" ? body : JSON.stringify(body),
      attributes: { ApproximateReceiveCount: "1" },
    })),
  };
}

/** A clock at real time plus an offset the test can move forward. */
export function offsetClock() {
  let offsetMs = 0;
  return {
    now: () => Date.now() + offsetMs,
    sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
    advance(ms: number) {
      offsetMs += ms;
    },
  };
}

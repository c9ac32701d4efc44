import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { type Env, optionalEnv } from "./env.ts";

/**
 * AWS clients, created on demand (never at import time) so a handler module can be imported by
 * tests and by the local runner without credentials or network. Endpoints and region can be
 * overridden through the standard SDK variables so the same handlers run against DynamoDB Local
 * and fauxqs.
 */

export interface AwsClientConfig {
  readonly region: string;
  /** e.g. `http://127.0.0.1:8000` for DynamoDB Local. */
  readonly dynamodbEndpoint?: string;
  /** e.g. `http://127.0.0.1:4566` for fauxqs. */
  readonly sqsEndpoint?: string;
  /** Static credentials (local backends); on AWS the default provider chain is used. */
  readonly credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Standard SDK variable names (not ours, so not in `lib/contracts/env.ts`). */
const SDK_ENV = {
  region: "AWS_REGION",
  defaultRegion: "AWS_DEFAULT_REGION",
  endpoint: "AWS_ENDPOINT_URL",
  dynamodbEndpoint: "AWS_ENDPOINT_URL_DYNAMODB",
  sqsEndpoint: "AWS_ENDPOINT_URL_SQS",
  accessKeyId: "AWS_ACCESS_KEY_ID",
  secretAccessKey: "AWS_SECRET_ACCESS_KEY",
} as const;

export function awsClientConfigFromEnv(env: Env): AwsClientConfig {
  const shared = optionalEnv(env, SDK_ENV.endpoint);
  const dynamodbEndpoint = optionalEnv(env, SDK_ENV.dynamodbEndpoint) ?? shared;
  const sqsEndpoint = optionalEnv(env, SDK_ENV.sqsEndpoint) ?? shared;
  // With a local endpoint, take the (dummy) keys from the env object we were given: it need not
  // be `process.env`, where the SDK's default chain would look. On AWS the chain is left alone.
  const accessKeyId = optionalEnv(env, SDK_ENV.accessKeyId);
  const secretAccessKey = optionalEnv(env, SDK_ENV.secretAccessKey);
  const local = dynamodbEndpoint !== undefined || sqsEndpoint !== undefined;
  return {
    region:
      optionalEnv(env, SDK_ENV.region) ?? optionalEnv(env, SDK_ENV.defaultRegion) ?? "us-east-1",
    ...(dynamodbEndpoint ? { dynamodbEndpoint } : {}),
    ...(sqsEndpoint ? { sqsEndpoint } : {}),
    ...(local && accessKeyId && secretAccessKey
      ? { credentials: { accessKeyId, secretAccessKey } }
      : {}),
  };
}

export function createDocumentClient(config: AwsClientConfig): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    region: config.region,
    ...(config.dynamodbEndpoint ? { endpoint: config.dynamodbEndpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
  });
  return DynamoDBDocumentClient.from(client, {
    // Optional fields of our items are simply absent.
    marshallOptions: { removeUndefinedValues: true },
  });
}

export function createSqsClient(config: AwsClientConfig): SQSClient {
  return new SQSClient({
    region: config.region,
    // A local endpoint must be explicit: by default the client sends to the host in the queue URL,
    // which for a local backend may not be the address this process can reach.
    ...(config.sqsEndpoint ? { endpoint: config.sqsEndpoint, useQueueUrlAsEndpoint: false } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
  });
}

/**
 * A value built on first use and reused afterwards: a Lambda container keeps its clients across
 * warm invocations. This closure is the only place a handler module keeps state.
 */
export function lazy<T>(factory: () => T): () => T {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: factory() };
    return built.value;
  };
}

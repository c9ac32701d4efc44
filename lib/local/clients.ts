import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";

/** Where the local engines listen, and the region every client and ARN uses. */
export interface LocalEndpoints {
  /** DynamoDB Local, e.g. `http://127.0.0.1:8000`. */
  readonly dynamodb: string;
  /** fauxqs (SQS and S3 on one port), e.g. `http://127.0.0.1:4566`. */
  readonly fauxqs: string;
  readonly region: string;
}

/** The local engines accept any credentials; these only have to look like some. */
export const LOCAL_CREDENTIALS = {
  accessKeyId: "local",
  secretAccessKey: "local",
} as const;

export const LOCAL_REGION = "us-east-1";

export interface LocalClients {
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
  /** Releases the clients' sockets; idempotent. */
  close(): void;
}

/**
 * SDK clients for the local engines. SQS needs the explicit `endpoint`: fauxqs queue URLs use
 * `sqs.<region>.localhost`, which does not resolve everywhere, and the SDK sends to the queue
 * URL's host unless an endpoint is configured. S3 goes path-style (`/bucket/key`) for the same
 * reason.
 */
export function createLocalClients(endpoints: LocalEndpoints): LocalClients {
  const common = { region: endpoints.region, credentials: LOCAL_CREDENTIALS };
  const dynamodb = new DynamoDBClient({ ...common, endpoint: endpoints.dynamodb });
  const sqs = new SQSClient({ ...common, endpoint: endpoints.fauxqs });
  const s3 = new S3Client({ ...common, endpoint: endpoints.fauxqs, forcePathStyle: true });
  let closed = false;
  return {
    dynamodb,
    sqs,
    s3,
    close() {
      if (closed) return;
      closed = true;
      dynamodb.destroy();
      sqs.destroy();
      s3.destroy();
    },
  };
}

/**
 * Environment that points any AWS SDK v3 client created without options at the local engines
 * (`AWS_ENDPOINT_URL_<SERVICE>` is read by the SDK itself). Code that builds an SQS client must
 * still pass `endpoint: process.env.AWS_ENDPOINT_URL_SQS` explicitly: the SDK's queue-URL
 * override ignores endpoints that come from the environment.
 */
export function localAwsEnv(endpoints: LocalEndpoints): Record<string, string> {
  return {
    AWS_REGION: endpoints.region,
    AWS_DEFAULT_REGION: endpoints.region,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: endpoints.fauxqs,
    AWS_ENDPOINT_URL_S3: endpoints.fauxqs,
  };
}

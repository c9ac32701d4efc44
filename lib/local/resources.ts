import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  type TableDescription,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { ENV, type EnvName } from "../contracts/env.ts";
import {
  agentCommandQueuePrefix,
  QUEUE_KEYS,
  QUEUES,
  type QueueDefinition,
  type QueueKey,
} from "../contracts/queues.ts";
import {
  createTableInput,
  TABLE_KEYS,
  TABLES,
  type TableDefinition,
  type TableKey,
  timeToLiveInput,
} from "../contracts/tables.ts";
import { type LocalLog, silentLog } from "./log.ts";

/**
 * Creates on the local engines the same tables, queues (+ DLQs and redrive) and bucket the CDK
 * stacks create on AWS, derived from the same contracts (`lib/contracts/tables.ts`,
 * `queues.ts`). Idempotent: existing resources are found and reconciled, data is left alone.
 */

export interface LocalResourcesConfig {
  /** Prefix of every physical name, e.g. `ehome` → `ehome-devices`. Default `ehome`. */
  prefix?: string;
  /**
   * Overrides every work queue's visibility timeout. Tests only: the contract's value (six
   * times the consumer timeout, minutes) would make a redelivery test wait minutes.
   */
  visibilityTimeoutSeconds?: number;
}

export interface LocalResourcesDeps {
  dynamodb: DynamoDBClient;
  sqs: SQSClient;
  s3: S3Client;
  log?: LocalLog;
}

export interface LocalQueue {
  readonly key: QueueKey;
  readonly definition: QueueDefinition;
  readonly url: string;
  readonly arn: string;
  /** Effective visibility timeout (the contract's, unless overridden). */
  readonly visibilityTimeoutSeconds: number;
  readonly deadLetter: { readonly url: string; readonly arn: string };
}

export interface LocalResources {
  readonly prefix: string;
  /** Physical table names by contract key. */
  readonly tables: Record<TableKey, string>;
  readonly queues: Record<QueueKey, LocalQueue>;
  readonly bucket: string;
  readonly agentQueuePrefix: string;
  /**
   * The resource env vars exactly as the stacks give them to functions and the agent
   * (`DEVICES_TABLE`, `DEVICE_EVENTS_QUEUE_URL`, `AGENT_QUEUE_PREFIX`, `MEDIA_BUCKET`, …).
   */
  readonly env: Partial<Record<EnvName, string>>;
}

export class LocalResourceError extends Error {
  readonly code = "LOCAL_RESOURCE_MISMATCH";
  constructor(message: string) {
    super(message);
    this.name = "LocalResourceError";
  }
}

export function localTableName(prefix: string, key: TableKey): string {
  return `${prefix}-${key}`;
}

export function localQueueName(prefix: string, definition: QueueDefinition): string {
  return `${prefix}-${definition.localName}`;
}

export function localBucketName(prefix: string): string {
  // Bucket names are lower-case letters, digits, dots and hyphens.
  return `${prefix}-media`.toLowerCase().replace(/[^a-z0-9.-]/g, "-");
}

export async function ensureLocalResources(
  config: LocalResourcesConfig,
  deps: LocalResourcesDeps,
): Promise<LocalResources> {
  const log = deps.log ?? silentLog;
  const prefix = config.prefix ?? "ehome";
  const bucket = localBucketName(prefix);
  const [tables, queues] = await Promise.all([
    ensureLocalTables(prefix, deps.dynamodb, log),
    ensureLocalQueues(prefix, deps.sqs, config),
    ensureBucket(deps.s3, bucket),
  ]);
  const agentQueuePrefix = agentCommandQueuePrefix(prefix);

  const env: Partial<Record<EnvName, string>> = {};
  for (const key of TABLE_KEYS) env[TABLES[key].envVar] = tables[key];
  for (const key of QUEUE_KEYS) env[QUEUES[key].envVar] = queues[key].url;
  env[ENV.MEDIA_BUCKET] = bucket;
  env[ENV.AGENT_QUEUE_PREFIX] = agentQueuePrefix;

  log.info("local resources ready", { prefix, tables: Object.values(tables), bucket });
  return { prefix, tables, queues, bucket, agentQueuePrefix, env };
}

/** Every table of the contract, with its indexes and TTL; returns physical names by key. */
export async function ensureLocalTables(
  prefix: string,
  dynamodb: DynamoDBClient,
  log: LocalLog = silentLog,
): Promise<Record<TableKey, string>> {
  const tables = {} as Record<TableKey, string>;
  await Promise.all(
    TABLE_KEYS.map(async (key) => {
      const name = localTableName(prefix, key);
      await ensureTable(dynamodb, TABLES[key], name, log);
      tables[key] = name;
    }),
  );
  return tables;
}

/** Every work queue of the contract with its DLQ and redrive policy. */
export async function ensureLocalQueues(
  prefix: string,
  sqs: SQSClient,
  options: Pick<LocalResourcesConfig, "visibilityTimeoutSeconds"> = {},
): Promise<Record<QueueKey, LocalQueue>> {
  const queues = {} as Record<QueueKey, LocalQueue>;
  for (const key of QUEUE_KEYS) {
    const definition: QueueDefinition = QUEUES[key];
    const name = localQueueName(prefix, definition);
    const deadLetter = await ensureQueue(sqs, `${name}-dlq`, {
      MessageRetentionPeriod: String(definition.deadLetter.retentionSeconds),
    });
    const visibilityTimeoutSeconds =
      options.visibilityTimeoutSeconds ?? definition.visibilityTimeoutSeconds;
    const queue = await ensureQueue(sqs, name, {
      VisibilityTimeout: String(visibilityTimeoutSeconds),
      MessageRetentionPeriod: String(definition.retentionSeconds),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: deadLetter.arn,
        maxReceiveCount: definition.deadLetter.maxReceiveCount,
      }),
    });
    queues[key] = { key, definition, ...queue, visibilityTimeoutSeconds, deadLetter };
  }
  return queues;
}

async function describe(
  dynamodb: DynamoDBClient,
  name: string,
): Promise<TableDescription | undefined> {
  try {
    return (await dynamodb.send(new DescribeTableCommand({ TableName: name }))).Table;
  } catch (err) {
    if ((err as Error).name === "ResourceNotFoundException") return undefined;
    throw err;
  }
}

function keySchemaText(schema: { AttributeName?: string; KeyType?: string }[] = []): string {
  return schema.map((k) => `${k.AttributeName}:${k.KeyType}`).join(",");
}

async function ensureTable(
  dynamodb: DynamoDBClient,
  definition: TableDefinition,
  name: string,
  log: LocalLog,
): Promise<void> {
  const wanted = createTableInput(definition, name);
  const existing = await describe(dynamodb, name);
  if (existing === undefined) {
    await dynamodb.send(new CreateTableCommand(wanted));
    log.debug("table created", { name });
  } else {
    if (keySchemaText(existing.KeySchema) !== keySchemaText(wanted.KeySchema)) {
      throw new LocalResourceError(
        `local table ${name} has key ${keySchemaText(existing.KeySchema)} but the contract says ` +
          `${keySchemaText(wanted.KeySchema)}; delete the local data folder to recreate it`,
      );
    }
    // An index added to the contract since the table was created: add it, keep the data.
    const present = new Set((existing.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
    for (const index of wanted.GlobalSecondaryIndexes ?? []) {
      if (present.has(index.IndexName)) continue;
      const update = new UpdateTableCommand({
        TableName: name,
        AttributeDefinitions: wanted.AttributeDefinitions,
        GlobalSecondaryIndexUpdates: [{ Create: index }],
      });
      // DynamoDB builds one index at a time per table (LimitExceededException meanwhile).
      for (let waited = 0; ; waited += 200) {
        try {
          await dynamodb.send(update);
          break;
        } catch (err) {
          if ((err as Error).name !== "LimitExceededException" || waited >= 60_000) throw err;
          await new Promise((resolve) => setTimeout(resolve, 200));
          // DynamoDB Local moves an index to ACTIVE when the table is described, not on its own.
          await describe(dynamodb, name);
        }
      }
      log.info("index added to existing local table", { name, index: index.IndexName });
    }
  }

  const ttl = timeToLiveInput(definition, name);
  if (ttl === undefined) return;
  const current = await dynamodb.send(new DescribeTimeToLiveCommand({ TableName: name }));
  const description = current.TimeToLiveDescription;
  if (
    description?.TimeToLiveStatus === "ENABLED" &&
    description.AttributeName === ttl.TimeToLiveSpecification?.AttributeName
  ) {
    return;
  }
  await dynamodb.send(new UpdateTimeToLiveCommand(ttl));
}

async function ensureQueue(
  sqs: SQSClient,
  name: string,
  attributes: Record<string, string>,
): Promise<{ url: string; arn: string }> {
  let url: string | undefined;
  try {
    url = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes })))
      .QueueUrl;
  } catch (err) {
    // Same name, other attributes (the contract changed, or a restored snapshot): converge.
    const code = (err as Error).name;
    if (code !== "QueueNameExists" && code !== "QueueAlreadyExists") throw err;
    url = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
  }
  if (!url) throw new LocalResourceError(`CreateQueue ${name} returned no URL`);
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
  );
  const arn = Attributes?.QueueArn;
  if (!arn) throw new LocalResourceError(`queue ${name} has no ARN`);
  return { url, arn };
}

export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    const code = (err as Error).name;
    if (code !== "BucketAlreadyOwnedByYou" && code !== "BucketAlreadyExists") throw err;
  }
}

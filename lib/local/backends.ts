import { join } from "node:path";
import {
  createLocalClients,
  LOCAL_REGION,
  type LocalClients,
  type LocalEndpoints,
  localAwsEnv,
} from "./clients.ts";
import { type DynamoDbLocal, startDynamoDbLocal } from "./dynamodb.ts";
import { type LocalFauxqs, startFauxqs } from "./fauxqs.ts";
import { type LocalLog, silentLog } from "./log.ts";
import { ensureLocalResources, type LocalResources } from "./resources.ts";

/**
 * The embedded backends in one call: DynamoDB Local and fauxqs started side by side, the
 * contract's tables, queues and bucket ensured, clients and env for the code under them.
 * `npm start` uses it with a data folder; tests use it in memory with a unique prefix.
 */

export interface LocalBackendsConfig {
  /** Data folder (`.ehome/`): DynamoDB files in `dynamodb/`, fauxqs snapshots in `fauxqs/`. */
  dataDir?: string;
  /** Resource name prefix. Default `ehome`. */
  prefix?: string;
  /** 0 or unset: free ports. */
  dynamodbPort?: number;
  fauxqsPort?: number;
  region?: string;
  /** See `LocalResourcesConfig.visibilityTimeoutSeconds` (tests only). */
  visibilityTimeoutSeconds?: number;
  /** See `FauxqsConfig.snapshotIntervalMs`. */
  snapshotIntervalMs?: number;
}

export interface LocalBackends {
  readonly endpoints: LocalEndpoints;
  readonly clients: LocalClients;
  readonly resources: LocalResources;
  /**
   * Everything a function or the agent reads from its environment on AWS: the resource names
   * (`DEVICES_TABLE`, …) plus region, dummy credentials and `AWS_ENDPOINT_URL_*`.
   */
  readonly env: Record<string, string>;
  readonly dynamodb: DynamoDbLocal;
  readonly fauxqs: LocalFauxqs;
  readonly timings: { dynamodbMs: number; fauxqsMs: number; resourcesMs: number; totalMs: number };
  /** Stops both engines (fauxqs snapshots first); idempotent. */
  close(): Promise<void>;
}

export async function startLocalBackends(
  config: LocalBackendsConfig = {},
  deps: { log?: LocalLog } = {},
): Promise<LocalBackends> {
  const log = deps.log ?? silentLog;
  const startedAt = performance.now();
  const region = config.region ?? LOCAL_REGION;
  const [dynamodb, fauxqs] = await Promise.allSettled([
    startDynamoDbLocal(
      {
        port: config.dynamodbPort,
        ...(config.dataDir === undefined ? {} : { dataDir: join(config.dataDir, "dynamodb") }),
      },
      { log },
    ),
    startFauxqs(
      {
        port: config.fauxqsPort,
        region,
        snapshotIntervalMs: config.snapshotIntervalMs,
        ...(config.dataDir === undefined ? {} : { dataDir: join(config.dataDir, "fauxqs") }),
      },
      { log },
    ),
  ]);
  if (dynamodb.status === "rejected" || fauxqs.status === "rejected") {
    if (dynamodb.status === "fulfilled") await dynamodb.value.close();
    if (fauxqs.status === "fulfilled") await fauxqs.value.close();
    throw dynamodb.status === "rejected"
      ? dynamodb.reason
      : (fauxqs as PromiseRejectedResult).reason;
  }

  const endpoints: LocalEndpoints = {
    dynamodb: dynamodb.value.endpoint,
    fauxqs: fauxqs.value.endpoint,
    region,
  };
  const clients = createLocalClients(endpoints);
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      clients.close();
      await Promise.all([dynamodb.value.close(), fauxqs.value.close()]);
    })();
    return closing;
  };

  const resourcesAt = performance.now();
  let resources: LocalResources;
  try {
    resources = await ensureLocalResources(
      { prefix: config.prefix, visibilityTimeoutSeconds: config.visibilityTimeoutSeconds },
      { ...clients, log },
    );
  } catch (err) {
    await close();
    throw err;
  }
  const done = performance.now();

  return {
    endpoints,
    clients,
    resources,
    env: { ...localAwsEnv(endpoints), ...(resources.env as Record<string, string>) },
    dynamodb: dynamodb.value,
    fauxqs: fauxqs.value,
    timings: {
      dynamodbMs: dynamodb.value.startupMs,
      fauxqsMs: fauxqs.value.startupMs,
      resourcesMs: Math.round(done - resourcesAt),
      totalMs: Math.round(done - startedAt),
    },
    close,
  };
}

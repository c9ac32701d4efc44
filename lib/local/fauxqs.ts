import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { buildApp } from "fauxqs";
import { LOCAL_CREDENTIALS, LOCAL_REGION } from "./clients.ts";
import { createFauxqsSnapshots, type FauxqsSnapshots } from "./fauxqs-snapshot.ts";
import { type LocalLog, silentLog } from "./log.ts";

/**
 * fauxqs (SQS + S3 emulator) in this process. fauxqs keeps everything in memory and has no
 * persistence of its own; with a `dataDir` we snapshot its queues, messages, buckets and objects
 * there (at close and every `snapshotIntervalMs`) and restore them at the next start.
 */

export interface FauxqsConfig {
  /** TCP port; 0 or unset lets the OS pick. */
  port?: number;
  /** Bind address. Default 127.0.0.1: the emulator has no authentication at all. */
  host?: string;
  /** Region of queue URLs and ARNs. Default us-east-1. */
  region?: string;
  /** Snapshot folder; unset keeps state in memory only (tests). */
  dataDir?: string;
  /** Periodic snapshot, bounding what a crash loses. Default 10 s; 0 snapshots only at close. */
  snapshotIntervalMs?: number;
}

export interface FauxqsDeps {
  log?: LocalLog;
}

export interface LocalFauxqs {
  /** `http://127.0.0.1:<port>`: the SQS and the S3 endpoint. */
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  readonly startupMs: number;
  /** Writes a snapshot now (no-op without `dataDir`). */
  snapshot(): Promise<void>;
  /** Snapshots (with `dataDir`), then stops the server; idempotent. */
  close(): Promise<void>;
}

export async function startFauxqs(
  config: FauxqsConfig = {},
  deps: FauxqsDeps = {},
): Promise<LocalFauxqs> {
  const log = deps.log ?? silentLog;
  const region = config.region ?? LOCAL_REGION;
  const host = config.host ?? "127.0.0.1";
  const startedAt = performance.now();

  const app = buildApp({ logger: false, defaultRegion: region });
  await app.listen({ port: config.port ?? 0, host });
  const address = app.server.address();
  if (address === null || typeof address === "string") {
    await app.close();
    throw new Error("fauxqs did not report a TCP address");
  }
  const port = address.port;
  // Clients always dial loopback, even when the server binds a wider address.
  const endpoint = `http://127.0.0.1:${port}`;

  let clients: { sqs: SQSClient; s3: S3Client } | undefined;
  const destroyClients = () => {
    clients?.sqs.destroy();
    clients?.s3.destroy();
  };
  let snapshots: FauxqsSnapshots | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (config.dataDir !== undefined) {
    const common = { region, endpoint, credentials: LOCAL_CREDENTIALS };
    clients = { sqs: new SQSClient(common), s3: new S3Client({ ...common, forcePathStyle: true }) };
    snapshots = createFauxqsSnapshots({ dataDir: config.dataDir, endpoint }, { ...clients, log });
    try {
      await snapshots.restore();
    } catch (err) {
      destroyClients();
      await app.close();
      throw err;
    }
    const interval = config.snapshotIntervalMs ?? 10_000;
    if (interval > 0) {
      timer = setInterval(() => {
        snapshots?.save().catch((err) => log.warn("fauxqs snapshot failed", { err }));
      }, interval);
      timer.unref();
    }
  }

  const startupMs = Math.round(performance.now() - startedAt);
  log.info("fauxqs ready", { endpoint, startupMs, dataDir: config.dataDir ?? "(in memory)" });

  let closing: Promise<void> | undefined;
  return {
    endpoint,
    port,
    region,
    startupMs,
    snapshot: async () => {
      await snapshots?.save();
    },
    close() {
      closing ??= (async () => {
        if (timer) clearInterval(timer);
        try {
          await snapshots?.save();
        } catch (err) {
          log.error("fauxqs final snapshot failed", { err });
        } finally {
          destroyClients();
          // fauxqs force-closes open connections, so a poller's 20 s long poll ends at once.
          await app.close();
        }
      })();
      return closing;
    },
  };
}

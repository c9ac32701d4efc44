import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import { afterAll, beforeAll } from "vitest";
import {
  type LocalBackends,
  type LocalBackendsConfig,
  startLocalBackends,
} from "../../lib/local/backends.ts";
import { type DynamoDbLocal, startDynamoDbLocal } from "../../lib/local/dynamodb.ts";

/**
 * Real local engines for a test file: DynamoDB Local (in memory, free port) and fauxqs, with the
 * contract's tables, queues and bucket under a prefix unique to this run. Started once in
 * beforeAll (about 1–2 s, mostly the JVM), stopped in afterAll; the Java process is also killed
 * if the test worker dies.
 *
 *   const backends = useLocalBackends();
 *   it("…", async () => { await backends().clients.dynamodb.send(…) });
 */
export function useLocalBackends(
  config: Omit<LocalBackendsConfig, "dataDir"> = {},
): () => LocalBackends {
  let backends: LocalBackends | undefined;
  beforeAll(async () => {
    backends = await startLocalBackends({ prefix: uniquePrefix(), ...config });
  });
  afterAll(async () => {
    await backends?.close();
    backends = undefined;
  });
  return () => {
    if (!backends) throw new Error("local backends are not running (use inside a test)");
    return backends;
  };
}

/** A resource-name prefix no other run shares, e.g. `t-3f9a1c`. */
export function uniquePrefix(label = "t"): string {
  return `${label}-${randomBytes(4).toString("hex")}`;
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  { timeoutMs = 10_000, intervalMs = 50 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Engines stopped by `stopEngines`. */
export interface StoppedEngines {
  /** DynamoDB Local started again on its port and folder, fauxqs listening again; idempotent. */
  restart(): Promise<void>;
  /** Stops the DynamoDB Local `restart()` started (after whatever uses it closed); idempotent. */
  close(): Promise<void>;
}

/**
 * Stops both real local engines the way an outage of the managed services looks to their clients
 * (connections refused), keeping their state for the restart, as AWS keeps it:
 *
 * - DynamoDB Local's Java process is stopped (it must run on disk: `dataDir` of the backends,
 *   `-dbPath <dataDir>/dynamodb`) and `restart()` starts a new one on the same port and folder,
 *   which opens the same database file;
 * - fauxqs runs in this process and has no persistence of its own, so its HTTP server is closed
 *   (listener and every open connection, long polls included) and `restart()` listens again on
 *   the same port: the same in-memory queues, messages (in flight ones too) and objects.
 *
 * `fauxqsServer` is fauxqs's Node HTTP server (`app.server` of its `buildApp`), which
 * lib/local/fauxqs.ts does not expose: the fault test captures it by wrapping `buildApp`.
 */
export async function stopEngines(
  backends: LocalBackends,
  options: { dynamodbDataDir: string; fauxqsServer: Server },
): Promise<StoppedEngines> {
  const server = options.fauxqsServer;
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("fauxqs is not listening");
  const dynamodbPort = backends.dynamodb.port;
  await Promise.all([
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
    backends.dynamodb.close(),
  ]);
  let restarting: Promise<void> | undefined;
  let dynamodb: DynamoDbLocal | undefined;
  return {
    restart() {
      restarting ??= (async () => {
        // DynamoDB first, then SQS: no window in which consumers receive messages they cannot
        // store (a record that fails comes back only after its queue's visibility timeout).
        const d = await startDynamoDbLocal({
          port: dynamodbPort,
          dataDir: options.dynamodbDataDir,
        });
        dynamodb = d;
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(address.port, address.address, () => {
            server.off("error", reject);
            resolve();
          });
        });
      })();
      return restarting;
    },
    async close() {
      await restarting?.catch(() => undefined);
      await dynamodb?.close();
    },
  };
}

import { randomBytes } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import {
  type LocalBackends,
  type LocalBackendsConfig,
  startLocalBackends,
} from "../../lib/local/backends.ts";

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

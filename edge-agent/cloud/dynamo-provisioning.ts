import { createHash } from "node:crypto";
import { BatchGetItemCommand, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { verifyDevicePassword } from "../../functions/shared/device-password.ts";
import type { DeviceItem } from "../../functions/shared/items.ts";
import { deviceKey } from "../../lib/contracts/tables.ts";
import type { ProvisioningDecision, UpdatableProvisioningSource } from "../ports.ts";
import { backoffMs, type DynamoSender, sleep } from "./aws.ts";

/**
 * Provisioning from the devices table (issue 3 item 6, agent half): the API writes `provisioned`,
 * `passwordHash` and, on DELETE, a `deletedAt` tombstone; the agent reads them with one GetItem per
 * device and caches the answer. A REGISTER flood costs no writes and, per device, at most one read
 * per TTL (concurrent lookups of one device share the read). `provisioning-changed` messages
 * invalidate an entry so a change in the API applies at the next REGISTER.
 *
 * Mapping of an item to a decision:
 * - no item, or an item without `provisioned` (created by the registry for an auto-provisioned
 *   device): not listed (`undefined`), so EHOME_AUTO_PROVISION decides;
 * - a tombstone (`deletedAt`, after `DELETE /devices/{id}`): refused;
 * - otherwise `allowed = provisioned`.
 *
 * Passwords: the table holds only a scrypt hash (functions/shared/device-password.ts), never the
 * clear password, so the decision carries `passwordHash` and `verifyPassword()` checks what a device
 * sent against it (results cached, so a REGISTER storm costs one scrypt per device and password).
 *
 * Floods (issue 7 item 3): refusals and "not listed" answers live in their own size-capped cache
 * (`maxNegativeEntries`), so a flood of unknown ids cannot evict the allowed devices; a repeated
 * unknown id costs one read per `negativeTtlMs`. Devices being looked up at once (waiting for a
 * read or in one) are capped (`maxConcurrentReads`): beyond it a lookup throws
 * `ProvisioningBusyError` at once (the REGISTER is left unanswered and the device retries), so a
 * flood of distinct ids costs a bounded read rate and never a write. When a read fails (DynamoDB
 * unreachable), an expired decision of the device is served again (stale-if-error), so devices
 * known here keep registering through an outage.
 *
 * Batching (issue 7, register storm): at most `maxReadCalls` (2) DynamoDB calls are in flight. A
 * lookup that finds a free call is read at once with GetItem (no added latency when it is quiet);
 * the others wait in the bounded queue above, and each call that frees up takes up to
 * `batchSize` (100, BatchGetItem's limit) waiting devices in one strongly consistent
 * BatchGetItem. When lookups come faster than two calls answer them one by one (a storm against
 * DynamoDB's few-millisecond latency), the calls stay busy and reads group themselves into
 * batches: one call per up to 100 devices (DynamoDB Local answers about 10× more devices per
 * second that way). Against DynamoDB Local's sub-millisecond GetItem, 1,667 REGISTERs/s never
 * needed a batch (docs/BENCHMARKS.md, register storm). Keys DynamoDB leaves in `UnprocessedKeys` (throttling) are asked again with
 * backoff; after `maxUnprocessedRetries` rounds they fail like an unreachable table
 * (stale-if-error applies).
 */

/** Attribute names the API writes; typed against the item shape both sides share. */
const ATTR = {
  provisioned: "provisioned",
  passwordHash: "passwordHash",
  deletedAt: "deletedAt",
} as const satisfies Record<string, keyof DeviceItem>;

export interface CloudProvisioningDecision extends ProvisioningDecision {
  /** scrypt hash the device's `Password` must match (when it sends one). */
  passwordHash?: string;
}

export interface DynamoProvisioningConfig {
  devicesTable: string;
  /** How long an allowed decision is cached. Default 60 s. */
  positiveTtlMs?: number;
  /** How long a refusal or "not listed" is cached. Default 10 s. */
  negativeTtlMs?: number;
  /** Cached allowed devices; the oldest entry is evicted beyond it. Default 100 000. */
  maxEntries?: number;
  /** Cached refusals and "not listed" answers (unknown ids). Default 100 000. */
  maxNegativeEntries?: number;
  /**
   * Devices looked up at once (waiting for a read or in one) at most; more lookups are shed.
   * Default 5000.
   */
  maxConcurrentReads?: number;
  /**
   * GetItem/BatchGetItem calls in flight at most; more lookups wait for a call. Default 2: few
   * enough that a burst of REGISTERs soon fills them and the rest go 100 to a call (each call
   * costs the agent CPU, the same for one key as for 100).
   */
  maxReadCalls?: number;
  /** Devices per BatchGetItem, 1–100. Default 100. */
  batchSize?: number;
  /** Rounds of re-asking `UnprocessedKeys` before those devices fail. Default 8. */
  maxUnprocessedRetries?: number;
  /** Backoff before re-asking `UnprocessedKeys`: base and ceiling. Defaults 25 ms and 1 s. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Cached password verifications. Default 10 000. */
  maxVerifications?: number;
}

export interface DynamoProvisioningDeps {
  dynamodb: () => DynamoSender;
  now?: () => number;
  /** Password check; default scrypt verification against the stored hash. */
  verify?: (password: string, passwordHash: string) => Promise<boolean>;
  /** Jitter of the `UnprocessedKeys` backoff. Default Math.random. */
  random?: () => number;
}

export interface DynamoProvisioningCounters {
  hits: number;
  misses: number;
  /** Devices read from the table (one per GetItem, up to `batchSize` per BatchGetItem). */
  reads: number;
  /** Of the read calls: BatchGetItem calls (the others are GetItem). */
  batchReads: number;
  /** Keys asked again because DynamoDB left them in `UnprocessedKeys`. */
  unprocessedRetries: number;
  /** Devices whose read failed. */
  readErrors: number;
  /** Lookups that joined a read already in flight for the same device. */
  coalesced: number;
  evictions: number;
  invalidations: number;
  /** Lookups refused because `maxConcurrentReads` devices were being looked up. */
  shed: number;
  /** Expired decisions served again because the read failed (table unreachable). */
  staleServed: number;
  size: number;
  /** Of `size`: refusals and "not listed" answers. */
  negativeSize: number;
}

/** Thrown by `lookup` when too many reads are in flight: not a refusal, the device retries. */
export class ProvisioningBusyError extends Error {
  readonly code = "PROVISIONING_BUSY";
  constructor() {
    super("too many provisioning lookups pending");
    this.name = "ProvisioningBusyError";
  }
}

export interface DynamoProvisioningSource extends UpdatableProvisioningSource {
  lookup(
    deviceId: string,
  ): CloudProvisioningDecision | undefined | Promise<CloudProvisioningDecision | undefined>;
  /**
   * Pushes a decision into the cache (it expires like a read one); `undefined` forgets the device
   * so the next lookup reads the table.
   */
  update(deviceId: string, decision: ProvisioningDecision | undefined): void;
  /** Forgets the cached decision (and ignores a read in flight). */
  invalidate(deviceId: string): void;
  /** True when `password` matches the device's stored hash, or when none is stored. */
  verifyPassword(deviceId: string, password: string): Promise<boolean>;
  counters(): DynamoProvisioningCounters;
  /** Drops the cache. Idempotent. */
  close(): void;
}

interface CacheEntry {
  decision: CloudProvisioningDecision | undefined;
  expiresAt: number;
}

export function decisionFromItem(
  item: Record<string, { S?: string; BOOL?: boolean }> | undefined,
): CloudProvisioningDecision | undefined {
  if (!item) return undefined;
  if (item[ATTR.deletedAt]?.S !== undefined) return { allowed: false };
  const provisioned = item[ATTR.provisioned]?.BOOL;
  if (provisioned === undefined) return undefined;
  const hash = item[ATTR.passwordHash]?.S;
  return hash === undefined
    ? { allowed: provisioned }
    : { allowed: provisioned, passwordHash: hash };
}

/** A device waiting for its read, or in one. */
interface PendingRead {
  deviceId: string;
  resolve(decision: CloudProvisioningDecision | undefined): void;
  reject(err: unknown): void;
}

type RawItem = Record<string, { S?: string; BOOL?: boolean }>;

/** BatchGetItem's limit of keys per call. */
const MAX_BATCH_KEYS = 100;

export function createDynamoProvisioningSource(
  config: DynamoProvisioningConfig,
  deps: DynamoProvisioningDeps,
): DynamoProvisioningSource {
  const positiveTtl = config.positiveTtlMs ?? 60_000;
  const negativeTtl = config.negativeTtlMs ?? 10_000;
  const maxEntries = config.maxEntries ?? 100_000;
  const maxNegative = config.maxNegativeEntries ?? 100_000;
  const maxReads = Math.max(1, config.maxConcurrentReads ?? 5000);
  const maxCalls = Math.max(1, config.maxReadCalls ?? 2);
  const batchSize = Math.min(MAX_BATCH_KEYS, Math.max(1, config.batchSize ?? MAX_BATCH_KEYS));
  const maxUnprocessedRetries = Math.max(0, config.maxUnprocessedRetries ?? 8);
  const retry = { baseMs: config.retryBaseMs ?? 25, maxMs: config.retryMaxMs ?? 1000 };
  const maxVerifications = config.maxVerifications ?? 10_000;
  const now = deps.now ?? Date.now;
  const verify = deps.verify ?? verifyDevicePassword;
  const random = deps.random ?? Math.random;
  const cache = new Map<string, CacheEntry>();
  /** Refusals and "not listed": apart, so unknown ids never evict allowed devices. */
  const negative = new Map<string, CacheEntry>();
  /** Per device, the lookup in progress (waiting or being read): its lookups share it. */
  const inflight = new Map<string, Promise<CloudProvisioningDecision | undefined>>();
  /** Devices waiting for a read call, in arrival order. */
  let waiting: PendingRead[] = [];
  let calls = 0;
  const aborted = new AbortController();
  const verified = new Map<string, Promise<boolean>>();
  const c: Omit<DynamoProvisioningCounters, "size" | "negativeSize"> = {
    hits: 0,
    misses: 0,
    reads: 0,
    batchReads: 0,
    unprocessedRetries: 0,
    readErrors: 0,
    coalesced: 0,
    evictions: 0,
    invalidations: 0,
    shed: 0,
    staleServed: 0,
  };
  let closed = false;

  const remember = (deviceId: string, decision: CloudProvisioningDecision | undefined) => {
    if (closed) return;
    const allowed = decision?.allowed === true;
    const map = allowed ? cache : negative;
    const max = allowed ? maxEntries : maxNegative;
    cache.delete(deviceId); // re-inserted last: Map order is eviction order
    negative.delete(deviceId);
    map.set(deviceId, { decision, expiresAt: now() + (allowed ? positiveTtl : negativeTtl) });
    while (map.size > max) {
      const oldest = map.keys().next().value as string;
      map.delete(oldest);
      c.evictions++;
    }
  };

  const names = {
    "#p": ATTR.provisioned,
    "#h": ATTR.passwordHash,
    "#d": ATTR.deletedAt,
  };

  /** One device: GetItem. */
  const readOne = async (deviceId: string): Promise<CloudProvisioningDecision | undefined> => {
    const out = await deps.dynamodb().send(
      new GetItemCommand({
        TableName: config.devicesTable,
        Key: { deviceId: { S: deviceKey(deviceId).deviceId } },
        ProjectionExpression: "#p, #h, #d",
        ExpressionAttributeNames: names,
        // Right after a provisioning-changed, an eventually consistent read may still return
        // the old item; reads are rare (cached), so pay for a strongly consistent one.
        ConsistentRead: true,
      }),
    );
    return decisionFromItem(out.Item as RawItem | undefined);
  };

  /**
   * Several devices: BatchGetItem (strongly consistent, like GetItem), `UnprocessedKeys` asked
   * again with backoff. Settles every entry of `byKey`: answered, or rejected with the error.
   */
  const readMany = async (byKey: Map<string, PendingRead[]>): Promise<void> => {
    let keys = [...byKey.keys()];
    const settle = (key: string, item: RawItem | undefined) => {
      const decision = decisionFromItem(item);
      for (const r of byKey.get(key) ?? []) r.resolve(decision);
      byKey.delete(key);
    };
    for (let round = 0; ; round++) {
      c.batchReads++;
      const out = await deps.dynamodb().send(
        new BatchGetItemCommand({
          RequestItems: {
            [config.devicesTable]: {
              Keys: keys.map((k) => ({ deviceId: { S: k } })),
              ProjectionExpression: "#k, #p, #h, #d",
              ExpressionAttributeNames: { ...names, "#k": "deviceId" },
              ConsistentRead: true,
            },
          },
        }),
      );
      for (const item of (out.Responses?.[config.devicesTable] ?? []) as RawItem[]) {
        const key = item.deviceId?.S;
        if (key !== undefined && byKey.has(key)) settle(key, item);
      }
      const unprocessed = new Set(
        (out.UnprocessedKeys?.[config.devicesTable]?.Keys ?? []).map(
          (k) => (k as RawItem).deviceId?.S,
        ),
      );
      // Neither answered nor left unprocessed: the table has no item for the device.
      for (const key of keys) if (byKey.has(key) && !unprocessed.has(key)) settle(key, undefined);
      keys = [...byKey.keys()];
      if (keys.length === 0) return;
      if (round >= maxUnprocessedRetries || closed) {
        throw new Error(`devices table left ${keys.length} keys unprocessed ${round + 1} times`);
      }
      c.unprocessedRetries += keys.length;
      await sleep(backoffMs(round + 1, retry, random), aborted.signal);
      if (closed) throw new Error("provisioning source closed");
    }
  };

  /** Reads `batch` in one call and settles each of its devices. */
  const readBatch = async (batch: PendingRead[]): Promise<void> => {
    c.reads += batch.length;
    const byKey = new Map<string, PendingRead[]>();
    for (const r of batch) {
      const key = deviceKey(r.deviceId).deviceId;
      const same = byKey.get(key);
      if (same) same.push(r);
      else byKey.set(key, [r]);
    }
    try {
      if (byKey.size === 1) {
        const decision = await readOne(batch[0]!.deviceId);
        for (const r of batch) r.resolve(decision);
      } else {
        await readMany(byKey);
      }
    } catch (err) {
      // What is still unsettled failed (settling twice is a no-op).
      c.readErrors += byKey.size;
      for (const r of batch) r.reject(err);
    }
  };

  /** Starts read calls while there are free ones and devices waiting. */
  const pump = () => {
    while (calls < maxCalls && waiting.length > 0 && !closed) {
      const batch = waiting.length <= batchSize ? waiting : waiting.slice(0, batchSize);
      waiting = waiting.length <= batchSize ? [] : waiting.slice(batchSize);
      calls++;
      void readBatch(batch).finally(() => {
        calls--;
        pump();
      });
    }
  };

  const lookup = (deviceId: string) => {
    const hit = cache.get(deviceId) ?? negative.get(deviceId);
    if (hit && hit.expiresAt > now()) {
      c.hits++;
      return hit.decision;
    }
    // An expired entry stays until the read answers: served again if the table is unreachable.
    const pending = inflight.get(deviceId);
    if (pending) {
      c.coalesced++;
      return pending;
    }
    if (inflight.size >= maxReads) {
      c.shed++;
      throw new ProvisioningBusyError();
    }
    // Closed: nothing reads the queue any more.
    if (closed) return Promise.reject(new Error("provisioning source closed"));
    c.misses++;
    let resolve!: PendingRead["resolve"];
    let reject!: PendingRead["reject"];
    const raw = new Promise<CloudProvisioningDecision | undefined>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const p = raw.then(
      (decision) => {
        // Only the read still registered may fill the cache: an invalidation during the read
        // means its answer may predate the change.
        if (inflight.get(deviceId) === p) {
          inflight.delete(deviceId);
          remember(deviceId, decision);
        }
        return decision;
      },
      (err: unknown) => {
        if (inflight.get(deviceId) === p) {
          inflight.delete(deviceId);
          // DynamoDB unreachable (issue 7): the last known decision beats leaving the device out.
          const stale = cache.get(deviceId) ?? negative.get(deviceId);
          if (stale) {
            c.staleServed++;
            return stale.decision;
          }
        }
        throw err;
      },
    );
    inflight.set(deviceId, p);
    waiting.push({ deviceId, resolve, reject });
    pump();
    return p;
  };

  const invalidate = (deviceId: string) => {
    c.invalidations++;
    cache.delete(deviceId);
    negative.delete(deviceId);
    inflight.delete(deviceId);
  };

  return {
    lookup,
    update(deviceId, decision) {
      if (decision === undefined) invalidate(deviceId);
      else {
        inflight.delete(deviceId);
        remember(deviceId, { ...decision });
      }
    },
    invalidate,
    async verifyPassword(deviceId, password) {
      const decision = await lookup(deviceId);
      const hash = decision?.passwordHash;
      if (hash === undefined) return true;
      const digest = createHash("sha256").update(password).digest("base64");
      const key = `${deviceId}\u0000${hash}\u0000${digest}`;
      let result = verified.get(key);
      if (!result) {
        result = verify(password, hash).catch(() => false);
        verified.set(key, result);
        while (verified.size > maxVerifications) {
          verified.delete(verified.keys().next().value as string);
        }
      }
      return result;
    },
    counters: () => ({ ...c, size: cache.size + negative.size, negativeSize: negative.size }),
    close() {
      if (closed) return;
      closed = true;
      aborted.abort();
      const dropped = waiting;
      waiting = [];
      for (const r of dropped) r.reject(new Error("provisioning source closed"));
      cache.clear();
      negative.clear();
      inflight.clear();
      verified.clear();
    },
  };
}

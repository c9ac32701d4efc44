import { createHash } from "node:crypto";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { verifyDevicePassword } from "../../functions/shared/device-password.ts";
import type { DeviceItem } from "../../functions/shared/items.ts";
import { deviceKey } from "../../lib/contracts/tables.ts";
import type { ProvisioningDecision, UpdatableProvisioningSource } from "../ports.ts";
import type { DynamoSender } from "./aws.ts";

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
 * unknown id costs one read per `negativeTtlMs`. Reads in flight are capped
 * (`maxConcurrentReads`): beyond it a lookup throws `ProvisioningBusyError` at once (the REGISTER
 * is left unanswered and the device retries), so a flood of distinct ids costs a bounded read rate
 * and never a write. When a read fails (DynamoDB unreachable), an expired decision of the device is
 * served again (stale-if-error), so devices known here keep registering through an outage.
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
  /** GetItem calls in flight at most; more lookups are shed. Default 64. */
  maxConcurrentReads?: number;
  /** Cached password verifications. Default 10 000. */
  maxVerifications?: number;
}

export interface DynamoProvisioningDeps {
  dynamodb: () => DynamoSender;
  now?: () => number;
  /** Password check; default scrypt verification against the stored hash. */
  verify?: (password: string, passwordHash: string) => Promise<boolean>;
}

export interface DynamoProvisioningCounters {
  hits: number;
  misses: number;
  reads: number;
  readErrors: number;
  /** Lookups that joined a read already in flight for the same device. */
  coalesced: number;
  evictions: number;
  invalidations: number;
  /** Lookups refused because `maxConcurrentReads` reads were in flight. */
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
    super("too many provisioning reads in flight");
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

export function createDynamoProvisioningSource(
  config: DynamoProvisioningConfig,
  deps: DynamoProvisioningDeps,
): DynamoProvisioningSource {
  const positiveTtl = config.positiveTtlMs ?? 60_000;
  const negativeTtl = config.negativeTtlMs ?? 10_000;
  const maxEntries = config.maxEntries ?? 100_000;
  const maxNegative = config.maxNegativeEntries ?? 100_000;
  const maxReads = Math.max(1, config.maxConcurrentReads ?? 64);
  const maxVerifications = config.maxVerifications ?? 10_000;
  const now = deps.now ?? Date.now;
  const verify = deps.verify ?? verifyDevicePassword;
  const cache = new Map<string, CacheEntry>();
  /** Refusals and "not listed": apart, so unknown ids never evict allowed devices. */
  const negative = new Map<string, CacheEntry>();
  const inflight = new Map<string, Promise<CloudProvisioningDecision | undefined>>();
  const verified = new Map<string, Promise<boolean>>();
  const c: Omit<DynamoProvisioningCounters, "size" | "negativeSize"> = {
    hits: 0,
    misses: 0,
    reads: 0,
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

  const read = async (deviceId: string): Promise<CloudProvisioningDecision | undefined> => {
    c.reads++;
    try {
      const out = await deps.dynamodb().send(
        new GetItemCommand({
          TableName: config.devicesTable,
          Key: { deviceId: { S: deviceKey(deviceId).deviceId } },
          ProjectionExpression: "#p, #h, #d",
          ExpressionAttributeNames: {
            "#p": ATTR.provisioned,
            "#h": ATTR.passwordHash,
            "#d": ATTR.deletedAt,
          },
          // Right after a provisioning-changed, an eventually consistent read may still return
          // the old item; reads are rare (cached), so pay for a strongly consistent one.
          ConsistentRead: true,
        }),
      );
      return decisionFromItem(out.Item as Record<string, { S?: string; BOOL?: boolean }>);
    } catch (err) {
      c.readErrors++;
      throw err;
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
    c.misses++;
    const p = read(deviceId).then(
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
      closed = true;
      cache.clear();
      negative.clear();
      inflight.clear();
      verified.clear();
    },
  };
}

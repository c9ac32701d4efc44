import type { DeviceEvent } from "../../lib/contracts/events.ts";
import { expiresAt, presenceSortKey, TABLES } from "../../lib/contracts/tables.ts";
import type { Clock } from "../shared/clock.ts";
import {
  ASPECT_SEQ_ATTRIBUTE,
  type Aspect,
  type DeviceItem,
  type PresenceItem,
} from "../shared/items.ts";
import type { Logger } from "../shared/logger.ts";

/**
 * Registry rules: how a device event changes the devices table and the presence history.
 *
 * Ordering by version, per aspect. A device item is split into aspects, each a disjoint set of
 * attributes with its own version attribute (`ASPECT_SEQ_ATTRIBUTE`): presence (status, reason,
 * owning agent), address, firmware, identity (what REGISTER said), info (serial, channels) and
 * lastSeen. An event writes an aspect only when its `version` is greater than the stored one for
 * that aspect, checked by the write's condition, so:
 * - a redelivered event finds its own version stored and changes nothing (applied once);
 * - a stale event never overwrites newer state of the aspects it carries;
 * - a frequent event (last-seen, every 600 s) cannot block an older event of another aspect that
 *   arrives late (say a device-info retried from the queue), which one item-wide version would.
 * An event carrying several aspects (registered, online) writes the ones that are newer: the first
 * attempt conditions on all of them; if that fails, the failure carries the stored versions and
 * the write is retried with the aspects that are still newer.
 *
 * Cost: every event is one conditional UpdateItem, never a read (a last-seen is exactly one
 * write); presence events add one PutItem to the history; only an event that is partly stale
 * costs a second UpdateItem. Nothing is written per keepalive.
 */

/** What the service needs from storage. */
export interface RegistryRepository {
  /**
   * Applies `plan` with its conditions. When a condition fails nothing is written, and the
   * stored state that made it fail comes back (from the failure itself: no read).
   */
  applyDeviceUpdate(
    plan: DeviceUpdatePlan,
  ): Promise<
    | { applied: true; presence?: StoredPresence }
    | { applied: false; stored: StoredDeviceState | undefined }
  >;
  /**
   * Brings a device the agent-lost sweep took offline back online, when its own agent shows it
   * still holds the session (a last-seen newer than the sweep): conditional on `agentId`, status
   * `offline` with reason `agent-lost` and an older presence version. Resolves with the stored
   * address when it applied, `undefined` when the condition failed.
   */
  reviveLost?(
    deviceId: string,
    agentId: string,
    version: number,
    at: string,
  ): Promise<{ address?: string } | undefined>;
  /** Idempotent: the key derives from the event, so a redelivery overwrites the same item. */
  putPresence(item: PresenceItem): Promise<void>;
  /**
   * Several history items in few calls (BatchWriteItem, 25 items per call; each item is the same
   * idempotent put as `putPresence`). Resolves with the items it could not write.
   */
  putPresenceBatch?(items: readonly PresenceItem[]): Promise<PresenceItem[]>;
}

/** Presence of the item after a write that asked for it (`DeviceUpdatePlan.returnPresence`). */
export type StoredPresence = Pick<DeviceItem, "status" | "offlineReason" | "address">;

export type StoredDeviceState = Pick<
  DeviceItem,
  "deviceId" | "agentId" | "deletedAt" | (typeof ASPECT_SEQ_ATTRIBUTE)[Aspect]
>;

export interface DeviceUpdatePlan {
  readonly deviceId: string;
  readonly version: number;
  /** Each is written only if its stored version is absent or lower than `version`. */
  readonly aspects: readonly Aspect[];
  readonly set: Readonly<Record<string, unknown>>;
  readonly setIfNotExists: Readonly<Record<string, unknown>>;
  readonly remove: readonly string[];
  /**
   * Only the agent that holds the session may take a device offline or report when it last saw
   * it: an `offline` or `last-seen` from agent A that arrives after the device re-registered on
   * agent B must not mark it offline (or move its lastSeen back), even when A's clock made its
   * version larger. The agent-lost sweep reports on behalf of a lost agent with that agent's id.
   */
  readonly owner?: string;
  /** Written only while the stored `status` is this (the agent-lost sweep: `online`). */
  readonly requireStatus?: "online" | "offline";
  /**
   * Written only while the stored `statusChangedAt` is before this (ISO 8601): the sweep of a
   * restarted agent leaves the devices that registered with the new process alone.
   */
  readonly changedBefore?: string;
  /** `registered` may clear a tombstone (the agent accepted the device again); nothing else may. */
  readonly revive: boolean;
  /** Return the item's presence after the write (a last-seen: was its device swept as lost?). */
  readonly returnPresence?: boolean;
}

interface AspectChange {
  aspect: Aspect;
  set: Record<string, unknown>;
  remove?: string[];
}

function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

/** The aspects an event writes, with their attribute values. One exhaustive switch. */
export function aspectChanges(event: DeviceEvent): AspectChange[] {
  const online = (): AspectChange => ({
    aspect: "presence",
    set: { status: "online", agentId: event.agentId, statusChangedAt: event.at },
    remove: ["offlineReason"],
  });
  switch (event.type) {
    case "registered":
      return [
        online(),
        { aspect: "address", set: { address: event.address } },
        ...(event.firmwareVersion === undefined
          ? []
          : [{ aspect: "firmware" as const, set: { firmwareVersion: event.firmwareVersion } }]),
        {
          aspect: "identity",
          set: defined({
            devType: event.devType,
            netUnitType: event.netUnitType,
            protocolVersion: event.protocolVersion,
            registeredAt: event.at,
          }),
        },
        { aspect: "lastSeen", set: { lastSeen: event.at } },
      ];
    case "online":
      return [
        online(),
        { aspect: "address", set: { address: event.address } },
        { aspect: "lastSeen", set: { lastSeen: event.at } },
      ];
    case "offline":
      return [
        {
          aspect: "presence",
          set: { status: "offline", offlineReason: event.reason, statusChangedAt: event.at },
        },
      ];
    case "address-changed":
      return [{ aspect: "address", set: { address: event.address } }];
    case "firmware-changed":
      return [{ aspect: "firmware", set: { firmwareVersion: event.firmwareVersion } }];
    case "device-info":
      // A snapshot of what the agent learned; fields it did not learn are left as they are.
      return [
        {
          aspect: "info",
          set: defined({
            serialNumber: event.serialNumber,
            channelCount: event.channelCount,
            alarmInCount: event.alarmInCount,
            alarmOutCount: event.alarmOutCount,
            diskCount: event.diskCount,
            channels: event.channels,
          }),
        },
      ];
    case "last-seen":
      return [{ aspect: "lastSeen", set: { lastSeen: event.lastSeen } }];
  }
}

/**
 * Events only the device's current agent may apply (multi-agent, docs/architecture.md): the
 * others (registered, online, address, firmware, info) come from an agent the device is talking
 * to right now, and are ordered across agents by version (the agents' clocks, in µs).
 */
const OWNER_ONLY: ReadonlySet<DeviceEvent["type"]> = new Set(["offline", "last-seen"]);

/**
 * The write for `event`, or `undefined` when nothing in it is newer than `stored`. Without
 * `stored` (the first attempt), every aspect is included and the write's condition decides.
 */
export function planDeviceUpdate(
  event: DeviceEvent,
  now: string,
  stored?: StoredDeviceState,
): DeviceUpdatePlan | undefined {
  const revive = event.type === "registered";
  const owner = OWNER_ONLY.has(event.type) ? event.agentId : undefined;
  if (stored) {
    if (stored.deletedAt !== undefined && !revive) return undefined;
    if (owner !== undefined && stored.agentId !== undefined && stored.agentId !== owner) {
      return undefined;
    }
  }
  const changes = aspectChanges(event).filter((change) => {
    const seq = stored?.[ASPECT_SEQ_ATTRIBUTE[change.aspect]];
    return seq === undefined || seq < event.version;
  });
  if (changes.length === 0) return undefined;
  const set: Record<string, unknown> = {};
  const remove = new Set<string>();
  for (const change of changes) {
    Object.assign(set, change.set);
    set[ASPECT_SEQ_ATTRIBUTE[change.aspect]] = event.version;
    for (const name of change.remove ?? []) remove.add(name);
  }
  if (revive) remove.add("deletedAt");
  return {
    deviceId: event.deviceId,
    version: event.version,
    aspects: changes.map((c) => c.aspect),
    set,
    setIfNotExists: { createdAt: now },
    remove: [...remove],
    ...(owner === undefined ? {} : { owner }),
    revive,
    ...(event.type === "last-seen" ? { returnPresence: true } : {}),
  };
}

/** The presence-history item of an event, or `undefined` for events that are not presence. */
export function presenceItemFor(event: DeviceEvent, ttlSeconds: number): PresenceItem | undefined {
  const common = {
    deviceId: event.deviceId,
    at: presenceSortKey(event.at, event.version),
    observedAt: event.at,
    version: event.version,
    agentId: event.agentId,
    eventId: event.eventId,
    // TTL counts from the event, so a redelivery writes the very same item.
    expiresAt: expiresAt(new Date(event.at), ttlSeconds),
  };
  switch (event.type) {
    case "registered":
    case "online":
      return { ...common, type: event.type, status: "online", address: event.address };
    case "offline":
      return { ...common, type: "offline", status: "offline", reason: event.reason };
    case "address-changed":
      return {
        ...common,
        type: "address-changed",
        status: "online",
        address: event.address,
        ...(event.previousAddress === undefined ? {} : { previousAddress: event.previousAddress }),
      };
    case "firmware-changed":
    case "device-info":
    case "last-seen":
      return undefined;
  }
}

export interface RegistryConfig {
  readonly presenceTtlSeconds: number;
  /** Attempts of the read-and-retry path for multi-aspect events under concurrent writes. */
  readonly maxAttempts: number;
}

export const DEFAULT_REGISTRY_CONFIG: RegistryConfig = {
  presenceTtlSeconds: TABLES.presence.defaultTtlSeconds,
  maxAttempts: 4,
};

export interface ApplyResult {
  /** `stale`: nothing newer (redelivery, out-of-order event, tombstoned device, other owner). */
  readonly outcome: "applied" | "stale";
  readonly aspects: readonly Aspect[];
  readonly presenceWritten: boolean;
}

/** Concurrent writers kept winning the same item; the record is retried by SQS. */
export class RegistryContentionError extends Error {
  readonly code = "REGISTRY_CONTENTION";
  constructor(deviceId: string, attempts: number) {
    super(`device ${deviceId}: conditional write lost ${attempts} times in a row`);
    this.name = "RegistryContentionError";
  }
}

export interface ApplyOptions {
  /** The event's history item is already durable (`writeHistory`): only the device write is left. */
  readonly historyWritten?: boolean;
}

export interface RegistryService {
  apply(event: DeviceEvent, options?: ApplyOptions): Promise<ApplyResult>;
  /**
   * The history items that `apply` writes before its device write, for a whole SQS batch in few
   * calls (register storm, issue 7: half of the registry's writes are history). Resolves with
   * the events whose item is durable now; apply those with `historyWritten`. The others (and every
   * event when the repository cannot batch) write their own item in `apply`, as before. An
   * `offline` is never among them: its history waits for the owner check.
   */
  writeHistory(events: readonly DeviceEvent[]): Promise<Set<DeviceEvent>>;
}

export function createRegistryService(
  config: RegistryConfig,
  deps: { repository: RegistryRepository; clock: Clock; logger: Logger },
): RegistryService {
  const { repository, clock, logger } = deps;

  /**
   * A last-seen from the device's own agent, newer than the agent-lost sweep that took it offline:
   * the agent was alive after all (cut off from DynamoDB, or its heartbeat late) and holds the
   * session, so the device is online again (docs/multi-agent.md).
   */
  async function revive(event: Extract<DeviceEvent, { type: "last-seen" }>): Promise<void> {
    const revived = await repository.reviveLost!(
      event.deviceId,
      event.agentId,
      event.version,
      event.at,
    );
    if (!revived) return;
    logger.info("device swept as agent-lost is online again", {
      deviceId: event.deviceId,
      agentId: event.agentId,
    });
    await repository.putPresence({
      deviceId: event.deviceId,
      at: presenceSortKey(event.at, event.version),
      observedAt: event.at,
      version: event.version,
      agentId: event.agentId,
      eventId: event.eventId,
      expiresAt: expiresAt(new Date(event.at), config.presenceTtlSeconds),
      type: "online",
      status: "online",
      ...(revived.address === undefined ? {} : { address: revived.address }),
    });
  }

  return {
    async writeHistory(events) {
      const durable = new Set<DeviceEvent>();
      if (!repository.putPresenceBatch) return durable;
      const items = new Map<PresenceItem, DeviceEvent>();
      for (const event of events) {
        if (event.type === "offline") continue;
        const item = presenceItemFor(event, config.presenceTtlSeconds);
        if (item) items.set(item, event);
      }
      if (items.size === 0) return durable;
      const failed = new Set(await repository.putPresenceBatch([...items.keys()]));
      for (const [item, event] of items) if (!failed.has(item)) durable.add(event);
      return durable;
    },

    async apply(event, options) {
      // History first: if the device write then fails, the redelivery rewrites the same history
      // item and applies the device write. The other order would lose the history item, because
      // the redelivery would find the device already at this version. A stale presence event is
      // still recorded: it is a transition that happened, and the sort key puts it in its place.
      // An offline from an agent that no longer holds the device (it moved to another agent) is
      // not history of the device: it is written only once the device write says the sender
      // still owns it (an offline changes one aspect, so there is no retry loop to interleave).
      const presence = presenceItemFor(event, config.presenceTtlSeconds);
      const historyAfterOwnerCheck = event.type === "offline";
      if (presence && !historyAfterOwnerCheck && !options?.historyWritten) {
        await repository.putPresence(presence);
      }

      const now = new Date(clock.now()).toISOString();
      const stale = (): ApplyResult => {
        logger.debug("stale device event", { eventId: event.eventId, type: event.type });
        return { outcome: "stale", aspects: [], presenceWritten: presence !== undefined };
      };
      let stored: StoredDeviceState | undefined;
      let historyWritten = false;
      for (let attempt = 1; attempt <= config.maxAttempts; attempt++) {
        const plan = planDeviceUpdate(event, now, stored);
        if (!plan) return stale();
        const outcome = await repository.applyDeviceUpdate(plan);
        if (presence && historyAfterOwnerCheck && !historyWritten) {
          const owner = outcome.applied ? event.agentId : outcome.stored?.agentId;
          if (owner === undefined || owner === event.agentId) {
            await repository.putPresence(presence);
            historyWritten = true;
          } else {
            return { ...stale(), presenceWritten: false };
          }
        }
        if (outcome.applied) {
          if (
            event.type === "last-seen" &&
            outcome.presence?.status === "offline" &&
            outcome.presence.offlineReason === "agent-lost" &&
            repository.reviveLost
          ) {
            await revive(event);
          }
          return {
            outcome: "applied",
            aspects: plan.aspects,
            presenceWritten: presence !== undefined,
          };
        }
        // A condition can only fail on an item that exists; without it there is nothing to retry.
        if (!outcome.stored) return stale();
        stored = outcome.stored;
      }
      throw new RegistryContentionError(event.deviceId, config.maxAttempts);
    },
  };
}

import { describe, expect, it } from "vitest";
import {
  createRegistryService,
  DEFAULT_REGISTRY_CONFIG,
  type DeviceUpdatePlan,
  planDeviceUpdate,
  presenceItemFor,
  type RegistryRepository,
  type StoredDeviceState,
} from "../../../functions/registry/service.ts";
import type { PresenceItem } from "../../../functions/shared/items.ts";
import { createLogger } from "../../../functions/shared/logger.ts";
import type { DeviceEvent } from "../../../lib/contracts/events.ts";

const NOW = "2025-01-01T00:00:00.000Z";
const base = {
  eventId: "e-1",
  deviceId: "dev-1",
  agentId: "agent-a",
  at: "2025-01-01T00:00:01.000Z",
};

const registered = (version: number): DeviceEvent => ({
  ...base,
  version,
  type: "registered",
  address: "198.51.100.1:5000",
  firmwareVersion: "V5.4.0",
  devType: "31",
});

describe("planDeviceUpdate: per-aspect versions", () => {
  it("a registered event writes presence, address, firmware, identity and last-seen", () => {
    const plan = planDeviceUpdate(registered(10), NOW);
    expect(plan?.aspects).toEqual(["presence", "address", "firmware", "identity", "lastSeen"]);
    expect(plan?.set).toMatchObject({
      status: "online",
      agentId: "agent-a",
      address: "198.51.100.1:5000",
      firmwareVersion: "V5.4.0",
      devType: "31",
      lastSeen: base.at,
      presenceSeq: 10,
      addressSeq: 10,
      lastSeenSeq: 10,
    });
    expect(plan?.remove).toEqual(expect.arrayContaining(["offlineReason", "deletedAt"]));
    expect(plan?.revive).toBe(true);
  });

  it("drops the aspects whose stored version is not older, keeps the rest", () => {
    const stored: StoredDeviceState = { deviceId: "dev-1", lastSeenSeq: 20, presenceSeq: 5 };
    const plan = planDeviceUpdate(registered(10), NOW, stored);
    expect(plan?.aspects).toEqual(["presence", "address", "firmware", "identity"]);
    expect(plan?.set).not.toHaveProperty("lastSeen");
  });

  it("a redelivered event (same version stored everywhere) plans nothing", () => {
    const stored: StoredDeviceState = {
      deviceId: "dev-1",
      presenceSeq: 10,
      addressSeq: 10,
      firmwareSeq: 10,
      identitySeq: 10,
      lastSeenSeq: 10,
    };
    expect(planDeviceUpdate(registered(10), NOW, stored)).toBeUndefined();
  });

  it("a last-seen does not block an older device-info that arrives late", () => {
    const stored: StoredDeviceState = { deviceId: "dev-1", lastSeenSeq: 50 };
    const info: DeviceEvent = { ...base, version: 40, type: "device-info", serialNumber: "SN1" };
    expect(planDeviceUpdate(info, NOW, stored)?.aspects).toEqual(["info"]);
  });

  it("a last-seen is one aspect: one conditional write", () => {
    const plan = planDeviceUpdate(
      { ...base, version: 3, type: "last-seen", lastSeen: "2025-01-01T00:10:00.000Z" },
      NOW,
    );
    expect(plan).toMatchObject({
      aspects: ["lastSeen"],
      set: { lastSeen: "2025-01-01T00:10:00.000Z" },
    });
    expect(plan?.revive).toBe(false);
  });

  it("an offline from an agent that no longer owns the session changes nothing", () => {
    const offline: DeviceEvent = {
      ...base,
      version: 99,
      type: "offline",
      reason: "keepalive-timeout",
    };
    expect(
      planDeviceUpdate(offline, NOW, { deviceId: "dev-1", agentId: "agent-b" }),
    ).toBeUndefined();
    const own = planDeviceUpdate(offline, NOW, { deviceId: "dev-1", agentId: "agent-a" });
    expect(own).toMatchObject({
      owner: "agent-a",
      set: { status: "offline", offlineReason: "keepalive-timeout" },
    });
  });

  it("only a registered event may write to a deleted (tombstoned) device", () => {
    const tombstone: StoredDeviceState = { deviceId: "dev-1", deletedAt: NOW };
    const offline: DeviceEvent = { ...base, version: 11, type: "offline", reason: "deprovisioned" };
    expect(planDeviceUpdate(offline, NOW, tombstone)).toBeUndefined();
    expect(planDeviceUpdate(registered(12), NOW, tombstone)?.remove).toContain("deletedAt");
  });

  it("device-info leaves out the fields the agent did not learn", () => {
    const plan = planDeviceUpdate(
      { ...base, version: 1, type: "device-info", channelCount: 4, channels: [{ channel: 1 }] },
      NOW,
    );
    expect(plan?.set).toEqual({ channelCount: 4, channels: [{ channel: 1 }], infoSeq: 1 });
  });
});

describe("presenceItemFor: history entries", () => {
  it("keys the entry by event time and version, so a redelivery rewrites the same item", () => {
    const a = presenceItemFor(registered(7), 86_400);
    const b = presenceItemFor(registered(7), 86_400);
    expect(a).toEqual(b);
    expect(a).toMatchObject({
      deviceId: "dev-1",
      at: "2025-01-01T00:00:01.000Z#0000000000000007",
      type: "registered",
      status: "online",
      address: "198.51.100.1:5000",
      expiresAt: Date.parse(base.at) / 1000 + 86_400,
    });
  });

  it("records offline with its reason and address changes; not firmware, info or last-seen", () => {
    expect(
      presenceItemFor({ ...base, version: 2, type: "offline", reason: "agent-shutdown" }, 60),
    ).toMatchObject({ type: "offline", status: "offline", reason: "agent-shutdown" });
    expect(
      presenceItemFor(
        { ...base, version: 3, type: "address-changed", address: "a:1", previousAddress: "b:2" },
        60,
      ),
    ).toMatchObject({ type: "address-changed", address: "a:1", previousAddress: "b:2" });
    expect(
      presenceItemFor({ ...base, version: 4, type: "last-seen", lastSeen: base.at }, 60),
    ).toBeUndefined();
    expect(
      presenceItemFor({ ...base, version: 5, type: "firmware-changed", firmwareVersion: "x" }, 60),
    ).toBeUndefined();
  });
});

/**
 * Records calls; answers each conditional write from a script: `true` applies it, a stored state
 * fails it (as DynamoDB returns the item with the failure).
 */
function scriptedRepository(script: (true | StoredDeviceState | undefined)[]) {
  const calls: string[] = [];
  const plans: DeviceUpdatePlan[] = [];
  const presence: PresenceItem[] = [];
  const repository: RegistryRepository = {
    async applyDeviceUpdate(plan) {
      calls.push("update");
      plans.push(plan);
      const next = script.length > 0 ? script.shift() : true;
      return next === true ? { applied: true } : { applied: false, stored: next };
    },
    async putPresence(item) {
      calls.push("presence");
      presence.push(item);
    },
  };
  return { repository, calls, plans, presence };
}

const service = (repository: RegistryRepository) =>
  createRegistryService(DEFAULT_REGISTRY_CONFIG, {
    repository,
    clock: { now: () => Date.parse(NOW), sleep: async () => {} },
    logger: createLogger({ service: "test", level: "silent" }),
  });

describe("registry service", () => {
  it("writes the history entry before the device, so a crash in between loses nothing", async () => {
    const repo = scriptedRepository([true]);
    await expect(service(repo.repository).apply(registered(1))).resolves.toMatchObject({
      outcome: "applied",
    });
    expect(repo.calls).toEqual(["presence", "update"]);
  });

  it("an event whose condition fails on stored state at least as new is stale: one write", async () => {
    const repo = scriptedRepository([{ deviceId: "dev-1", lastSeenSeq: 5 }]);
    const result = await service(repo.repository).apply({
      ...base,
      version: 1,
      type: "last-seen",
      lastSeen: base.at,
    });
    expect(result.outcome).toBe("stale");
    expect(repo.calls).toEqual(["update"]);
  });

  it("a multi-aspect event whose condition fails writes again only the newer aspects", async () => {
    const repo = scriptedRepository([{ deviceId: "dev-1", lastSeenSeq: 100 }, true]);
    const result = await service(repo.repository).apply(registered(10));
    expect(repo.calls).toEqual(["presence", "update", "update"]);
    expect(result).toMatchObject({ outcome: "applied" });
    expect(repo.plans[1]?.aspects).toEqual(["presence", "address", "firmware", "identity"]);
  });

  it("gives up after the configured attempts so SQS retries the record later", async () => {
    // Each failure reports state that lets the event through, as racing writers would.
    const racing = { deviceId: "dev-1" };
    const repo = scriptedRepository([racing, racing, racing, racing]);
    await expect(service(repo.repository).apply(registered(10))).rejects.toMatchObject({
      code: "REGISTRY_CONTENTION",
    });
  });
});

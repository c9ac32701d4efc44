import { BatchGetItemCommand, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import type { DynamoSender } from "../../../edge-agent/cloud/aws.ts";
import { createDynamoProvisioningSource } from "../../../edge-agent/cloud/dynamo-provisioning.ts";
import { createAddressLimiter } from "../../../edge-agent/signalling/address-limiter.ts";
import type { ResponseMessage } from "../../../edge-agent/signalling/codec/index.ts";
import { keepaliveDatagram, registerDatagram } from "../helpers/devices.ts";
import { type Harness, startHarness } from "../helpers/harness.ts";

/**
 * Abuse limits (issue 7 item 3): per-source-address token buckets on signalling datagrams, the
 * sessions-per-address cap, and unknown-device REGISTER floods against the DynamoDB provisioning
 * source (no writes, bounded reads, no device events).
 */

const GOOD = "10.1.1.1";
const FLOOD = "198.51.100.9";
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const responses = (harness: Harness, port: number, host: string) =>
  harness.sentTo(port, host).filter((m): m is ResponseMessage => m.kind === "response");

describe("per-address token bucket", () => {
  it("allows the burst, then the refill rate, per address", () => {
    const l = createAddressLimiter({ ratePerSecond: 10, burst: 5 });
    const t0 = 1_000_000;
    let ok = 0;
    for (let i = 0; i < 20; i++) if (l.allow("198.51.100.1", t0)) ok++;
    expect(ok).toBe(5);
    // Another address has its own bucket.
    expect(l.allow("198.51.100.2", t0)).toBe(true);
    // 300 ms later: 3 tokens.
    ok = 0;
    for (let i = 0; i < 10; i++) if (l.allow("198.51.100.1", t0 + 300)) ok++;
    expect(ok).toBe(3);
    expect(l.counters()).toMatchObject({ limited: 22, addresses: 2 });
    expect(l.retryAfterSeconds("198.51.100.1", t0 + 300)).toBe(1);
    l.close();
  });

  it("bounds its table: the oldest address is forgotten, idle ones are swept", () => {
    const l = createAddressLimiter({ ratePerSecond: 1, burst: 2, maxAddresses: 3 });
    for (let i = 0; i < 10; i++) l.allow(`198.51.100.${i}`, 0);
    expect(l.counters()).toMatchObject({ addresses: 3, evicted: 7 });
    l.allow("198.51.100.9", 0);
    l.allow("198.51.100.9", 0); // empty now
    l.sweep(1_000); // the others are full again (idle): forgotten; .9 is still refilling
    expect(l.counters().addresses).toBe(1);
    l.sweep(10_000);
    expect(l.counters().addresses).toBe(0);
    l.close();
  });

  it("exempts loopback and stores nothing when disabled", () => {
    const l = createAddressLimiter({ ratePerSecond: 1, burst: 1 });
    for (let i = 0; i < 100; i++) expect(l.allow("127.0.0.1", 0)).toBe(true);
    expect(l.allow("::1", 0)).toBe(true);
    expect(l.counters()).toMatchObject({ addresses: 0, limited: 0 });
    const off = createAddressLimiter({ ratePerSecond: 0, burst: 1 });
    for (let i = 0; i < 100; i++) expect(off.allow("198.51.100.1", 0)).toBe(true);
    expect(off.counters().addresses).toBe(0);
    l.close();
    off.close();
  });
});

describe("signalling limits in the agent", () => {
  it("refuses a keepalive flood from one address, unread and counted, while a device elsewhere is served", async () => {
    h = await startHarness({
      EHOME_SIGNAL_RATE_PER_ADDRESS: "10",
      EHOME_SIGNAL_BURST_PER_ADDRESS: "20",
    });
    h.transport.deliver(registerDatagram({ deviceId: "good", sequence: 1 }), GOOD, 40000);
    for (let i = 0; i < 500; i++) {
      h.transport.deliver(keepaliveDatagram("flooder", i), FLOOD, 41000);
      if (i % 50 === 0) h.transport.deliver(keepaliveDatagram("good", 100 + i), GOOD, 40000);
    }
    const answeredFlood = responses(h, 41000, FLOOD).length;
    // The burst, plus at most a token or two refilled while the loop ran.
    expect(answeredFlood).toBeGreaterThanOrEqual(20);
    expect(answeredFlood).toBeLessThanOrEqual(25);
    // The good device: its REGISTER and all 10 keepalives answered 200.
    const good = responses(h, 40000, GOOD);
    expect(good).toHaveLength(11);
    expect(good.every((r) => r.status === 200)).toBe(true);
    const m = h.agent.metrics();
    expect(m.signal_rate_limited).toBe(500 - answeredFlood);
    // Refused datagrams are not even read (not counted in, not decoded).
    expect(m.datagrams_in).toBe(11 + answeredFlood);
    expect(m.signal_limiter_addresses).toBe(2);
  });

  it("caps sessions per address: new devices beyond it are refused 403 without events; re-registers pass", async () => {
    h = await startHarness({ EHOME_MAX_SESSIONS_PER_ADDRESS: "3" });
    for (let i = 0; i < 5; i++) {
      h.transport.deliver(
        registerDatagram({ deviceId: `nat-${i}`, sequence: 1 }),
        FLOOD,
        41000 + i,
      );
    }
    const statuses = Array.from({ length: 5 }, (_, i) => h!.lastResponse(41000 + i, FLOOD).status);
    expect(statuses).toEqual([200, 200, 200, 403, 403]);
    expect(h.agent.sessions.size).toBe(3);
    expect(h.events.filter((e) => e.deviceId === "nat-3" || e.deviceId === "nat-4")).toEqual([]);
    // A device already there may register again (new port, same address).
    h.transport.deliver(registerDatagram({ deviceId: "nat-0", sequence: 2 }), FLOOD, 42000);
    expect(h.lastResponse(42000, FLOOD).status).toBe(200);
    // Another address is unaffected.
    h.transport.deliver(registerDatagram({ deviceId: "good", sequence: 1 }), GOOD, 40000);
    expect(h.lastResponse(40000, GOOD).status).toBe(200);
    expect(h.agent.metrics().registers_address_cap).toBe(2);
    // A session leaving frees its place.
    h.agent.dropDevice("nat-1", "deprovisioned");
    h.transport.deliver(registerDatagram({ deviceId: "nat-3", sequence: 3 }), FLOOD, 41003);
    expect(h.lastResponse(41003, FLOOD).status).toBe(200);
  });
});

/**
 * A DynamoDB stand-in: every table read (GetItem, BatchGetItem) answers "no item" after
 * `delayMs`; counts the devices read and the other commands.
 */
function fakeDynamo(delayMs = 5) {
  const commands: string[] = [];
  let keys = 0;
  const sender = {
    send(command: object) {
      commands.push(command.constructor.name);
      if (command instanceof BatchGetItemCommand) {
        keys += Object.values(command.input.RequestItems ?? {}).reduce(
          (n, r) => n + (r.Keys?.length ?? 0),
          0,
        );
      } else if (command instanceof GetItemCommand) keys++;
      else return Promise.reject(new Error("unexpected"));
      return new Promise((resolve) => setTimeout(() => resolve({}), delayMs));
    },
  } as unknown as DynamoSender;
  const read = (c: string) => c === "GetItemCommand" || c === "BatchGetItemCommand";
  return {
    sender,
    reads: () => keys,
    writes: () => commands.filter((c) => !read(c)).length,
  };
}

describe("unknown-device REGISTER flood", () => {
  it("costs no DynamoDB writes, bounded reads, and no device events", async () => {
    const db = fakeDynamo();
    const provisioning = createDynamoProvisioningSource(
      { devicesTable: "Devices", maxConcurrentReads: 8, negativeTtlMs: 60_000 },
      { dynamodb: () => db.sender },
    );
    h = await startHarness(
      { EHOME_AUTO_PROVISION: "false", EHOME_SIGNAL_RATE_PER_ADDRESS: "0" },
      { provisioning },
    );
    // 1000 REGISTERs of 10 unknown ids from many addresses, all at once.
    for (let i = 0; i < 1000; i++) {
      h.transport.deliver(
        registerDatagram({ deviceId: `ghost-${i % 10}`, sequence: i }),
        `198.51.100.${i % 200}`,
        40000,
      );
    }
    // At most the read cap in flight; the rest shed (unanswered: devices retry).
    expect(db.reads()).toBeLessThanOrEqual(8);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const afterFirst = db.reads();
    // Again: now every id is either cached as unknown or read once more, never per datagram.
    for (let i = 0; i < 1000; i++) {
      h.transport.deliver(
        registerDatagram({ deviceId: `ghost-${i % 10}`, sequence: 5000 + i }),
        `198.51.100.${i % 200}`,
        40000,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 30));
    for (let i = 0; i < 1000; i++) {
      h.transport.deliver(
        registerDatagram({ deviceId: `ghost-${i % 10}`, sequence: 9000 + i }),
        `198.51.100.${i % 200}`,
        40000,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(db.reads()).toBeLessThanOrEqual(10); // one per unknown id, whatever the flood
    expect(db.reads()).toBeGreaterThanOrEqual(afterFirst);
    expect(db.writes()).toBe(0);
    expect(h.events).toEqual([]);
    expect(h.agent.sessions.size).toBe(0);
    expect(provisioning.counters()).toMatchObject({ negativeSize: 10 });
    expect(provisioning.counters().shed).toBeGreaterThan(0);
    // Every answer the flood got is a refusal.
    const answered = h.transport.sent.map((d) => d.host);
    expect(answered.length).toBeGreaterThan(0);
    expect(h.agent.metrics().registers_refused).toBe(answered.length);
  });

  it("a flood of unknown ids does not evict allowed devices from the cache", async () => {
    const db = fakeDynamo(0);
    const p = createDynamoProvisioningSource(
      { devicesTable: "Devices", maxEntries: 10, maxNegativeEntries: 10, maxConcurrentReads: 1000 },
      { dynamodb: () => db.sender },
    );
    p.update("real-cam", { allowed: true });
    for (let i = 0; i < 500; i++) await p.lookup(`ghost-${i}`);
    const before = db.reads();
    expect(p.lookup("real-cam")).toEqual({ allowed: true });
    expect(db.reads()).toBe(before);
    expect(p.counters()).toMatchObject({ negativeSize: 10, size: 11 });
    p.close();
  });
});

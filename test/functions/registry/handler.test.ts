import { ReceiveMessageCommand, SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { DeleteCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createRegistryHandler,
  type RegistryHandler,
} from "../../../functions/registry/handler.ts";
import { createRegistryRepository } from "../../../functions/registry/repository.ts";
import {
  createRegistryService,
  DEFAULT_REGISTRY_CONFIG,
} from "../../../functions/registry/service.ts";
import { systemClock } from "../../../functions/shared/clock.ts";
import type { DeviceItem, PresenceItem } from "../../../functions/shared/items.ts";
import type { DeviceEvent } from "../../../lib/contracts/events.ts";
import { presenceSortKey } from "../../../lib/contracts/tables.ts";
import { createSqsEventSource, eventSourceConfigFor } from "../../../lib/local/sqs-event-source.ts";
import { eventually, useLocalBackends } from "../../helpers/local-backends.ts";
import { type FunctionClients, functionClients, silentLogger, sqsEvent } from "../support.ts";
import { presenceHistory } from "./presence-history.ts";

// 1 s visibility timeout: the DLQ test below sees maxReceiveCount receives in seconds.
const backends = useLocalBackends({ visibilityTimeoutSeconds: 1 });
let clients: FunctionClients;
let handler: RegistryHandler;

beforeAll(() => {
  clients = functionClients(backends());
  const { tables } = backends().resources;
  const repository = createRegistryRepository(
    { devicesTable: tables.devices, presenceTable: tables.presence },
    { documentClient: clients.documentClient },
  );
  const service = createRegistryService(DEFAULT_REGISTRY_CONFIG, {
    repository,
    clock: systemClock,
    logger: silentLogger,
  });
  handler = createRegistryHandler({ service, logger: silentLogger });
});
afterAll(() => clients?.close());

// Event times close to now: DynamoDB Local really expires TTL'd presence items, so history written
// with old timestamps (TTL counts from the event) would vanish under the test.
const T0 = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
const iso = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

let deviceCounter = 0;
const newDevice = () => `dev-${++deviceCounter}`;

function event(deviceId: string, version: number, fields: Record<string, unknown>): DeviceEvent {
  return {
    eventId: `${deviceId}-${version}`,
    deviceId,
    agentId: "agent-a",
    version,
    at: iso(version),
    ...fields,
  } as DeviceEvent;
}
const registered = (deviceId: string, version: number, extra: Record<string, unknown> = {}) =>
  event(deviceId, version, {
    type: "registered",
    address: "198.51.100.1:5000",
    firmwareVersion: "V5.4.0",
    devType: "31",
    ...extra,
  });

async function device(deviceId: string): Promise<DeviceItem | undefined> {
  const out = await clients.documentClient.send(
    new GetCommand({
      TableName: backends().resources.tables.devices,
      Key: { deviceId },
      ConsistentRead: true,
    }),
  );
  return out.Item as DeviceItem | undefined;
}

function history(deviceId: string): Promise<PresenceItem[]> {
  return presenceHistory(clients, backends(), deviceId);
}

describe("registry handler on DynamoDB Local", () => {
  it("applies a registered event: status, address, firmware, identity, agent, last seen", async () => {
    const id = newDevice();
    const response = await handler(sqsEvent(registered(id, 1)));
    expect(response.batchItemFailures).toEqual([]);
    expect(await device(id)).toMatchObject({
      deviceId: id,
      status: "online",
      agentId: "agent-a",
      address: "198.51.100.1:5000",
      firmwareVersion: "V5.4.0",
      devType: "31",
      lastSeen: iso(1),
      registeredAt: iso(1),
      presenceSeq: 1,
    });
  });

  it("applies a redelivered event once: the second delivery changes nothing", async () => {
    const id = newDevice();
    const offline = event(id, 2, { type: "offline", reason: "keepalive-timeout" });
    await handler(sqsEvent(registered(id, 1), offline));
    const before = await device(id);
    const historyBefore = await history(id);
    const response = await handler(sqsEvent(offline, registered(id, 1)));
    expect(response.batchItemFailures).toEqual([]);
    expect(await device(id)).toEqual(before);
    expect(await history(id)).toEqual(historyBefore);
    expect(historyBefore).toHaveLength(2);
  });

  it("never lets a stale event overwrite newer state", async () => {
    const id = newDevice();
    await handler(sqsEvent(registered(id, 10)));
    await handler(
      sqsEvent(
        event(id, 12, { type: "offline", reason: "agent-shutdown" }),
        event(id, 13, { type: "address-changed", address: "203.0.113.5:7000" }),
      ),
    );
    // An older online and an older firmware change arrive late.
    await handler(
      sqsEvent(
        event(id, 11, { type: "online", address: "203.0.113.9:1" }),
        event(id, 9, { type: "firmware-changed", firmwareVersion: "V1.0.0" }),
      ),
    );
    expect(await device(id)).toMatchObject({
      status: "offline",
      offlineReason: "agent-shutdown",
      address: "203.0.113.5:7000",
      firmwareVersion: "V5.4.0",
      presenceSeq: 12,
      addressSeq: 13,
    });
  });

  it("a newer last-seen does not block an older device-info that arrives late", async () => {
    const id = newDevice();
    await handler(sqsEvent(registered(id, 1)));
    await handler(sqsEvent(event(id, 30, { type: "last-seen", lastSeen: iso(600) })));
    await handler(
      sqsEvent(
        event(id, 5, {
          type: "device-info",
          serialNumber: "DS-2CD0001",
          channelCount: 2,
          channels: [{ channel: 1, recording: true }, { channel: 2 }],
        }),
      ),
    );
    expect(await device(id)).toMatchObject({
      lastSeen: iso(600),
      serialNumber: "DS-2CD0001",
      channelCount: 2,
      channels: [{ channel: 1, recording: true }, { channel: 2 }],
    });
  });

  it("a registered event older than a stored last-seen still applies its other aspects", async () => {
    const id = newDevice();
    await handler(sqsEvent(event(id, 50, { type: "last-seen", lastSeen: iso(1200) })));
    await handler(sqsEvent(registered(id, 40)));
    expect(await device(id)).toMatchObject({
      status: "online",
      firmwareVersion: "V5.4.0",
      lastSeen: iso(1200),
      lastSeenSeq: 50,
      presenceSeq: 40,
    });
  });

  it("a last-seen costs exactly one write and no read", async () => {
    const id = newDevice();
    await handler(sqsEvent(registered(id, 1)));
    clients.operations.length = 0;
    await handler(sqsEvent(event(id, 2, { type: "last-seen", lastSeen: iso(600) })));
    expect(clients.operations).toEqual(["UpdateItemCommand"]);
    clients.operations.length = 0;
    // …and so does its redelivery (the condition fails; nothing is read or retried).
    await handler(sqsEvent(event(id, 2, { type: "last-seen", lastSeen: iso(600) })));
    expect(clients.operations).toEqual(["UpdateItemCommand"]);
  });

  it("reports a poison message as a batch item failure and applies the rest of the batch", async () => {
    const id = newDevice();
    const batch = sqsEvent("{not json", { type: "registered", deviceId: id }, registered(id, 1));
    const response = await handler(batch);
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: batch.Records[0]!.messageId },
      { itemIdentifier: batch.Records[1]!.messageId },
    ]);
    expect((await device(id))?.status).toBe("online");
  });

  it("records presence transitions newest first, with reasons and addresses", async () => {
    const id = newDevice();
    await handler(
      sqsEvent(
        registered(id, 1),
        event(id, 2, {
          type: "address-changed",
          address: "203.0.113.5:7000",
          previousAddress: "198.51.100.1:5000",
        }),
        event(id, 3, { type: "offline", reason: "keepalive-timeout" }),
        registered(id, 4),
        event(id, 5, { type: "last-seen", lastSeen: iso(5) }),
      ),
    );
    const entries = await history(id);
    expect(entries.map((e) => [e.type, e.status, e.reason ?? e.address])).toEqual([
      ["registered", "online", "198.51.100.1:5000"],
      ["offline", "offline", "keepalive-timeout"],
      ["address-changed", "online", "203.0.113.5:7000"],
      ["registered", "online", "198.51.100.1:5000"],
    ]);
    expect(entries[0]!.expiresAt).toBe((T0 + 4000) / 1000 + 30 * 86_400);
  });

  it("an offline from an agent that lost the session to another does not take the device offline", async () => {
    const id = newDevice();
    await handler(sqsEvent(registered(id, 1)));
    await handler(sqsEvent({ ...registered(id, 2), agentId: "agent-b", eventId: "b-2" }));
    // Agent A's keepalive expiry fires later, with a larger version from its own clock.
    await handler(sqsEvent(event(id, 3, { type: "offline", reason: "keepalive-timeout" })));
    expect(await device(id)).toMatchObject({ status: "online", agentId: "agent-b" });
  });

  it("after a move to another agent, the old agent's offline and last-seen leave no trace", async () => {
    const id = newDevice();
    await handler(sqsEvent(registered(id, 1)));
    await handler(sqsEvent({ ...registered(id, 2), agentId: "agent-b", eventId: "b-2" }));
    // Agent A flushes its coalesced last-seen and expires the session, both with later versions.
    await handler(
      sqsEvent(
        event(id, 3, { type: "last-seen", lastSeen: iso(1) }),
        event(id, 4, { type: "offline", reason: "keepalive-timeout" }),
      ),
    );
    expect(await device(id)).toMatchObject({
      status: "online",
      agentId: "agent-b",
      lastSeen: iso(2),
      lastSeenSeq: 2,
    });
    // A's offline is not the device's history: only the two registrations are.
    expect((await history(id)).map((h) => [h.type, h.agentId])).toEqual([
      ["registered", "agent-b"],
      ["registered", "agent-a"],
    ]);
    // Agent B's own offline still applies, and is recorded.
    await handler(
      sqsEvent({
        ...event(id, 5, { type: "offline", reason: "keepalive-timeout" }),
        agentId: "agent-b",
        eventId: "b-5",
      }),
    );
    expect(await device(id)).toMatchObject({ status: "offline", agentId: "agent-b" });
    expect((await history(id))[0]).toMatchObject({ type: "offline", agentId: "agent-b" });
  });

  it("a redelivered offline whose device write already applied still gets its history entry", async () => {
    const id = newDevice();
    await handler(sqsEvent(registered(id, 1)));
    const offline = event(id, 2, { type: "offline", reason: "agent-shutdown" });
    await handler(sqsEvent(offline));
    // As if the history write had failed after the device write: the redelivery rewrites it.
    await clients.documentClient.send(
      new DeleteCommand({
        TableName: backends().resources.tables.presence,
        Key: { deviceId: id, at: presenceSortKey(offline.at, offline.version) },
      }),
    );
    await handler(sqsEvent(offline));
    expect((await history(id)).map((h) => h.type)).toEqual(["offline", "registered"]);
  });

  it("behind the device-events queue: a poison event reaches the DLQ, a valid one is applied", async () => {
    const id = newDevice();
    const queue = backends().resources.queues.deviceEvents;
    const source = createSqsEventSource(
      { ...eventSourceConfigFor(queue, backends().endpoints.region), waitTimeSeconds: 1 },
      { sqs: clients.sqs, handler },
    );
    try {
      await clients.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: [
            { Id: "poison", MessageBody: JSON.stringify({ type: "registered", deviceId: id }) },
            { Id: "valid", MessageBody: JSON.stringify(registered(id, 1)) },
          ],
        }),
      );
      const dead = await eventually(
        async () => {
          const out = await clients.sqs.send(
            new ReceiveMessageCommand({ QueueUrl: queue.deadLetter.url, WaitTimeSeconds: 1 }),
          );
          return out.Messages?.[0];
        },
        { timeoutMs: 20_000 },
      );
      expect(JSON.parse(dead.Body!)).toEqual({ type: "registered", deviceId: id });
      expect((await device(id))?.status).toBe("online");
      expect(source.stats.failed).toBe(queue.definition.deadLetter.maxReceiveCount);
    } finally {
      await source.close();
    }
  }, 30_000);
});

import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  QueryCommand,
} from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRegistryHandler } from "../../../functions/registry/handler.ts";
import { createRegistryRepository } from "../../../functions/registry/repository.ts";
import {
  createRegistryService,
  DEFAULT_REGISTRY_CONFIG,
} from "../../../functions/registry/service.ts";
import { systemClock } from "../../../functions/shared/clock.ts";
import type { PresenceItem } from "../../../functions/shared/items.ts";
import type { DeviceEvent } from "../../../lib/contracts/events.ts";
import { useLocalBackends } from "../../helpers/local-backends.ts";
import { type FunctionClients, functionClients, silentLogger, sqsEvent } from "../support.ts";
import { presenceHistory } from "./presence-history.ts";

/**
 * Register storm (issue 7): the registry writes the history items of a whole SQS batch in
 * BatchWriteItem calls before any device write of the batch (the order of `apply`: history first),
 * instead of one PutItem per event; what BatchWriteItem leaves unprocessed is sent again, and when
 * the batch write fails each event writes its own item as before. An offline's history still
 * waits for the owner check.
 */

const backends = useLocalBackends();
let clients: FunctionClients;
beforeAll(() => {
  clients = functionClients(backends());
});
afterAll(() => clients?.close());

const T0 = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
const iso = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
let counter = 0;
const newDevice = () => `hb-${++counter}-${Math.random().toString(36).slice(2, 6)}`;

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
const registered = (id: string, v: number) =>
  event(id, v, { type: "registered", address: "198.51.100.1:5000", firmwareVersion: "V5" });
const online = (id: string, v: number) =>
  event(id, v, { type: "online", address: "198.51.100.1:5000" });

/** The handler over the real repository, its client optionally wrapped by `wrap`. */
function handlerWith(wrap?: (real: DynamoDBDocumentClient) => DynamoDBDocumentClient) {
  const { tables } = backends().resources;
  const documentClient = wrap ? wrap(clients.documentClient) : clients.documentClient;
  const repository = createRegistryRepository(
    { devicesTable: tables.devices, presenceTable: tables.presence },
    { documentClient },
  );
  const service = createRegistryService(DEFAULT_REGISTRY_CONFIG, {
    repository,
    clock: systemClock,
    logger: silentLogger,
  });
  return createRegistryHandler({ service, logger: silentLogger });
}

function history(deviceId: string): Promise<PresenceItem[]> {
  return presenceHistory(clients, backends(), deviceId, "oldest-first");
}

async function status(deviceId: string): Promise<string | undefined> {
  const out = await clients.documentClient.send(
    new QueryCommand({
      TableName: backends().resources.tables.devices,
      KeyConditionExpression: "deviceId = :d",
      ExpressionAttributeValues: { ":d": deviceId },
      ConsistentRead: true,
    }),
  );
  return (out.Items?.[0] as { status?: string } | undefined)?.status;
}

describe("registry history in batches", () => {
  it("writes a batch's history in one BatchWriteItem, then the device writes", async () => {
    const handler = handlerWith();
    const ids = Array.from({ length: 12 }, newDevice);
    const events = ids.flatMap((id) => [registered(id, 1), online(id, 2)]);
    // A redelivery beside its original in the same batch: one history item, applied once.
    const batch = sqsEvent(...events, events[0]);
    clients.operations.length = 0;
    const response = await handler(batch);
    expect(response.batchItemFailures).toEqual([]);
    const ops = clients.operations;
    expect(ops.filter((o) => o === "BatchWriteItemCommand")).toHaveLength(1);
    expect(ops.filter((o) => o === "PutItemCommand")).toHaveLength(0);
    expect(ops.filter((o) => o === "UpdateItemCommand")).toHaveLength(25);
    // History before any device write.
    expect(ops.indexOf("BatchWriteItemCommand")).toBe(0);
    for (const id of ids) {
      expect((await history(id)).map((h) => h.type)).toEqual(["registered", "online"]);
      expect(await status(id)).toBe("online");
    }
  });

  it("sends again what BatchWriteItem left unprocessed", async () => {
    let calls = 0;
    const handler = handlerWith((real) => {
      const wrapped = {
        send(command: unknown) {
          if (command instanceof BatchWriteCommand && calls++ === 0) {
            // The table takes the first half only (throttled); the rest comes back unprocessed.
            const [table, requests] = Object.entries(command.input.RequestItems ?? {})[0]!;
            const half = Math.ceil(requests.length / 2);
            return real
              .send(new BatchWriteCommand({ RequestItems: { [table]: requests.slice(0, half) } }))
              .then(() => ({ UnprocessedItems: { [table]: requests.slice(half) } }));
          }
          return real.send(command as never);
        },
      };
      return wrapped as unknown as DynamoDBDocumentClient;
    });
    const ids = Array.from({ length: 5 }, newDevice);
    const response = await handler(
      sqsEvent(...ids.flatMap((id) => [registered(id, 1), online(id, 2)])),
    );
    expect(response.batchItemFailures).toEqual([]);
    expect(calls).toBe(2);
    for (const id of ids) expect(await history(id)).toHaveLength(2);
  });

  it("falls back to one PutItem per event when the batch write fails", async () => {
    const handler = handlerWith((real) => {
      const wrapped = {
        send(command: unknown) {
          if (command instanceof BatchWriteCommand) {
            return Promise.reject(new Error("ProvisionedThroughputExceededException"));
          }
          return real.send(command as never);
        },
      };
      return wrapped as unknown as DynamoDBDocumentClient;
    });
    const ids = Array.from({ length: 3 }, newDevice);
    const response = await handler(sqsEvent(...ids.map((id) => registered(id, 1))));
    expect(response.batchItemFailures).toEqual([]);
    for (const id of ids) {
      expect((await history(id)).map((h) => h.type)).toEqual(["registered"]);
      expect(await status(id)).toBe("online");
    }
  });

  it("an offline in a batch gets history only after its owner check", async () => {
    const handler = handlerWith();
    const [moved, stays] = [newDevice(), newDevice()];
    await handler(sqsEvent({ ...registered(moved, 1), agentId: "agent-b" }, registered(stays, 1)));
    // agent-a no longer holds `moved` (agent-b does): its offline leaves no trace.
    const response = await handler(
      sqsEvent(
        event(moved, 5, { type: "offline", reason: "keepalive-timeout" }),
        event(stays, 5, { type: "offline", reason: "keepalive-timeout" }),
      ),
    );
    expect(response.batchItemFailures).toEqual([]);
    expect((await history(moved)).map((h) => h.type)).toEqual(["registered"]);
    expect((await history(stays)).map((h) => h.type)).toEqual(["registered", "offline"]);
    expect(await status(moved)).toBe("online");
    expect(await status(stays)).toBe("offline");
  });
});

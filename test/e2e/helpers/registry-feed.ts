import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { createRegistryHandler } from "../../../functions/registry/handler.ts";
import { createRegistryRepository } from "../../../functions/registry/repository.ts";
import {
  createRegistryService,
  DEFAULT_REGISTRY_CONFIG,
  type RegistryRepository,
} from "../../../functions/registry/service.ts";
import { systemClock } from "../../../functions/shared/clock.ts";
import type { DeviceEvent } from "../../../lib/contracts/events.ts";
import { QUEUES } from "../../../lib/contracts/queues.ts";
import { TABLES } from "../../../lib/contracts/tables.ts";
import type { LocalBackends } from "../../../lib/local/backends.ts";
import { functionClients, silentLogger, sqsEvent } from "../../functions/support.ts";

/**
 * Device events through the registry function's handler against DynamoDB Local, in the batches
 * its event source mapping would hand it, counting what it writes: the repository calls (one
 * UpdateItem per device write, one PutItem per presence entry) and, as a cross-check, the
 * DynamoDB operations that left the client.
 */

export interface RegistryWrites {
  updateItem: number;
  putItem: number;
  /** Of `updateItem`: conditional writes that did not apply (they still cost a write unit). */
  conditionFailed: number;
  /**
   * Writes to the devices table's indexes (`byStatus`, `byAgent`): per index, one for every
   * applied write that changes an attribute the index holds (its keys and projected attributes),
   * two when its partition key (`status`, `agentId`) changes.
   */
  indexWrites: number;
  /** DynamoDB operations sent by the client, by name (UpdateItemCommand, PutItemCommand). */
  operations: Record<string, number>;
  /** Handler time per invocation, ms (local engine; for reference only). */
  meanInvocationMs: number;
  invocations: number;
}

/** Per index of the devices table: its partition key and every attribute it holds. */
const INDEXES = TABLES.devices.indexes.map((i) => ({
  key: i.partitionKey.name,
  held: new Set<string>([
    i.partitionKey.name,
    ...(i.sortKey ? [i.sortKey.name] : []),
    ...(typeof i.projection === "string" ? [] : i.projection.include),
  ]),
}));

export async function feedRegistry(
  backends: LocalBackends,
  events: readonly DeviceEvent[],
): Promise<RegistryWrites> {
  const clients = functionClients(backends);
  try {
    const { tables } = backends.resources;
    const real = createRegistryRepository(
      { devicesTable: tables.devices, presenceTable: tables.presence },
      { documentClient: clients.documentClient },
    );
    const keys = new Map<string, Record<string, unknown>>();
    const w = { updateItem: 0, putItem: 0, conditionFailed: 0, indexWrites: 0 };
    const counting: RegistryRepository = {
      async applyDeviceUpdate(plan) {
        w.updateItem++;
        const outcome = await real.applyDeviceUpdate(plan);
        if (!outcome.applied) {
          w.conditionFailed++;
          return outcome;
        }
        // An index holds the item only while its partition key is set, and is written only when
        // the write changes an attribute it holds (lib/contracts/tables.ts); a changed key is a
        // delete plus a put.
        const stored = keys.get(plan.deviceId) ?? {};
        for (const index of INDEXES) {
          const before = stored[index.key];
          const after = index.key in plan.set ? plan.set[index.key] : before;
          const touches = Object.keys(plan.set).some((k) => index.held.has(k));
          if (after !== undefined && touches) {
            w.indexWrites += before !== undefined && before !== after ? 2 : 1;
          }
          stored[index.key] = after;
        }
        keys.set(plan.deviceId, stored);
        return outcome;
      },
      async putPresence(item) {
        w.putItem++;
        await real.putPresence(item);
      },
    };
    const handler = createRegistryHandler({
      service: createRegistryService(DEFAULT_REGISTRY_CONFIG, {
        repository: counting,
        clock: systemClock,
        logger: silentLogger,
      }),
      logger: silentLogger,
    });
    const batchSize = QUEUES.deviceEvents.consumer.batchSize;
    let busyMs = 0;
    let invocations = 0;
    for (let i = 0; i < events.length; i += batchSize) {
      const started = performance.now();
      const response = await handler(sqsEvent(...events.slice(i, i + batchSize)));
      busyMs += performance.now() - started;
      invocations++;
      if (response.batchItemFailures.length > 0) {
        throw new Error(`registry failed ${response.batchItemFailures.length} records`);
      }
    }
    const operations: Record<string, number> = {};
    for (const op of clients.operations) operations[op] = (operations[op] ?? 0) + 1;
    return { ...w, operations, meanInvocationMs: busyMs / invocations, invocations };
  } finally {
    clients.close();
  }
}

export async function rawDeviceItem(
  backends: LocalBackends,
  deviceId: string,
): Promise<Record<string, AttributeValue> | undefined> {
  const out = await backends.clients.dynamodb.send(
    new GetItemCommand({
      TableName: backends.resources.tables.devices,
      Key: { deviceId: { S: deviceId } },
      ConsistentRead: true,
    }),
  );
  return out.Item;
}

/**
 * DynamoDB's item size (what write units are billed on, per started 1 KB): attribute names plus
 * values; strings in UTF-8 bytes, numbers about one byte per two significant digits plus one,
 * lists and maps 3 bytes plus one per element. Close enough to tell 1 KB from 2 KB.
 */
export function itemBytes(item: Record<string, AttributeValue>): number {
  const value = (v: AttributeValue): number => {
    if (v.S !== undefined) return Buffer.byteLength(v.S);
    if (v.N !== undefined) return Math.ceil(v.N.replace(/[-.]/g, "").length / 2) + 1;
    if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
    if (v.L !== undefined) return 3 + v.L.reduce((n, e) => n + 1 + value(e), 0);
    if (v.M !== undefined) {
      return (
        3 + Object.entries(v.M).reduce((n, [k, e]) => n + 1 + Buffer.byteLength(k) + value(e), 0)
      );
    }
    return 0;
  };
  return Object.entries(item).reduce((n, [k, v]) => n + Buffer.byteLength(k) + value(v), 0);
}
